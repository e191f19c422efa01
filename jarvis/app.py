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
    # The audio callbacks are Python: a thread waiting for the GIL gets it within 1 ms instead of 5, so the
    # player's callback is not starved into underflows by busy threads (with three threads holding the GIL:
    # none in 8 s, against 82 in 227 callbacks at the default 5 ms).
    sys.setswitchinterval(0.001)
    from jarvis import blas, heap

    heap.tune_allocator()   # before any thread: each would keep an arena of its own
    blas.limit_threads()  # before numpy loads
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
        stream = open(paths.log_dir() / "console.log", "a", encoding="utf-8", buffering=1, opener=_private_opener)
    except OSError:
        stream = open(os.devnull, "w", encoding="utf-8")
    sys.stdout = sys.stdout or stream
    sys.stderr = sys.stderr or stream


LOG_FILE_MODE = 0o600  # the log names enrolled people


def _private_opener(path: str, flags: int) -> int:
    fd = os.open(path, flags, LOG_FILE_MODE)
    if os.name == "posix":
        os.fchmod(fd, LOG_FILE_MODE)  # a file from an older version too
    return fd


class _PrivateLog(logging.handlers.RotatingFileHandler):
    """The rotating log, readable by this user only (each new file after a rotation too)."""

    def _open(self):
        return open(self.baseFilename, self.mode, encoding=self.encoding, errors=self.errors, opener=_private_opener)


def _setup_logging(verbose: bool) -> None:
    from jarvis import paths

    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    try:
        handler = _PrivateLog(paths.log_dir() / "jarvis.log", maxBytes=2_000_000, backupCount=3, encoding="utf-8")
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


def _remove_interrupted_writes() -> None:
    from jarvis import paths
    from jarvis.storage import remove_interrupted_writes

    for folder in (paths.config_dir(), paths.data_dir()):
        for path in remove_interrupted_writes(folder):
            logging.getLogger(__name__).info("removed %s, left by a write that was cut off", path)


def main(argv: list[str] | None = None) -> int:
    _prepare_environment()
    argv = sys.argv[1:] if argv is None else argv
    _setup_logging(verbose="-v" in argv or "--verbose" in argv)
    _remove_interrupted_writes()
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
