"""CUDA 12 cuBLAS and cuDNN for CTranslate2 (faster-whisper), from NVIDIA's pip wheels, found without the user
setting LD_LIBRARY_PATH (issue 16).

torch brings CUDA 13's libraries; CTranslate2 4.8 opens ``libcublas.so.12`` and ``libcudnn*.so.9`` by name.
``.venv-cuda`` and the CUDA bundle carry them in ``nvidia/cublas/lib`` and ``nvidia/cudnn/lib``
(requirements-cuda.txt). ``preload()`` loads them into the process with global symbols, so CTranslate2's own
``dlopen`` finds them already there (on Windows: adds their folders to the DLL search path). It runs in the
process that loads Whisper: RealtimeSTT's worker imports ``jarvis.listen.stt_worker``, which calls it. Without the
wheels (the CPU build) it does nothing.
"""
from __future__ import annotations

import ctypes
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)

# Load order matters: cuBLASLt before cuBLAS, cuDNN's core before its engines.
LINUX_LIBS = ("cublas/lib/libcublasLt.so.12", "cublas/lib/libcublas.so.12", "cudnn/lib/libcudnn.so.9",
              "cudnn/lib/libcudnn_ops.so.9", "cudnn/lib/libcudnn_cnn.so.9", "cudnn/lib/libcudnn_graph.so.9",
              "cudnn/lib/libcudnn_engines_precompiled.so.9", "cudnn/lib/libcudnn_engines_runtime_compiled.so.9",
              "cudnn/lib/libcudnn_heuristic.so.9", "cudnn/lib/libcudnn_adv.so.9")
WINDOWS_DIRS = ("cublas/bin", "cudnn/bin")
_done: list[str] | None = None


def nvidia_roots(paths: list[str] | None = None) -> list[Path]:
    """The ``nvidia`` package folders on ``paths`` (default ``sys.path``; in a frozen app, its own folder)."""
    search = list(paths if paths is not None else sys.path)
    if getattr(sys, "frozen", False):
        search.insert(0, getattr(sys, "_MEIPASS", os.path.dirname(sys.executable)))
    return [Path(p) / "nvidia" for p in search if p and (Path(p) / "nvidia").is_dir()]


def candidates(paths: list[str] | None = None) -> list[Path]:
    """The cu12 libraries present, in load order (Linux)."""
    found = []
    for root in nvidia_roots(paths):
        found += [root / rel for rel in LINUX_LIBS if (root / rel).exists()]
    return found


def preload(paths: list[str] | None = None) -> list[str]:
    """Make the cu12 libraries findable; returns what was loaded or added (once per process)."""
    global _done
    if _done is not None:
        return _done
    done: list[str] = []
    if sys.platform == "win32":
        for root in nvidia_roots(paths):
            for rel in WINDOWS_DIRS:
                if (root / rel).is_dir():
                    os.add_dll_directory(str(root / rel))
                    done.append(str(root / rel))
    else:
        for lib in candidates(paths):
            try:
                ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
                done.append(str(lib))
            except OSError as exc:   # a broken wheel: CTranslate2 then says what it misses, Whisper uses the CPU
                log.warning("could not load %s: %s", lib, exc)
    if done:
        log.info("CUDA 12 libraries for Whisper: %s", ", ".join(Path(d).name for d in done))
    _done = done
    return done
