"""Bad input on every user-facing command: one clear line, non-zero exit, no traceback,
stored data untouched. Runs the real `jarvis` CLI in a subprocess."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]


def jarvis(*args: str, env_extra: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "jarvis", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_clear_line(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode not in (0, 1), (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle.lower() in errors[0].lower(), errors[0]


@pytest.fixture
def wavs(tmp_path):
    t = np.arange(16000 * 2) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    sf.write(tmp_path / "stereo.wav", np.stack([tone, tone], axis=1), 16000)
    sf.write(tmp_path / "cd.wav", tone, 44100)
    sf.write(tmp_path / "silence.wav", np.zeros(16000 * 2, dtype=np.float32), 16000, subtype="PCM_16")
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    (tmp_path / "text.wav").write_text("this is not audio")
    sf.write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    return tmp_path


@pytest.mark.parametrize("command", ["transcribe", "identify"])
@pytest.mark.parametrize("name, needle", [
    ("missing.wav", "no such file"), ("corrupt.wav", "not a readable wav"), ("text.wav", "not a readable wav"),
    ("stereo.wav", "16000 Hz mono"), ("cd.wav", "16000 Hz mono"), ("empty.wav", "no audio"),
])
def test_bad_wav(wavs, command, name, needle):
    assert_one_clear_line(jarvis(command, str(wavs / name)), needle)


def test_enroll_bad_files_store_nothing(wavs, tmp_path):
    home = Path(os.environ["JARVIS_HOME"])
    for name in ("missing.wav", "stereo.wav", "corrupt.wav", "cd.wav"):
        assert_one_clear_line(jarvis("enroll", "alice", str(wavs / name)))
    assert_one_clear_line(jarvis("enroll", "alice"), "wav")
    assert not list((home / "data" / "speakers").glob("*.json")) if (home / "data" / "speakers").exists() else True


def test_say_empty_text_and_unknown_engine(tmp_path):
    assert_one_clear_line(jarvis("say", "   "), "nothing to say")
    assert_one_clear_line(jarvis("say", "hello", "--engine", "nope", "--out", str(tmp_path / "x.wav")),
                          "unknown tts engine", "piper")
    assert_one_clear_line(jarvis("say", "hello", "--out", str(tmp_path / "no" / "dir" / "x.wav")), "does not exist")
    assert not (tmp_path / "x.wav").exists()


def test_speakers_unknown_name():
    assert_one_clear_line(jarvis("speakers", "remove", "nobody"), "enroll")
    assert_one_clear_line(jarvis("speakers", "rename", "nobody", "somebody"), "enroll")
    listed = jarvis("speakers", "list")
    assert listed.returncode == 0 and "No speakers enrolled" in listed.stderr


def test_corrupt_settings_are_moved_aside_and_reported():
    home = Path(os.environ["JARVIS_HOME"])
    settings = home / "config" / "settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text("{ this is not json")
    result = jarvis("speakers", "list")
    assert result.returncode == 0
    assert "using defaults" in result.stderr
    kept = list(settings.parent.glob("settings.json.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_text() == "{ this is not json"


def test_no_audio_device_at_all(tmp_path):
    """With no audio server reachable and no sound card, PortAudio sees no devices."""
    env = {"PULSE_SERVER": f"unix:{tmp_path}/none"}
    result = jarvis("listen", env_extra=env, timeout=60)
    assert_one_clear_line(result, "no audio")
    result = jarvis("say", "hello", env_extra=env, timeout=60)
    assert_one_clear_line(result, "no audio")
