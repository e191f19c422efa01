"""Bad input on every user-facing command: one clear line, non-zero exit, no traceback,
stored data untouched. Runs the real `jarvis` CLI in a subprocess."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]


def jarvis(*args: str, env_extra: dict | None = None, timeout: float = 120,
           prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([*prefix, sys.executable, "-m", "jarvis", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def obeying_file_modes() -> tuple[str, ...]:
    """A command prefix under which file modes apply: root normally ignores them, so as root the child runs
    without CAP_DAC_OVERRIDE (setpriv; a real permission check, nothing faked)."""
    if os.geteuid() != 0:
        return ()
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: read-only files cannot be made read-only for root")
    return ("setpriv", "--bounding-set=-dac_override,-dac_read_search", "--")


def write_settings(data: dict) -> Path:
    """A settings file in this test's JARVIS_HOME; returns its path."""
    path = Path(os.environ["JARVIS_HOME"]) / "config" / "settings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    return path


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
    sf.write(tmp_path / "tone.wav", tone, 16000, subtype="PCM_16")
    whole = (tmp_path / "tone.wav").read_bytes()
    (tmp_path / "truncated.wav").write_bytes(whole[:len(whole) // 2])  # the header still says 2 s
    (tmp_path / "header-only.wav").write_bytes(whole[:44])
    return tmp_path


@pytest.mark.parametrize("command", ["transcribe", "identify"])
@pytest.mark.parametrize("name, needle", [
    ("missing.wav", "no such file"), ("corrupt.wav", "not a readable wav"), ("text.wav", "not a readable wav"),
    ("stereo.wav", "16000 Hz mono"), ("cd.wav", "16000 Hz mono"), ("empty.wav", "no audio"),
    ("header-only.wav", "cut short"),
])
def test_bad_wav(wavs, command, name, needle):
    before = (wavs / name).read_bytes() if (wavs / name).exists() else None
    assert_one_clear_line(jarvis(command, str(wavs / name)), needle)
    assert (wavs / name).read_bytes() == before if before is not None else not (wavs / name).exists()


def test_transcribe_silence_is_refused(wavs):
    assert_one_clear_line(jarvis("transcribe", str(wavs / "silence.wav")), "silent", "recording of someone speaking")


def test_transcribe_truncated_wav_warns_and_uses_what_is_there(wavs):
    result = jarvis("transcribe", str(wavs / "truncated.wav"))
    assert result.returncode == 0, result.stderr
    warnings = [ln for ln in result.stderr.splitlines() if ln.startswith("warning: ")]
    assert len(warnings) == 1 and "cut short" in warnings[0] and "2.00 s" in warnings[0], result.stderr
    assert "error:" not in result.stderr


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


# A piper voice that does not exist: any attempt to load or synthesize would print "piper unavailable".
UNLOADABLE_TTS = {"schema_version": 2, "tts": {"engines": ["piper"], "piper_voice": "/nonexistent/voice.onnx"}}


def assert_no_synthesis(result: subprocess.CompletedProcess, settings: Path, before: bytes) -> None:
    assert "unavailable" not in result.stderr and "could start" not in result.stderr, result.stderr
    assert settings.read_bytes() == before


def test_say_out_path_checked_before_synthesis(tmp_path):
    settings = write_settings(UNLOADABLE_TTS)
    before = settings.read_bytes()
    folder = tmp_path / "a folder.wav"
    folder.mkdir()
    for out, needles in ((folder, ("is a folder", "file name")),
                         (tmp_path / "missing" / "x.wav", ("does not exist", "mkdir -p"))):
        result = jarvis("say", "hello", "--out", str(out))
        assert_one_clear_line(result, *needles)
        assert_no_synthesis(result, settings, before)
    assert not (tmp_path / "missing").exists() and not list(folder.iterdir())


def test_say_out_read_only_file_or_folder(tmp_path):
    settings = write_settings(UNLOADABLE_TTS)
    before = settings.read_bytes()
    kept = tmp_path / "kept.wav"
    kept.write_bytes(b"an older recording")
    kept.chmod(0o444)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        result = jarvis("say", "hello", "--out", str(kept), prefix=obeying_file_modes())
        assert_one_clear_line(result, "read-only", "chmod u+w")
        assert_no_synthesis(result, settings, before)
        assert kept.read_bytes() == b"an older recording"
        result = jarvis("say", "hello", "--out", str(locked / "x.wav"), prefix=obeying_file_modes())
        assert_one_clear_line(result, "not writable", "choose a folder")
        assert_no_synthesis(result, settings, before)
        assert not list(locked.iterdir())
    finally:
        locked.chmod(0o755)


def test_say_refuses_text_over_the_limit(tmp_path):
    settings = write_settings(UNLOADABLE_TTS)
    before = settings.read_bytes()
    out = tmp_path / "long.wav"
    result = jarvis("say", "word " * 1200, "--out", str(out))  # 6,000 characters; the default limit is 5,000
    assert_one_clear_line(result, "5,000", "--max-chars 5999")
    assert_no_synthesis(result, settings, before)
    assert_one_clear_line(jarvis("say", "hello there", "--max-chars", "5", "--out", str(out)), "--max-chars 11")
    assert_one_clear_line(jarvis("say", "hello", "--max-chars", "0", "--out", str(out)), "at least 1")
    write_settings({"schema_version": 2, "tts": {"max_say_chars": 3}})
    assert_one_clear_line(jarvis("say", "hello", "--out", str(out)), "at most 3")
    assert not out.exists()


def test_say_refuses_a_seed_out_of_range_before_any_voice_loads(tmp_path):
    settings = write_settings(UNLOADABLE_TTS)
    before = settings.read_bytes()
    out = tmp_path / "seeded.wav"
    for seed in ("-1", str(2**31)):
        result = jarvis("say", "hello", "--seed", seed, "--out", str(out))
        assert_one_clear_line(result, "--seed must be a whole number from 0", "--seed 1")
        assert_no_synthesis(result, settings, before)
    assert not out.exists()


def speakers_dir() -> Path:
    folder = Path(os.environ["JARVIS_HOME"]) / "data" / "speakers"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_identify_with_nobody_enrolled_says_to_enroll(wavs):
    assert_one_clear_line(jarvis("identify", str(wavs / "tone.wav")), "nobody is enrolled", "jarvis enroll NAME")


def test_identify_warns_about_a_damaged_profile(wavs):
    damaged = speakers_dir() / "ann-0123456789.json"
    damaged.write_text('{"schema_version": 1, "name": "Ann", "embeddings": [[0.1, 0.2')
    before = damaged.read_bytes()
    result = jarvis("identify", str(wavs / "tone.wav"))
    assert_one_clear_line(result, "nobody is enrolled")
    warnings = [ln for ln in result.stderr.splitlines() if ln.startswith("warning: ")]
    assert len(warnings) == 1 and str(damaged) in warnings[0] and "jarvis speakers remove" in warnings[0]
    assert damaged.read_bytes() == before


def test_ask_with_very_long_text_is_answered_at_once():
    """100,000 characters with the LLM off: the skill matcher refuses it early (it was quadratic: 44 s)."""
    result = jarvis("ask", "The cat sat on the mat. " * 4200, "--backend", "off", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "can't answer that offline" in result.stdout


KEY = "sk-test-DoNotEcho1234567890"


@pytest.mark.parametrize("args, needles", [
    (("secret", "set", "openai_api_key", KEY), ("echo KEY | jarvis secret set openai_api_key",)),
    (("secret", "set", "openai_api_key", KEY, "more"), ("echo KEY | jarvis secret set openai_api_key",)),
    (("secret", "set", "openai_api_key", "-" + KEY), ("echo KEY | jarvis secret set openai_api_key",)),
    (("secret", "set", KEY), ("unknown secret name (not shown",)),
    (("secret", KEY), ("usage: jarvis secret set name",)),
    (("secret", "set", KEY, "openai_api_key"), ("echo KEY | jarvis secret set NAME",)),
])
def test_a_key_on_the_command_line_is_never_echoed(args, needles):
    result = jarvis(*args)
    assert_one_clear_line(result, *needles)
    assert "DoNotEcho" not in result.stdout + result.stderr


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


def test_bad_settings_values_fall_back_one_line_each_and_unknown_keys_survive_a_save():
    settings = write_settings({
        "schema_version": 2,
        "listen": {"wake_sensitivity": 7.5, "wake_word": "jarvis", "knob_from_a_newer_jarvis": {"x": [1, 2.5]},
                   "end_of_turn": "psychic"},
        "speakers": {"threshold": -3},
        "audio": {"block_ms": True, "input_device": "USB mic"},
        "brain": {"max_tokens": "lots", "temperature": float("nan")},
        "tts": {"voices": {"old": {"clip": "/gone.wav", "text": "hi"}}},
        "section_from_a_newer_jarvis": {"on": True, "list": ["a", {"b": None}]},
    })
    before = settings.read_bytes()
    result = jarvis("speakers", "list")
    assert result.returncode == 0 and "Traceback" not in result.stderr
    warnings = [ln for ln in result.stderr.splitlines() if ln.startswith("warning: settings: ")]
    assert len(warnings) == 6, result.stderr
    for field, needle in (("listen.wake_sensitivity", "out of range (0 to 1); using the default 0.6"),
                          ("listen.end_of_turn", "not one of model, silence; using the default \"model\""),
                          ("speakers.threshold", "out of range (0 to 1); using the default 0.75"),
                          ("audio.block_ms", "is true, not a number; using the default 32"),
                          ("brain.max_tokens", "not a number"), ("brain.temperature", "not a finite number")):
        [line] = [ln for ln in warnings if f"settings: {field} " in ln]
        assert needle in line and f"Fix it in {settings}" in line
    assert settings.read_bytes() == before  # loading never rewrites the file

    assert jarvis("voices", "remove", "old").returncode == 0  # a command that saves the settings
    saved = json.loads(settings.read_text())
    assert saved["section_from_a_newer_jarvis"] == {"on": True, "list": ["a", {"b": None}]}
    assert saved["listen"]["knob_from_a_newer_jarvis"] == {"x": [1, 2.5]}
    assert saved["audio"]["input_device"] == "USB mic" and saved["tts"]["voices"] == {}
    assert saved["listen"]["wake_sensitivity"] == 0.6 and saved["speakers"]["threshold"] == 0.75


def test_unreadable_settings_notice_stays_in_doctor_until_the_file_is_dealt_with():
    settings = write_settings({})
    settings.write_text('{"listen": ')
    assert "unreadable" in jarvis("speakers", "list").stderr
    [kept] = settings.parent.glob("settings.json.corrupt-*")
    for _ in range(2):  # not only on the run that found it
        report = json.loads(jarvis("doctor", "--json").stdout)
        [problem] = report["settings"]["problems"]
        assert str(kept) in problem and "delete" in problem and problem in report["warnings"]
    text = jarvis("doctor").stdout
    assert f"PROBLEM - {problem}" in text and f"  - {problem}" in text
    assert kept.read_text() == '{"listen": '
    kept.unlink()
    assert json.loads(jarvis("doctor", "--json").stdout)["settings"]["problems"] == []


def test_no_audio_device_at_all(tmp_path):
    """With no audio server reachable and no sound card, PortAudio sees no devices."""
    env = {"PULSE_SERVER": f"unix:{tmp_path}/none"}
    result = jarvis("listen", env_extra=env, timeout=60)
    assert_one_clear_line(result, "no audio")
    result = jarvis("say", "hello", env_extra=env, timeout=60)
    assert_one_clear_line(result, "no audio")
