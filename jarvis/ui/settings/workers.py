"""Run blocking work (recording set-up, embeddings, TTS, keyring) off the GUI thread.

``run_async(fn, on_done, on_error, owner)`` runs ``fn()`` on a pool thread and calls ``on_done(result)``
or ``on_error(one line)`` back on the GUI thread. The callbacks are dropped when ``owner`` (a QObject)
has been destroyed meanwhile, so a closed window never hears from work it started.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from PySide6.QtCore import QObject, QThreadPool, Signal, Slot

from jarvis.errors import JarvisError, describe

log = logging.getLogger(__name__)

_live: set = set()   # relays waiting for their task (Python keeps them alive until delivery)


class _Relay(QObject):
    """Lives on the GUI thread: its signals, emitted from a pool thread, are delivered here (queued)."""

    _done = Signal(object)
    _failed = Signal(str)

    def __init__(self, on_done: Callable[[Any], None], on_error: Callable[[str], None], owner: QObject | None):
        super().__init__(owner)
        self._on_done, self._on_error = on_done, on_error
        self._done.connect(self._deliver_done)
        self._failed.connect(self._deliver_failed)

    @Slot(object)
    def _deliver_done(self, result) -> None:
        _live.discard(self)
        self._on_done(result)

    @Slot(str)
    def _deliver_failed(self, message: str) -> None:
        _live.discard(self)
        self._on_error(message)


def one_line(exc: BaseException) -> str:
    """A user-facing line for ``exc``: JarvisError messages as they are, anything else named."""
    return describe(exc)


def run_async(fn: Callable[[], Any], on_done: Callable[[Any], None], on_error: Callable[[str], None],
              owner: QObject | None = None, pool: QThreadPool | None = None) -> None:
    relay = _Relay(on_done, on_error, owner)
    _live.add(relay)

    def work() -> None:
        try:
            result = fn()
        except Exception as exc:  # every failure reaches the window as one line
            if not isinstance(exc, JarvisError):
                log.exception("background task failed")
            _emit(relay, relay._failed, one_line(exc))
        else:
            _emit(relay, relay._done, result)

    (pool or QThreadPool.globalInstance()).start(work)


def _emit(relay: _Relay, signal, value) -> None:
    try:
        signal.emit(value)
    except RuntimeError:  # the owner window was closed and deleted meanwhile
        _live.discard(relay)


def wait_all(timeout_ms: int = 15000) -> bool:
    """Wait for every pool task (tests, and the app at quit)."""
    return QThreadPool.globalInstance().waitForDone(timeout_ms)
