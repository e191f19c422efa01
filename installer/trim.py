"""What the frozen build leaves out: modules, data and native libraries Jarvis never loads.

``EXCLUDED_MODULES`` go to PyInstaller's Analysis. ``trim()`` then filters its binaries and datas:
torch's C++ test programs, headers and static libraries (torch_shm_manager stays: torch needs it), Qt's
translations and the Qt plugins for platforms Jarvis does not run on (framebuffer, VNC, EGLFS, evdev input)
or does not use (network information, TLS, the GTK3 theme), and on Linux every system library that only a
dropped plugin needed (found with ``ldd``).
"""
from __future__ import annotations

import os
import shutil
import subprocess

EXCLUDED_MODULES = [
    "torchaudio", "torchvision", "tensorboard", "tkinter", "matplotlib", "pytest", "IPython",
    "PySide6.QtWebEngineCore", "PySide6.Qt3DCore", "PySide6.QtQuick", "PySide6.QtQml", "PySide6.QtMultimedia",
    "PySide6.QtNetwork",
    # librosa and its JIT (numba, llvmlite: 190 MB) came with resemblyzer's preprocessing, which
    # jarvis/speakers/features.py now does in numpy.
    "librosa", "numba", "llvmlite", "sklearn",
    # Test tools and llama.cpp's HTTP server's extras (the tests start it from the venv; `jarvis serve` needs
    # only fastapi, starlette and uvicorn, which stay).
    "_pytest", "py", "pluggy", "iniconfig", "pylab", "mpl_toolkits",
    "sse_starlette", "starlette_context", "pydantic_settings",
    # torch.compile's GPU compiler (700 MB in the CUDA build): the CSM fast path captures CUDA graphs itself.
    "triton",
    # Piper's phoneme times (the pipeline benchmark's paused commands, run from a checkout), not the voice itself.
    "onnx",
]

_DROPPED_PREFIXES = tuple(p.replace("/", os.sep) for p in (
    "torch/test/", "torch/bin/test_", "torch/bin/protoc", "torch/bin/FileStoreTest", "torch/bin/HashStoreTest",
    "torch/bin/TCPStoreTest", "torch/include/", "torch/share/",
    # CUDA build: the multi-GPU solver, which torch neither links nor preloads
    "nvidia/cu13/lib/libcusolverMg", "nvidia/cu12/lib/libcusolverMg",
    "PySide6/Qt/translations/",
    "PySide6/Qt/plugins/egldeviceintegrations/", "PySide6/Qt/plugins/generic/",
    "PySide6/Qt/plugins/networkinformation/", "PySide6/Qt/plugins/tls/",
    "PySide6/Qt/plugins/platforms/libqeglfs", "PySide6/Qt/plugins/platforms/libqlinuxfb",
    "PySide6/Qt/plugins/platforms/libqminimalegl", "PySide6/Qt/plugins/platforms/libqvnc",
    "PySide6/Qt/plugins/platforms/libqvkkhrdisplay", "PySide6/Qt/plugins/platformthemes/libqgtk3",
    "PySide6/Qt/lib/libQt6EglFS", "PySide6/Qt/lib/libQt6Network",
))
# torch's own test libraries (loaded only by its C++ tests)
_DROPPED_NAMES = ("libtorchbind_test", "libjitbackend_test", "libaoti_custom_ops", "libbackend_with_compiler")
# Loaded with dlopen by what stays (Qt's D-Bus tray icon), so never an orphan even if ldd says so.
_ALWAYS_KEPT = ("libdbus-1.so",)


# Metadata of excluded packages that other hooks copy anyway (e.g. librosa's, by transformers' hook)
_EXCLUDED_METADATA = tuple(f"{m}-" for m in ("librosa", "numba", "llvmlite", "scikit_learn", "triton", "torchaudio",
                                             "pytest", "matplotlib"))


def _dropped(dest: str) -> bool:
    name = os.path.basename(dest)
    top = dest.split(os.sep, 1)[0]
    return (dest.startswith(_DROPPED_PREFIXES) or name.startswith(_DROPPED_NAMES) or name.endswith(".a")
            or (top.endswith(".dist-info") and top.startswith(_EXCLUDED_METADATA)))


def _linked(path: str) -> set[str]:
    """Sonames ``path`` loads (transitively, as ``ldd`` resolves them); empty where ldd is missing."""
    if not shutil.which("ldd"):
        return set()
    out = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if "=>" in line}


def trim(binaries, datas):
    """Return (binaries, datas, dropped) with dropped = [(dest, size in bytes)]."""
    gone_bins = [entry for entry in binaries if _dropped(entry[0])]
    kept_bins = [entry for entry in binaries if not _dropped(entry[0])]
    if gone_bins and os.name == "posix" and shutil.which("ldd"):
        # ldd lists every library a binary loads, transitively. The roots are what stays for its own sake
        # (modules, plugins, libraries in package folders, top-level ones no dropped binary needs); a
        # top-level library that only dropped binaries need, and no root, goes too.
        needed_by_gone = set().union(*(_linked(src) for _, src, _ in gone_bins))
        roots = [e for e in kept_bins if os.sep in e[0] or e[0] not in needed_by_gone]
        needed_by_roots = set().union(*(_linked(src) for _, src, _ in roots))
        orphans = [e for e in kept_bins if os.sep not in e[0] and e[0] in needed_by_gone
                   and e[0] not in needed_by_roots and not e[0].startswith(_ALWAYS_KEPT)]
        gone_bins += orphans
        kept_bins = [e for e in kept_bins if e not in orphans]
    gone_datas = [entry for entry in datas if _dropped(entry[0])]
    kept_datas = [entry for entry in datas if not _dropped(entry[0])]
    dropped = [(dest, os.path.getsize(src)) for dest, src, _ in gone_bins + gone_datas if os.path.isfile(src)]
    return kept_bins, kept_datas, dropped
