"""Hand the C allocator's free pages back to the system once a turn is over (glibc's ``malloc_trim``), and keep
its arenas few (``limit_arenas``).

Each turn frees buffers that its threads' allocator arenas keep: Whisper's windows, Piper's audio, llama.cpp's
states and their copies. glibc returns memory to the system only from the top of an arena, so pages freed inside
stay resident; the assistant's RSS then climbs turn after turn though what it holds does not. ``malloc_trim(0)``
gives back every whole free page of every arena. It runs when the assistant has been idle for ``delay_s`` after a
turn (never while a command is heard or answered: it holds each arena's lock while it walks it). Elsewhere than
glibc (macOS, Windows, musl) there is nothing to call and ``trim`` does nothing.
"""
from __future__ import annotations

import ctypes
import logging
import threading
from typing import Callable

log = logging.getLogger(__name__)

DELAY_S = 2.0
# glibc gives each new thread an arena of its own, up to 8 per core: Whisper's, Piper's, the LLM's, speaker ID's and
# the prepare pool's threads each kept the free memory of their largest turn, and RSS grew ~10 MB a turn over a
# 24-turn pipeline bench (1205 -> 1456 MB). With two the same bench ran 1099 -> 1128 MB (skills P50 507 ms, 520
# without; such runs differ by ~40 ms), 2026-12-06, 2 cores.
ARENAS = 2
_M_ARENA_MAX = -8   # mallopt's parameter number (malloc.h)


def _c_function(name: str, argtypes: list, restype):
    """``name`` from the C library this process runs on, typed; None where it has none (not glibc)."""
    try:
        function = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError, TypeError):
        return None
    function.argtypes, function.restype = argtypes, restype
    return function


_TRIM: Callable[[int], int] | None = _c_function("malloc_trim", [ctypes.c_size_t], ctypes.c_int)


def limit_arenas(count: int = ARENAS) -> bool:
    """At most ``count`` allocator arenas from now on (call it first thing: arenas made before stay); True if the C
    library took it (glibc), False elsewhere."""
    mallopt = _c_function("mallopt", [ctypes.c_int, ctypes.c_int], ctypes.c_int)
    return mallopt is not None and bool(mallopt(_M_ARENA_MAX, count))


def trim() -> bool:
    """Give free pages back to the system; True if any were (False where there is no ``malloc_trim``)."""
    return bool(_TRIM(0)) if _TRIM is not None else False


class TrimWhenIdle:
    """``turn_over()`` schedules a ``trim`` ``delay_s`` later; ``turn_started()`` (or another ``turn_over``) before
    then puts it off."""

    def __init__(self, delay_s: float = DELAY_S, trim: Callable[[], bool] = trim):
        self.delay_s = delay_s
        self.trims = 0
        self._trim = trim
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def turn_started(self) -> None:
        with self._lock:
            self._cancel()

    def turn_over(self) -> None:
        with self._lock:
            self._cancel()
            self._timer = threading.Timer(self.delay_s, self._run)
            self._timer.daemon = True
            self._timer.start()

    def close(self) -> None:
        self.turn_started()

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _run(self) -> None:
        try:
            self._trim()
            self.trims += 1
        except Exception:  # noqa: BLE001 - memory stays as it was
            log.exception("giving free memory back to the system failed")
