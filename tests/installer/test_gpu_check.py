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


def test_every_cuda_environment_gets_the_cu12_cublas_whisper_needs():
    """.venv-cuda (gpu-check, the Linux CUDA build) and the Windows CUDA build install requirements-cuda.txt (what it
    holds: tests/core/test_cuda_libs.py; the frozen build with it: tests/installer/test_cuda_bundle.py)."""
    assert "nvidia-cublas-cu12==" in (ROOT / "requirements-cuda.txt").read_text()
    assert "-r requirements-cuda.txt" in (ROOT / "scripts" / "setup-cuda.sh").read_text()
    assert "scripts/setup-cuda.sh" in (ROOT / "installer" / "build.sh").read_text()
    assert "if ($Cuda) { & $py -m pip install -q -r requirements-cuda.txt }" in \
        (ROOT / "installer" / "windows" / "build.ps1").read_text()


def test_image_mode_plan_needs_no_venv_and_skips_what_the_image_lacks():
    """--image (a bare GPU image with no registry): the image's python3 runs the GPU tests and the TTS bench; no
    setup step; the pipeline bench is skipped, saying why, where the audio stack is missing (as here on /usr/bin)."""
    out = subprocess.run([str(ROOT / "scripts" / "gpu-check.sh"), "--dry-run", "--image"], capture_output=True,
                         text=True, timeout=120, cwd=ROOT, env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    plan = out.stdout
    assert "setup-cuda" not in plan and ".venv-cuda" not in plan
    assert "would run: python3 -m pytest -q -p no:cacheprovider -m gpu tests/gpu" in plan
    assert "would run: python3 -m jarvis bench tts --device cuda" in plan
    assert "skipping the pipeline bench" in plan and "bench pipeline" not in plan.replace("the pipeline bench", "")


def test_an_unknown_option_is_one_line():
    out = subprocess.run([str(ROOT / "scripts" / "gpu-check.sh"), "--fast"], capture_output=True, text=True,
                         timeout=60, cwd=ROOT)
    assert out.returncode == 2 and out.stderr.strip() == \
        "error: unknown option --fast (use --dry-run, --image [WHEELS] or nothing)", out.stderr
