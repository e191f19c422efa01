"""CUDA 12 cuBLAS for CTranslate2 (faster-whisper), from NVIDIA's pip wheel, found without the user setting
LD_LIBRARY_PATH (issue 16).

torch brings CUDA 13's libraries; CTranslate2 4.8 opens ``libcublas.so.12`` (``cublas64_12.dll``) by name, and
nothing else of CUDA's but the driver: its binary names no cuDNN (tests/core/test_cuda_libs.py reads it).
``.venv-cuda`` and the CUDA bundle carry cuBLAS in ``nvidia/cublas/lib`` (requirements-cuda.txt). ``preload()``
loads it into the process with global symbols, so CTranslate2's own ``dlopen`` finds it already there (on Windows:
adds its folder to the DLL search path). It runs only where Whisper goes to a GPU (``preload_for``, ``cuda_ready``):
on the CPU, cuBLAS would cost the process 150 MB of memory for nothing. Without the wheel (the CPU build) it does
nothing.
"""
from __future__ import annotations

import ctypes
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)

CTRANSLATE2_OPENS = "libcublas.so.12"   # the name CTranslate2 asks the dynamic linker for (Linux)
# Load order matters: cuBLASLt before cuBLAS, which needs it.
LINUX_LIBS = ("cublas/lib/libcublasLt.so.12", "cublas/lib/libcublas.so.12")
WINDOWS_DIRS = ("cublas/bin",)
_done: list[str] | None = None


def nvidia_roots(paths: list[str] | None = None) -> list[Path]:
    """The ``nvidia`` package folders on ``paths`` (default ``sys.path``; in a frozen app, its own folder)."""
    search = list(paths if paths is not None else sys.path)
    if getattr(sys, "frozen", False):
        search.insert(0, getattr(sys, "_MEIPASS", os.path.dirname(sys.executable)))
    roots = [Path(p).resolve() / "nvidia" for p in search if p and (Path(p) / "nvidia").is_dir()]
    return list(dict.fromkeys(roots))   # a frozen app's folder is on sys.path too


def candidates(paths: list[str] | None = None) -> list[Path]:
    """The cu12 cuBLAS libraries present, in load order (Linux)."""
    found = []
    for root in nvidia_roots(paths):
        found += [root / rel for rel in LINUX_LIBS if (root / rel).exists()]
    return found


def preload(paths: list[str] | None = None) -> list[str]:
    """Make the cu12 cuBLAS findable; returns what was loaded or added (once per process)."""
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
        log.info("CUDA 12 cuBLAS for Whisper: %s", ", ".join(Path(d).name for d in done))
    _done = done
    return done


def preload_for(device: str) -> list[str]:
    """``preload()`` where Whisper's ``device`` is a GPU ("cuda", "cuda:N"); nothing on the CPU."""
    return preload() if device.strip().lower().startswith("cuda") else []


class _LinkMap(ctypes.Structure):   # the head of glibc's struct link_map
    _fields_ = [("l_addr", ctypes.c_void_p), ("l_name", ctypes.c_char_p)]


def cublas_location() -> str | None:
    """The cuBLAS 12 file CTranslate2 gets when it asks for it by name (after ``preload``), or None where it
    would find none. Loads it (and NVIDIA's wheel, if present) into this process: for ``jarvis doctor``."""
    done = preload()
    if sys.platform == "win32":
        return next((str(Path(d) / "cublas64_12.dll") for d in done if (Path(d) / "cublas64_12.dll").exists()), None)
    try:
        handle = ctypes.CDLL(CTRANSLATE2_OPENS)
    except OSError:
        return None
    try:
        link_map = ctypes.POINTER(_LinkMap)()
        ctypes.CDLL(None).dlinfo(ctypes.c_void_p(handle._handle), 2, ctypes.byref(link_map))  # RTLD_DI_LINKMAP
        return os.fsdecode(link_map.contents.l_name)
    except (AttributeError, OSError, ValueError):   # no dlinfo (not glibc): found, path unknown
        return CTRANSLATE2_OPENS
