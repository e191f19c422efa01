"""`jarvis ask` as a user runs it: the real local model offline, a real loopback server, real speech."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.core.test_cli_bad_input import assert_one_clear_line, jarvis
from tests.speech import espeak_wav

pytestmark = pytest.mark.slow

GREEDY = {"schema_version": 2, "brain": {"temperature": 0.0}}


def write_settings(raw: dict) -> Path:
    from jarvis import paths

    path = paths.settings_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(raw))
    return path


@pytest.fixture(autouse=True)
def greedy(jarvis_home):
    write_settings(GREEDY)


def test_ask_answers_an_open_question_from_the_local_model_offline():
    result = jarvis("ask", "What is the capital of France?", env_extra={"HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    assert "paris" in result.stdout.lower(), result.stdout
    assert result.stderr == ""


def test_ask_answers_skills_even_when_the_llm_cannot_start(tmp_path):
    broken = ["--local-model", str(tmp_path / "missing.gguf")]
    result = jarvis("ask", "what time is it", *broken)
    assert result.returncode == 0 and result.stdout.startswith("It's "), (result.stdout, result.stderr)
    result = jarvis("ask", "Why is the sky blue?", *broken)
    assert result.stdout.strip() == "Sorry, my language model isn't available."
    assert_one_clear_line(result, "missing.gguf")


def test_ask_through_a_loopback_openai_compatible_server():
    from tests.llm_server import LlmServer, free_port

    with LlmServer() as server:
        result = jarvis("ask", "What is the capital of France?", "--backend", "openai",
                        "--base-url", server.base_url, "--model", "smollm2")
    assert result.returncode == 0, result.stderr
    assert "paris" in result.stdout.lower(), result.stdout
    down = jarvis("ask", "Why is the sky blue?", "--backend", "openai", "--base-url",
                  f"http://127.0.0.1:{free_port()}/v1", "--model", "smollm2")
    assert down.stdout.strip() == "Sorry, I can't reach the language model server."
    assert_one_clear_line(down, "cannot reach", "brain.base_url")


def test_ask_as_an_enrolled_speaker_uses_their_name(tmp_path):
    clips = [espeak_wav(t, tmp_path / f"a{i}.wav", "en-us+f2") for i, t in enumerate(
        ["The quick brown fox jumps over the lazy dog.", "I would like a cup of tea this afternoon."])]
    assert jarvis("enroll", "Alice", *map(str, clips)).returncode == 0
    result = jarvis("ask", "what is my name", "--speaker", "alice")
    assert result.returncode == 0 and "Alice" in result.stdout, (result.stdout, result.stderr)
    assert_one_clear_line(jarvis("ask", "hello", "--speaker", "zed"), "no enrolled speaker named 'zed'",
                          "enrolled: alice")


@pytest.mark.parametrize("args, needles", [
    (["   "], ["nothing to ask"]),
    (["hi", "--backend", "gpt"], ["invalid choice"]),
])
def test_ask_bad_input_is_one_line(args, needles):
    result = jarvis("ask", *args)
    if "invalid choice" in needles:  # argparse's own message and exit code 2
        assert result.returncode == 2 and "invalid choice" in result.stderr
        return
    assert_one_clear_line(result, *needles)


def test_ask_unknown_backend_in_settings_is_one_line():
    path = write_settings({"schema_version": 2, "brain": {"backend": "gpt"}})
    assert_one_clear_line(jarvis("ask", "hi"), "unknown brain backend 'gpt'", "local, openai or off")
    assert json.loads(path.read_text())["brain"]["backend"] == "gpt", "the stored settings were changed"


@pytest.mark.e2e
def test_ask_say_speaks_the_streamed_reply(virtual_audio):
    from tests.e2e.test_voice_loop import _to_16k

    env = virtual_audio.subprocess_env(JARVIS_HOME=os.environ["JARVIS_HOME"])
    with virtual_audio.record_speaker() as speaker:
        result = jarvis("ask", "What is the capital of France?", "--say", "--output-device", "jarvis_speaker",
                        env_extra=env)
    assert result.returncode == 0, result.stderr
    from jarvis.config import ListenSettings
    from jarvis.listen.stt import Transcriber

    heard = Transcriber(ListenSettings()).transcribe(_to_16k(speaker.samples, speaker.rate))
    assert "paris" in result.stdout.lower() and "paris" in heard.lower(), (result.stdout, heard)


def test_bench_brain_runs_and_writes_its_json(tmp_path):
    out = tmp_path / "brain.json"
    result = jarvis("bench", "brain", "--questions", "1", "--out", str(out))
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert data["questions"] == 1 and data["tts_engine"] == "piper" and "SmolLM2" in data["llm"]
    run = data["runs"][0]
    assert 0 < run["first_token_s"] <= run["first_sentence_s"] <= run["first_audio_s"] <= run["total_s"]
    assert run["audio_s"] > 0.5 and run["reply"]
    assert "first audio" in result.stdout
