"""Quitting the tray app ends the process cleanly even while the models are still loading (a load cannot be
interrupted, and Qt aborts a process that destroys a thread still running), and a stop that hangs is a non-zero
exit with one line saying so. Each case runs the app's controller in a child process on the private display and
audio server."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The stand-in: ModelHost.load blocks until released, as loading CSM on a slow machine would for minutes; no real
# model load can be held open on cue.
WHILE_LOADING = """
import os, sys, threading, time
from PySide6.QtWidgets import QApplication
app = QApplication(["jarvis"])
from jarvis.host import ModelHost
held = threading.Event()
def load(self, on_wake=None):
    held.wait(120)
ModelHost.load = load
from jarvis.config import Settings
from jarvis.ui.controller import Controller
from jarvis.ui.app import finish
controller = Controller(Settings())
controller.start()
deadline = time.monotonic() + 30
while not controller.worker.loading and time.monotonic() < deadline:
    app.processEvents()
    time.sleep(0.01)
assert controller.worker.loading, "the models never started loading"
print("quitting", flush=True)
sys.exit(finish(controller.shutdown(timeout_ms=300)))
"""


def _child(script: str, virtual_audio) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=virtual_audio.subprocess_env(),
                          capture_output=True, text=True, timeout=120)


def test_quitting_while_the_models_load_exits_at_once_and_cleanly(desktop, virtual_audio):
    ran = _child(WHILE_LOADING, virtual_audio)
    assert "quitting" in ran.stdout, ran.stderr
    assert ran.returncode == 0, (ran.returncode, ran.stderr[-2000:])
    assert "Destroyed while thread" not in ran.stderr
    assert "error:" not in ran.stderr


def test_a_stop_that_hangs_exits_4_with_one_line(desktop, virtual_audio):
    ran = _child("import sys\nfrom jarvis.ui.app import finish\nsys.exit(finish('hung'))\n", virtual_audio)
    errors = [line for line in ran.stderr.splitlines() if line.startswith("error: ")]
    assert ran.returncode == 4 and len(errors) == 1 and "did not stop in time" in errors[0], ran.stderr
