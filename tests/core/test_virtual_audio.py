"""The private PulseAudio of the benchmarks and tests never outlives its process, even one killed by a signal."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STARTER = """
from jarvis.bench.virtual_audio import VirtualAudio
audio = VirtualAudio()
print(audio._daemon.pid, audio.dir, flush=True)
import time
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}/stat").exists() else "X"
    return state != "Z"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_the_server_and_its_folder_go_when_the_owner_is_killed(sig):
    owner = subprocess.Popen([sys.executable, "-c", STARTER], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    pid_text, folder = owner.stdout.readline().split(maxsplit=1)
    daemon, folder = int(pid_text), Path(folder.strip())
    assert _alive(daemon) and folder.is_dir()
    owner.send_signal(sig)
    owner.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (_alive(daemon) or folder.exists()):
        time.sleep(0.2)
    assert not _alive(daemon), "PulseAudio outlived the process that started it"
    assert not folder.exists(), "its temporary folder was left behind"
