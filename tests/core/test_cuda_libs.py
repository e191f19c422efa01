"""CUDA 12 cuBLAS for CTranslate2 (jarvis.cuda_libs), with NVIDIA's real wheel (the ``cublas_site`` fixture). There
is no GPU here, so what is tested is what CTranslate2 gets when it asks the dynamic linker for ``libcublas.so.12``
by name, as it does on a GPU before its first matrix product, and that nothing is loaded for Whisper on the CPU."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import ctranslate2

from jarvis import cuda_libs

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str, site: Path | None = None) -> list[str]:
    """Run ``code`` in a fresh process (``site`` on its path, as .venv-cuda's site-packages) on a machine without an
    NVIDIA GPU (here; on a GPU machine, its GPUs hidden): its output lines."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LD_LIBRARY_PATH")}  # JARVIS_HOME: the test's
    env["CUDA_VISIBLE_DEVICES"] = ""
    if site is not None:
        env["PYTHONPATH"] = str(site)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.splitlines()


def _cuda_names_ctranslate2_opens() -> set[str]:
    """The CUDA libraries CTranslate2's own library opens by name at run time (its stubs ``dlopen`` them; none is
    linked), read from the library the installed wheel ships."""
    package = Path(ctranslate2.__file__).parent
    library = next(p for p in [*package.parent.glob("ctranslate2.libs/libctranslate2*.so*"),
                               *package.glob("libctranslate2*.so*")])
    names = set(re.findall(rb"lib(?:cu|nv|nccl)\w*\.so\.\d+", library.read_bytes()))
    return {n.decode() for n in names}


def test_ctranslate2_opens_cublas_12_and_nothing_else_of_cuda_12():
    """Beside the driver (libcuda.so.1) and NCCL (tensor parallelism across processes, which Jarvis never starts),
    CTranslate2 opens cuBLAS 12 alone: no cuDNN. requirements-cuda.txt brings exactly that; a CTranslate2 that asks
    for more fails here, naming it."""
    opened = _cuda_names_ctranslate2_opens() - {"libcuda.so.1", "libnccl.so.2"}
    assert opened == {cuda_libs.CTRANSLATE2_OPENS}
    wanted = [line for line in (ROOT / "requirements-cuda.txt").read_text().splitlines()
              if line and not line.startswith("#")]
    assert wanted == [line for line in wanted if line.startswith("nvidia-cublas-cu12==12.")] and len(wanted) == 1


def test_the_wheels_libraries_are_found_in_load_order(cublas_site):
    found = [p.name for p in cuda_libs.candidates([str(cublas_site)])]
    assert found == ["libcublasLt.so.12", "libcublas.so.12"]


def test_ctranslate2_asking_by_name_gets_the_wheels_cublas(cublas_site):
    """No LD_LIBRARY_PATH: the wheel on the path is enough. Loaded once per process."""
    lines = _python("from jarvis import cuda_libs; a = cuda_libs.preload(); print(a is cuda_libs.preload()); "
                    "print(cuda_libs.cublas_location())", cublas_site)
    assert lines == ["True", str(cublas_site / "nvidia" / "cublas" / "lib" / "libcublas.so.12")]


def test_without_the_wheel_nothing_is_loaded_and_nothing_found():
    assert _python("from jarvis import cuda_libs; print(cuda_libs.preload(), cuda_libs.cublas_location())") == \
        ["[] None"]


def test_whisper_on_the_cpu_loads_no_cublas_even_where_the_wheel_is(cublas_site):
    """A CUDA build on a machine without an NVIDIA GPU: Whisper transcribes on the CPU, for ``jarvis transcribe`` and
    in the voice loop's engine, and the process never maps cuBLAS (150 MB of memory); a GPU device would load it."""
    code = """
import numpy as np
from RealtimeSTT.transcription_engines.base import TranscriptionEngineConfig
from jarvis import config, cuda_libs
import jarvis.listen.stt_worker  # what the listener imports: RealtimeSTT with Jarvis's engine
from jarvis.listen.command_engine import CommandWhisperEngine
from jarvis.listen.stt import Transcriber, resolve_model
def mapped():
    return any("libcublas" in line for line in open("/proc/self/maps"))
transcriber = Transcriber(config.load().listen)
transcriber.load()
print(transcriber.transcribe(np.zeros(16000, dtype=np.float32)) is not None, mapped())
engine = CommandWhisperEngine(TranscriptionEngineConfig(model=resolve_model("tiny.en"), compute_type="int8"))
print(engine.transcribe(np.zeros(16000, dtype=np.float32)) is not None, mapped())
print(cuda_libs.preload_for("cpu"), mapped())
print(len(cuda_libs.preload_for("cuda:1")), mapped())
"""
    assert _python(code, cublas_site) == ["True False", "True False", "[] False", "2 True"]


def test_stt_device_auto_is_the_cpu_in_int8_without_a_gpu_and_a_device_set_by_hand_stays(cublas_site):
    code = """
from jarvis.listen.stt import cuda_ready, resolve_device
print(cuda_ready(), resolve_device("auto", "int8"), resolve_device("AUTO ", "float32"))
print(resolve_device("cpu", "float32"), resolve_device("cuda:1", "int8_float16"))
"""
    assert _python(code, cublas_site) == ["False ('cpu', 'int8') ('cpu', 'int8')",
                                          "('cpu', 'float32') ('cuda:1', 'int8_float16')"]
