"""The PyInstaller build (installer/build.sh) produces dist/jarvis/ and its --self-test passes.

It runs the frozen app with a bare environment (no virtualenv on PATH, no PYTHONPATH), as on a machine
without Python. Slow: about 4 minutes and 2 GB of disk.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    dist = tmp_path_factory.mktemp("dist")
    built = subprocess.run([str(ROOT / "installer" / "build.sh"), str(dist)], cwd=ROOT, capture_output=True,
                           text=True, timeout=1800)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return dist / "jarvis", built.stdout


def test_build_runs_the_self_test_and_every_step_passes(bundle):
    _, output = bundle
    assert "self-test: 6 of 6 steps passed" in output, output[-3000:]


def test_the_frozen_app_works_without_python_on_the_path(bundle, tmp_path):
    app, _ = bundle
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "JARVIS_HOME": str(tmp_path / "home"),
           "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([str(app / "jarvis"), "--self-test"], env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert result.stdout.count("PASS") == 6 and "FAIL" not in result.stdout
    ask = subprocess.run([str(app / "jarvis"), "ask", "what time is it"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert ask.returncode == 0 and ask.stdout.startswith("It's "), ask.stdout + ask.stderr
    bad = subprocess.run([str(app / "jarvis"), "transcribe", str(tmp_path / "missing.wav")], env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr
    assert not any(p.name.startswith("torchaudio") for p in (app / "_internal").iterdir()), "torchaudio is bundled"
