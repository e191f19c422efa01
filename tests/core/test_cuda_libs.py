"""Finding CUDA 12 cuBLAS/cuDNN for CTranslate2 (jarvis.cuda_libs). This machine has no NVIDIA wheels, so the
search is tested on a folder laid out like the wheels (files named as NVIDIA's, loaded as real shared objects:
copies of a library that exists here), and the real process path must find nothing and do nothing."""
from __future__ import annotations

import ctypes.util
import shutil
import subprocess
import sys
from pathlib import Path

from jarvis import cuda_libs


def _wheel_layout(root: Path) -> Path:
    """site-packages/nvidia/{cublas,cudnn}/lib with two libraries named as the wheels name them."""
    real = ctypes.util.find_library("m") or "libm.so.6"
    source = next(p for p in (Path("/lib/x86_64-linux-gnu") / real, Path("/usr/lib/x86_64-linux-gnu") / real,
                              Path("/lib64") / real, Path("/lib") / real) if p.exists())
    for rel in ("cublas/lib/libcublasLt.so.12", "cudnn/lib/libcudnn.so.9"):
        target = root / "nvidia" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)
    return root


def test_the_libraries_are_found_in_load_order(tmp_path):
    site = _wheel_layout(tmp_path / "site-packages")
    found = [p.name for p in cuda_libs.candidates([str(site)])]
    assert found == ["libcublasLt.so.12", "libcudnn.so.9"]


def test_preload_loads_them_once_per_process(tmp_path):
    site = _wheel_layout(tmp_path / "site-packages")
    code = ("import sys; from jarvis import cuda_libs; "
            f"a = cuda_libs.preload([{str(site)!r}]); b = cuda_libs.preload([{str(site)!r}]); "
            "print(len(a), a is b)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["2", "True"]


def test_without_the_wheels_nothing_happens():
    out = subprocess.run([sys.executable, "-c", "from jarvis import cuda_libs; print(cuda_libs.preload())"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr


def test_stt_device_auto_is_the_cpu_in_int8_here_and_a_device_set_by_hand_stays():
    from jarvis.listen.stt import cuda_ready, resolve_device

    assert not cuda_ready()                      # no GPU on this machine
    assert resolve_device("auto", "int8") == ("cpu", "int8")
    assert resolve_device("AUTO ", "float32") == ("cpu", "int8")
    assert resolve_device("cpu", "float32") == ("cpu", "float32")
    assert resolve_device("cuda:1", "int8_float16") == ("cuda:1", "int8_float16")

