"""A windowed build (Windows jarvis.exe, the macOS app) starts without stdout/stderr: Python then sets
``sys.stdout`` and ``sys.stderr`` to None. Closing file descriptors 1 and 2 before Python starts gives
exactly that state from source, so these runs behave as the windowed build does."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run_without_std_streams(*args: str) -> int:
    script = 'exec "$0" -m jarvis "$@" >&- 2>&-'
    return subprocess.run(["sh", "-c", script, sys.executable, *args], cwd=ROOT, env=dict(os.environ),
                          timeout=120).returncode


def test_output_and_errors_go_to_the_console_log_when_there_are_no_std_streams(jarvis_home):
    assert _run_without_std_streams("ask", "what time is it") == 0
    assert _run_without_std_streams("transcribe", str(jarvis_home / "missing.wav")) == 2
    log = (jarvis_home / "logs" / "console.log").read_text()
    assert "It's " in log, log
    assert "error: " in log and "missing.wav" in log and "Traceback" not in log, log

