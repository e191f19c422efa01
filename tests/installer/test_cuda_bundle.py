"""The CUDA build's part for Whisper, frozen: CUDA 12 cuBLAS in the app, where CTranslate2 finds it (issue 16).

``installer/build.sh --cuda`` runs PyInstaller on installer/jarvis.spec with JARVIS_BUILD_VARIANT=cuda in .venv-cuda,
whose torch is the CUDA build (several GB; its CUDA 13 libraries come with PyInstaller's own torch hook, and no GPU
is here to use them). This test runs the same spec, the same way, in this machine's .venv (torch's CPU build) with
NVIDIA's real cuBLAS 12 wheel in a site-packages folder on the path (the ``cublas_site`` fixture): what the CUDA
build adds for Whisper is built for real. The app then runs as on a machine without Python and without an NVIDIA GPU.
Slow: about 4 minutes for the build (beside the CPU one: tests/installer/conftest.py) and 2.4 GB of disk.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.installer.test_bundle import bare_env
from tests.speech import espeak_wav

pytestmark = pytest.mark.slow

CUBLAS = ("libcublasLt.so.12", "libcublas.so.12")
LOADED = "INFO jarvis.cuda_libs: CUDA 12 cuBLAS for Whisper"   # jarvis.cuda_libs.preload's line in the log
NO_GPU = {"CUDA_VISIBLE_DEVICES": ""}   # as on a machine without an NVIDIA GPU (here there is none anyway)


@pytest.fixture(scope="module")
def cuda_app(frozen_builds) -> Path:
    app, _ = frozen_builds["cuda"].result()   # built beside the CPU app (tests/installer/conftest.py)
    return app


def test_the_cuda_build_carries_cublas_12_where_jarvis_looks_and_no_cudnn(cuda_app, cublas_site):
    assert (cuda_app / "BUILD.txt").read_text().startswith("Jarvis cuda build for linux")
    internal = cuda_app / "_internal"
    for name in CUBLAS:
        bundled, wheel = internal / "nvidia" / "cublas" / "lib" / name, cublas_site / "nvidia" / "cublas" / "lib" / name
        assert bundled.is_file() and bundled.stat().st_size == wheel.stat().st_size, name
    # One copy of each (750 MB for cuBLASLt); PyInstaller links the name from the app's top folder.
    copies = sorted(str(p.relative_to(cuda_app)) for p in cuda_app.rglob("libcublas*") if not p.is_symlink())
    assert copies == [f"_internal/nvidia/cublas/lib/{name}" for name in sorted(CUBLAS)]
    for link in (p for p in cuda_app.rglob("libcublas*") if p.is_symlink()):
        assert link.resolve().parent == internal / "nvidia" / "cublas" / "lib", link
    # torch is the CPU build here, so any cuDNN would be one for Whisper, which CTranslate2 4.8 never opens (in the
    # real CUDA build, torch's hook brings CUDA 13's own cuDNN to the same nvidia/cudnn folder).
    assert not list(cuda_app.rglob("libcudnn*"))


def test_the_frozen_cuda_build_gives_ctranslate2_its_own_cublas(cuda_app, tmp_path):
    """`jarvis doctor` asks the dynamic linker for libcublas.so.12 by name, as CTranslate2 does on a GPU, after
    Jarvis's preload: it gets the bundle's copy, with a bare environment (no LD_LIBRARY_PATH, no Python)."""
    out = subprocess.run([str(cuda_app / "jarvis"), "doctor"], env=bare_env(tmp_path, **NO_GPU), capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    cublas = cuda_app / "_internal" / "nvidia" / "cublas" / "lib" / "libcublas.so.12"
    assert (f"  speech-to-text runs on: found at cpu (int8); listen.stt_device is auto; cuBLAS 12 from {cublas}, "
            "used only with an NVIDIA GPU") in out.stdout.splitlines()
    log = (tmp_path / "jarvis" / "logs" / "jarvis.log").read_text()
    assert f"{LOADED}: libcublasLt.so.12, libcublas.so.12\n" in log   # each once: the app's folder is looked in once


def test_the_frozen_cuda_build_transcribes_on_the_cpu_without_a_gpu(cuda_app, tmp_path):
    clip = espeak_wav("What time is it", tmp_path / "question.wav")
    out = subprocess.run([str(cuda_app / "jarvis"), "transcribe", str(clip)], env=bare_env(tmp_path, **NO_GPU),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "time is it" in out.stdout.lower()
    assert LOADED not in (tmp_path / "jarvis" / "logs" / "jarvis.log").read_text()   # Whisper on the CPU: no cuBLAS
