"""Where Jarvis keeps its state.

Everything lives under platformdirs' per-user folders, or under ``$JARVIS_HOME`` when that
is set (tests and portable installs). Resources are found the same way from source and from
a frozen (PyInstaller) build. Jarvis's folders are private (0700: they hold voice signatures,
cloned voices and a log that names enrolled people); the log file itself is 0600 (jarvis.app).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

APP_NAME = "jarvis"


def _home_override() -> Path | None:
    value = os.environ.get("JARVIS_HOME", "").strip()
    return Path(value).expanduser().resolve() if value else None


def _dir(kind: str) -> Path:
    override = _home_override()
    if override is not None:
        path = override / kind
    else:
        getter = {
            "config": platformdirs.user_config_dir,
            "data": platformdirs.user_data_dir,
            "cache": platformdirs.user_cache_dir,
            "logs": platformdirs.user_log_dir,
        }[kind]
        path = Path(getter(APP_NAME, appauthor=False))
    return private_dir(path)


PRIVATE_DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """``path`` created if needed and readable by this user only (an existing folder is tightened)."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    if os.name == "posix" and path.stat().st_mode & 0o777 != PRIVATE_DIR_MODE:
        try:
            path.chmod(PRIVATE_DIR_MODE)
        except OSError:
            pass  # not ours to change (a shared JARVIS_HOME); reading and writing still work
    return path


def config_dir() -> Path:
    return _dir("config")


def data_dir() -> Path:
    return _dir("data")


def cache_dir() -> Path:
    return _dir("cache")


def log_dir() -> Path:
    return _dir("logs")


def runtime_dir() -> Path:
    """Files Jarvis writes afresh each time it starts, for this run only (not stored data): ``$JARVIS_HOME/run``,
    else ``$XDG_RUNTIME_DIR/jarvis``, else ``run`` in the cache folder."""
    override = _home_override()
    if override is not None:
        return private_dir(override / "run")
    runtime = os.environ.get("XDG_RUNTIME_DIR", "").strip()
    return private_dir(Path(runtime) / APP_NAME if runtime else cache_dir() / "run")


def settings_file() -> Path:
    return config_dir() / "settings.json"


def speakers_dir() -> Path:
    return private_dir(data_dir() / "speakers")


def resources_dir() -> Path:
    """The bundled ``resources/`` folder (next to the source tree, or inside a frozen build)."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def resource(*parts: str) -> Path:
    return resources_dir().joinpath(*parts)
