"""The bad-input corpus: every command given what a user gets wrong, through the real `jarvis` CLI in a subprocess.
Each case must end with exit code 2, no traceback, exactly one ``error:`` line that names the problem, and every
stored file (settings, an enrolled voice, a cloned voice) byte-identical afterwards.

The store holds real data made by Jarvis's own code: settings with a key this version does not know, alice's
voice signature, and a cloned CSM voice."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.core.test_cli_bad_input import assert_one_clear_line, jarvis

pytestmark = pytest.mark.slow  # ~50 CLI runs


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad_input")
    t = np.arange(16000 * 2) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    sf.write(folder / "tone.wav", tone, 16000, subtype="PCM_16")
    sf.write(folder / "stereo.wav", np.stack([tone, tone], axis=1), 16000)
    sf.write(folder / "cd.wav", tone, 44100)
    sf.write(folder / "silence.wav", np.zeros(16000 * 2, dtype=np.float32), 16000, subtype="PCM_16")
    sf.write(folder / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    (folder / "text.wav").write_text("this is not audio")
    (folder / "header-only.wav").write_bytes((folder / "tone.wav").read_bytes()[:44])
    (folder / "a folder.wav").mkdir()
    return folder


@pytest.fixture
def store(jarvis_home, files):
    """Stored data, written by Jarvis's own code; returns a snapshot function of every stored byte."""
    from jarvis import config, paths
    from jarvis.speakers.encoder import EMBEDDING_SIZE
    from jarvis.speakers.store import SpeakerStore

    settings = config.Settings()
    settings.tts.voices = {"narrator": {"clip": str(files / "tone.wav"), "text": "a test tone"}}
    config.save(settings)
    raw = json.loads(paths.settings_file().read_text())
    raw["from_a_newer_version"] = {"kept": True}
    paths.settings_file().write_text(json.dumps(raw, indent=2))
    rng = np.random.default_rng(7)
    SpeakerStore().add("alice", [v / np.linalg.norm(v) for v in rng.normal(size=(3, EMBEDDING_SIZE))])

    def snapshot() -> dict[str, bytes]:
        return {str(p.relative_to(jarvis_home)): p.read_bytes() for p in sorted(jarvis_home.rglob("*"))
                if p.is_file() and not {"logs", "run"} & set(p.parts)}   # written as Jarvis runs, not stored
    return snapshot


LONG = "word " * 1200

CASES = [
    # say
    (["say", ""], "nothing to say"),
    (["say", "   "], "nothing to say"),
    (["say", "hi", "--engine", "nope", "--out", "{tmp}/x.wav"], "unknown tts engine"),
    (["say", "hi", "--out", "{files}/a folder.wav"], "is a folder"),
    (["say", "hi", "--out", "{tmp}/missing/dir/x.wav"], "does not exist"),
    (["say", LONG, "--out", "{tmp}/x.wav"], "--max-chars"),
    (["say", "hi", "--max-chars", "0", "--out", "{tmp}/x.wav"], "at least 1"),
    (["say", "hi", "--max-chars", "many"], "invalid int value"),
    # transcribe / identify: every way a WAV can be wrong
    *[([command, "{files}/" + name], needle) for command in ("transcribe", "identify") for name, needle in (
        ("missing.wav", "no such file"), ("corrupt.wav", "not a readable wav"), ("text.wav", "not a readable wav"),
        ("stereo.wav", "16000 Hz mono"), ("cd.wav", "16000 Hz mono"), ("empty.wav", "no audio"),
        ("header-only.wav", "cut short"), ("a folder.wav", "folder"))],
    (["transcribe", "{files}/silence.wav"], "silent"),
    (["transcribe"], "the following arguments are required"),
    # enroll
    (["enroll", "bob"], "wav"),
    (["enroll", "bob", "{files}/missing.wav"], "no such file"),
    (["enroll", "bob", "{files}/silence.wav"], "silent"),
    (["enroll", "bob", "{files}/stereo.wav"], "16000 Hz mono"),
    (["enroll", "al\x07ice", "{files}/tone.wav"], "control characters"),
    (["enroll", "", "{files}/tone.wav"], "name"),
    # speakers
    (["speakers", "remove", "nobody"], "nobody"),
    (["speakers", "remove"], "name"),
    (["speakers", "rename", "nobody", "bob"], "nobody"),
    (["speakers", "rename", "alice"], "name"),
    (["speakers", "forget"], "invalid choice"),
    # voices
    (["voices", "add"], "voice name"),
    (["voices", "add", "bob", "{files}/missing.wav", "--text", "hello"], "not found"),
    (["voices", "add", "bob", "{files}/tone.wav"], "--text"),
    (["voices", "remove", "nobody"], "nobody"),
    # secret: never echoes what was typed
    (["secret", "set"], "name"),
    (["secret", "frobnicate"], "usage: jarvis secret"),
    (["secret", "set", "openai_api_key", "sk-typed-on-the-command-line"], "stdin"),
    # ask
    (["ask", ""], "nothing to ask"),
    (["ask", "   "], "nothing to ask"),
    # the speech server: a bad address is refused before anything loads
    (["serve", "--port", "0"], "not between 1 and 65535"),
    (["serve", "--port", "70000"], "not between 1 and 65535"),
    (["serve", "--host", "no-such-host.invalid"], "not an address of this machine"),
    (["serve", "--port", "eighty"], "invalid int value"),
    # the voice loop and devices
    (["listen", "--input-device", "no such microphone"], "input device"),
    (["listen", "--events", "xml"], "invalid choice"),
    (["bench"], "the following arguments are required"),
    (["frobnicate"], "invalid choice"),
]


@pytest.mark.parametrize("args, needle", CASES, ids=[" ".join(a)[:60] for a, _ in CASES])
def test_bad_input_is_one_clear_line_and_nothing_stored_changes(args, needle, store, files, tmp_path):
    before = store()
    ran = jarvis(*[a.replace("{files}", str(files)).replace("{tmp}", str(tmp_path)) for a in args])
    assert_one_clear_line(ran, needle)
    assert "sk-typed-on-the-command-line" not in ran.stdout + ran.stderr
    assert store() == before
    assert not (tmp_path / "x.wav").exists()


def test_the_corpus_covers_every_command_and_is_large_enough():
    from jarvis.cli import COMMANDS
    covered = {args[0] for args, _ in CASES}
    assert len(CASES) >= 40
    assert set(COMMANDS) - covered <= {"doctor", "devices", "tray"}, \
        "doctor and devices take no input; tray is the GUI (tests/ui)"


def test_a_damaged_settings_file_is_moved_aside_never_lost_and_commands_still_run(jarvis_home):
    from jarvis import paths
    broken = paths.settings_file()
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_text('{"audio": {"input_device": "USB mic"')  # cut off mid-write by another program
    ran = jarvis("ask", "what time is it")
    assert ran.returncode == 0 and ran.stdout.startswith("It's "), ran.stdout + ran.stderr
    warnings = [line for line in ran.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "settings" in warnings[0].lower(), ran.stderr
    kept = list(broken.parent.glob("settings.json.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_text() == '{"audio": {"input_device": "USB mic"'
    assert os.environ["JARVIS_HOME"] in str(kept[0])
