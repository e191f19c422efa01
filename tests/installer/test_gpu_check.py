"""scripts/gpu-check.sh's dry run on this CPU machine: the plan it would run on a GPU, checked and printed."""
from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_dry_run_prints_the_plan_without_a_gpu():
    out = subprocess.run([str(ROOT / "scripts" / "gpu-check.sh"), "--dry-run"], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    plan = out.stdout
    assert "no NVIDIA GPU here" in plan or "gpu-check: " in plan
    assert "would run: scripts/setup-cuda.sh requirements-test.txt" in plan
    assert "-m gpu tests/gpu" in plan
    assert "bench tts --device cuda" in plan and "listen.stt_device=cuda" in plan
    assert "benchmarks/results/tts-gpu-" in plan


def test_without_a_gpu_and_without_dry_run_it_is_one_line():
    out = subprocess.run([str(ROOT / "scripts" / "gpu-check.sh")], capture_output=True, text=True, timeout=120,
                         cwd=ROOT, env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 3 and out.stderr.strip().startswith("error: no NVIDIA GPU"), out.stderr


def test_the_cuda_environment_asks_for_the_cu12_libraries_whisper_needs():
    wanted = (ROOT / "requirements-cuda.txt").read_text()
    assert "nvidia-cublas-cu12==" in wanted and "nvidia-cudnn-cu12==" in wanted
    setup = (ROOT / "scripts" / "setup-cuda.sh").read_text()
    assert "-r requirements-cuda.txt" in setup
    assert "scripts/setup-cuda.sh" in (ROOT / "installer" / "build.sh").read_text()
    spec = (ROOT / "installer" / "jarvis.spec").read_text()
    assert '"nvidia.cublas", "nvidia.cudnn"' in spec
