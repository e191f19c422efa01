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


def _tone_through_the_room(audio, path) -> tuple[float, float]:
    """Play 0.5 s of 1 kHz to the speaker; the mic's steady level (dB re the speaker) and its level 80-300 ms
    after the tone stopped (dB re the steady level): the room's tail."""
    import numpy as np

    from jarvis.bench.virtual_audio import RECORD_RATE, SPEAKER, _steady_db, _write_wav

    rate = RECORD_RATE
    tone = np.concatenate([np.zeros(rate // 4), 0.35 * np.sin(2 * np.pi * 1000 * np.arange(rate // 2) / rate),
                           np.zeros(rate // 2)])
    _write_wav(audio.dir / "t.wav", tone, rate)
    with audio.record_mic() as mic, audio.record_speaker() as monitor:
        time.sleep(0.2)
        audio.paplay(audio.dir / "t.wav", SPEAKER)
        time.sleep(0.2)
    level = _steady_db(mic.samples) - _steady_db(monitor.samples)
    win = rate // 100
    env = lambda x: np.sqrt(np.mean(x[: len(x) // win * win].reshape(-1, win) ** 2, axis=1))  # noqa: E731
    m = env(mic.samples)
    if m.max() < 1e-4:  # nothing came through
        return level, float("-inf")
    end = int(np.flatnonzero(m > m.max() / 2)[-1])  # last loud 10 ms window of the tone
    tail = 20 * np.log10(max(float(np.sqrt(np.mean(m[end + 8: end + 30] ** 2))), 1e-9) / m.max())
    return level, tail


def test_the_echo_path_brings_the_speaker_into_the_mic_at_the_set_gain_and_delay():
    from jarvis.bench.virtual_audio import VirtualAudio

    with VirtualAudio() as audio:
        path = audio.echo_path(-18, latency_ms=30, reverb=False)
        measured = path.measure()
        assert abs(measured["gain_db"] + 18) <= 2, measured
        # The delay is PulseAudio's loopback latency: 30 ms as set on a quiet machine, more when the server fell
        # behind while the loop was made (112 ms once, under the e2e loop and the core suite at once; the module
        # runs without rate adjustment, so it keeps it). The rig must tell the truth about it: the bench records
        # this measurement with its results.
        assert measured["delay_ms"] >= 20, measured
        assert abs(measured["delay_ms"] - measured["pulseaudio_latency_ms"]) <= 15, measured
        level, tail = _tone_through_the_room(audio, path)
        assert abs(level + 18) <= 2 and tail < -40, (level, tail)
        path.remove()
        level, _ = _tone_through_the_room(audio, path)
        assert level < -60, "the removed path still reaches the microphone"


def test_the_room_reverb_leaves_a_tail_after_the_direct_sound():
    from jarvis.bench.virtual_audio import ROOM_REVERB, VirtualAudio, _ladspa_plugin

    if not _ladspa_plugin(ROOM_REVERB["plugin"]):
        pytest.skip("Debian swh-plugins (the room reverb) is not installed")
    with VirtualAudio() as audio:
        path = audio.echo_path(0, latency_ms=30, reverb=True)
        assert path.reverb
        level, tail = _tone_through_the_room(audio, path)
        assert -2 <= level <= 4 and tail > -35, (level, tail)  # the direct sound at 0 dB plus the room
        path.remove()


def test_speech_played_into_the_mic_keeps_its_timing_when_the_player_is_not_scheduled(tmp_path):
    """The rig must not change what a test says: a paplay the loaded machine does not run for 80 ms (SIGSTOP
    here, scheduling delay in CI) once underran and the server put ~20 ms of silence into the speech, which
    failed a capture test (correlation 0.63). The clip now sits a second ahead in the server."""
    import soxr

    from jarvis.audio.wav import read_speech_wav
    from jarvis.bench.virtual_audio import RECORD_RATE, VirtualAudio
    from tests.e2e.test_audio_io import best_match
    from tests.speech import espeak_wav

    wav = espeak_wav("Jarvis, what is the weather like in Paris?", tmp_path / "speech.wav")
    source = read_speech_wav(wav)
    with VirtualAudio() as audio:
        with audio.record_mic() as mic:
            time.sleep(0.2)
            player = audio.play_into_mic(wav, block=False)
            time.sleep(0.8)
            player.send_signal(signal.SIGSTOP)
            time.sleep(0.08)
            player.send_signal(signal.SIGCONT)
            assert player.wait(timeout=30) == 0
            time.sleep(0.3)
    corr, _ = best_match(soxr.resample(mic.samples, RECORD_RATE, 16000), source)
    assert corr > 0.95, f"the speech reached the mic changed (correlation {corr:.2f}): a gap while paplay was stopped"


def test_the_suite_never_reaches_this_machines_sound_server(tmp_path):
    """conftest points PulseAudio clients at no server and a temporary runtime folder until a test takes the
    private one: a device scan then leaves the home folder alone (it wrote ~/.config/pulse before)."""
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / ".config")}
    env.pop("XDG_RUNTIME_DIR", None)
    scan = "from jarvis.audio import devices; print(len(devices.list_devices()))"
    done = subprocess.run([sys.executable, "-c", scan], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / ".config" / "pulse").exists(), "a PulseAudio client wrote into the home folder"
