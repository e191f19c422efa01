"""Start-up order: environment -> logging -> CLI / headless loop (the tray app comes later)."""
from __future__ import annotations

import logging
import logging.handlers
import multiprocessing
import os
import sys


def _prepare_environment() -> None:
    # RealtimeSTT runs Whisper in a child process: spawn is the only start method that is safe with
    # threads and works the same in a frozen build.
    multiprocessing.freeze_support()
    try:
        multiprocessing.set_start_method("spawn")
    except RuntimeError:
        pass
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("PYTHONWARNINGS", "ignore::UserWarning")  # inherited by worker processes
    _give_windowed_builds_std_streams()


def _give_windowed_builds_std_streams() -> None:
    """A windowed build (no console: Windows ``jarvis.exe``, the macOS app) starts with ``sys.stdout`` and
    ``sys.stderr`` set to None, and the first print or warning would raise. They go to ``console.log``
    in the log folder instead."""
    if sys.stdout is not None and sys.stderr is not None:
        return
    from jarvis import paths

    try:
        stream = open(paths.log_dir() / "console.log", "a", encoding="utf-8", buffering=1)
    except OSError:
        stream = open(os.devnull, "w", encoding="utf-8")
    sys.stdout = sys.stdout or stream
    sys.stderr = sys.stderr or stream


def _setup_logging(verbose: bool) -> None:
    from jarvis import paths

    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    try:
        handler = logging.handlers.RotatingFileHandler(paths.log_dir() / "jarvis.log", maxBytes=2_000_000,
                                                       backupCount=3, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    except OSError:
        pass
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.DEBUG if verbose else logging.ERROR)
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(console)
    for noisy in ("realtimestt", "faster_whisper", "urllib3", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    _prepare_environment()
    argv = sys.argv[1:] if argv is None else argv
    _setup_logging(verbose="-v" in argv or "--verbose" in argv)
    if _wants_tray(argv):
        from jarvis.ui.app import run as run_tray
        return run_tray()
    from jarvis.cli import run

    return run(argv)


def _wants_tray(argv: list[str]) -> bool:
    """``jarvis`` alone (or ``jarvis tray``) opens the tray app where there is a screen and Qt;
    otherwise the CLI runs (headless voice loop for a bare ``jarvis``, with a notice)."""
    args = [a for a in argv if a not in ("-v", "--verbose")]
    if args not in ([], ["tray"]):
        return False
    try:
        import PySide6.QtWidgets  # noqa: F401
    except ImportError:
        return False
    from jarvis.ui.app import display_available
    return display_available()
