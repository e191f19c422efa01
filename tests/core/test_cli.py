"""The CLI's happy paths, run as a user would (subprocess, real models, fresh JARVIS_HOME)."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tests.core.test_cli_bad_input import jarvis
from tests.speech import espeak_wav

pytestmark = pytest.mark.slow


def test_say_to_wav_then_transcribe_it_back(tmp_path):
    """Seeded: Piper samples noise as it speaks, and one take in a few hundred was heard as "the cattle is on"
    (clean-clone CI, 2026-12-07; 0 of 260 takes here). With ``--seed`` the same file comes every time."""
    out, again = tmp_path / "hello.wav", tmp_path / "again.wav"
    for path in (out, again):
        result = jarvis("say", "Good morning. The kettle is on.", "--engine", "piper", "--seed", "1", "--out",
                        str(path))
        assert result.returncode == 0, result.stderr
    assert out.exists() and "22050 Hz" in result.stdout
    assert out.read_bytes() == again.read_bytes()
    import soxr
    import soundfile as sf

    samples, rate = sf.read(out, dtype="float32")
    converted = tmp_path / "hello16k.wav"
    sf.write(converted, soxr.resample(samples, rate, 16000), 16000, subtype="PCM_16")
    heard = jarvis("transcribe", str(converted))
    assert heard.returncode == 0, heard.stderr
    assert "morning" in heard.stdout.lower() and "kettle" in heard.stdout.lower()


def test_say_long_text_shows_progress_and_the_limit_can_be_raised(tmp_path):
    out, text = tmp_path / "five.wav", "One. Two. Three. Four. Five."
    refused = jarvis("say", text, "--engine", "piper", "--max-chars", "20", "--out", str(out))
    assert refused.returncode == 2 and "--max-chars 28" in refused.stderr and not out.exists()
    result = jarvis("say", text, "--engine", "piper", "--max-chars", "28", "--out", str(out))
    assert result.returncode == 0, result.stderr
    progress = [ln for ln in result.stderr.splitlines() if ln.startswith("speaking sentence")]
    assert progress == [f"speaking sentence {n} of 5" for n in range(1, 6)] and out.exists()
    short = jarvis("say", "Hello there.", "--engine", "piper", "--out", str(out))
    assert short.returncode == 0 and "speaking sentence" not in short.stderr


def test_say_falls_back_loudly_when_piper_cannot_run(tmp_path):
    home = Path(os.environ["JARVIS_HOME"])
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "settings.json").write_text(json.dumps(
        {"schema_version": 2, "tts": {"engines": ["piper", "system"], "piper_voice": str(tmp_path / "gone.onnx")}}))
    out = tmp_path / "fallback.wav"
    result = jarvis("say", "Still talking.", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "piper unavailable" in result.stderr and out.exists()
    doctor = jarvis("doctor")
    assert "1. piper: DOWN" in doctor.stdout and "2. system: ok" in doctor.stdout
    report = json.loads(jarvis("doctor", "--json").stdout)
    assert [(e["name"], e["healthy"]) for e in report["tts"]] == [("piper", False), ("system", True)]


def test_enroll_identify_list_remove(tmp_path):
    alice = [espeak_wav(t, tmp_path / f"a{i}.wav", "en-us+f2") for i, t in enumerate(
        ["The quick brown fox jumps over the lazy dog.", "I would like a cup of tea this afternoon."])]
    bob = [espeak_wav(t, tmp_path / f"b{i}.wav", "en-us+m3") for i, t in enumerate(
        ["The quick brown fox jumps over the lazy dog.", "I would like a cup of tea this afternoon."])]
    probe = espeak_wav("Please remind me to call my sister tomorrow.", tmp_path / "probe.wav", "en-us+f2")

    nobody = jarvis("identify", str(probe))
    assert nobody.returncode == 2 and "jarvis enroll NAME" in nobody.stderr and not nobody.stdout
    for name, files in (("alice", alice), ("bob", bob)):
        result = jarvis("enroll", name, *map(str, files))
        assert result.returncode == 0, result.stderr
        assert f"enrolled {name}: 2 samples" in result.stdout
    name, score = jarvis("identify", str(probe)).stdout.split()
    assert name == "alice" and float(score) > 0.75
    assert jarvis("speakers").stdout.split() == ["alice", "bob"]
    damaged = Path(os.environ["JARVIS_HOME"]) / "data" / "speakers" / "carol-0123456789.json"
    damaged.write_text("{ not json")
    result = jarvis("identify", str(probe))
    assert result.returncode == 0 and result.stdout.split()[0] == "alice"
    assert [ln for ln in result.stderr.splitlines() if ln.startswith("warning: ")] == [
        f"warning: {damaged}: damaged speaker profile (unreadable: JSONDecodeError), skipped. Remove that person "
        "(jarvis speakers remove NAME) or delete the file, then enroll again."]
    assert damaged.read_text() == "{ not json"
    damaged.unlink()

    profiles = list((Path(os.environ["JARVIS_HOME"]) / "data" / "speakers").glob("*.json"))
    assert len(profiles) == 2
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in profiles)

    assert jarvis("speakers", "remove", "alice").returncode == 0
    assert jarvis("speakers", "list").stdout.split() == ["bob"]
    assert jarvis("identify", str(probe)).stdout.split()[0] != "alice"


def test_doctor_reports_every_section():
    result = jarvis("doctor", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    for section in ("versions", "audio", "compute", "models", "keyring", "folders"):
        assert section in report
    assert report["folders"]
    text = jarvis("doctor")
    assert text.returncode == 0 and "keyring" in text.stdout.lower()


def test_a_hung_shutdown_is_cut_short_with_a_non_zero_exit_and_says_so():
    """`jarvis listen` arms this guard when asked to stop: a shutdown that hangs must not look like a clean exit."""
    import subprocess
    import sys

    hang = ("import threading, time\n"
            "from jarvis.cli import _exit_soon_after, EXIT_HUNG\n"
            "threading.Thread(target=time.sleep, args=(30,), name='stuck-worker').start()\n"
            "_exit_soon_after(0.3)\n"
            "time.sleep(30)\n")
    ran = subprocess.run([sys.executable, "-c", hang], capture_output=True, text=True, timeout=20)
    assert ran.returncode == 4, (ran.returncode, ran.stderr)
    errors = [line for line in ran.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "shutdown hung for 0.3 s" in errors[0] and "stuck-worker" in errors[0], ran.stderr
