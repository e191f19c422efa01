"""`jarvis --self-test` (what the packaged build runs to prove itself): real models, no devices needed."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.core.test_cli_bad_input import jarvis

pytestmark = pytest.mark.slow

STEPS = ["speech synthesis", "speech-to-text", "wake word", "voice activity", "speaker identification",
         "language model"]


def _lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith(("PASS", "FAIL"))]


def test_self_test_passes_every_step_and_leaves_the_users_voices_alone():
    result = jarvis("--self-test", timeout=300)
    lines = _lines(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split("  ", 1)[1].split(" (")[0].split(":")[0] for line in lines] == STEPS, lines
    assert all(line.startswith("PASS") for line in lines)
    assert "self-test: 6 of 6 steps passed" in result.stdout
    assert "Traceback" not in result.stderr
    speakers = Path(os.environ["JARVIS_HOME"]) / "data" / "speakers"
    assert not speakers.exists() or not any(speakers.iterdir()), "the test voices went into the user's store"


def test_a_failing_step_is_one_fail_line_and_a_non_zero_exit(jarvis_home):
    from jarvis import paths

    settings = paths.settings_file()
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps({"schema_version": 2, "brain": {"local_model": "/nowhere/model.gguf"}}))
    result = jarvis("--self-test", timeout=300)
    lines = _lines(result.stdout)
    assert result.returncode == 1
    failed = [line for line in lines if line.startswith("FAIL")]
    assert len(failed) == 1 and "language model" in failed[0] and "/nowhere/model.gguf" in failed[0], lines
    assert "self-test: 5 of 6 steps passed" in result.stdout and "Traceback" not in result.stdout + result.stderr
