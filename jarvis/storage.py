"""Atomic, private file writes: temp file in the same folder, fsync, os.replace. A write cut off (power loss,
a kill) leaves only its temp file, which the next start removes (``remove_interrupted_writes``)."""
from __future__ import annotations

import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any


TMP_SUFFIX = ".tmp"
# ".settings.json.k3j9_x2a.tmp": mkstemp's prefix ".NAME.", 8 random characters, the suffix.
_INTERRUPTED = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
LEFTOVER_AGE_S = 60.0  # younger temp files may be another Jarvis process's write in progress


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o600) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if not hasattr(os, "fchmod"):  # Windows before Python 3.13: chmod by path (only the read-only bit counts)
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


def atomic_write_json(path: Path, obj: Any, mode: int = 0o600) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode(), mode)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_interrupted_writes(folder: Path, now: float | None = None) -> list[Path]:
    """Delete the temp files of atomic writes that never finished, anywhere under ``folder``; returns them.
    The files they were meant to replace are untouched (os.replace never ran)."""
    now = time.time() if now is None else now
    removed = []
    for path in Path(folder).rglob(".*.tmp"):
        try:
            if _INTERRUPTED.match(path.name) and path.is_file() and now - path.stat().st_mtime > LEFTOVER_AGE_S:
                path.unlink()
                removed.append(path)
        except OSError:
            pass  # gone meanwhile, or not ours to delete
    return removed
