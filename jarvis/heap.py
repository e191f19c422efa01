"""Hand the memory a turn left behind back to the system once it is over (``release``: Python's cycle collector,
then glibc's ``malloc_trim``), and keep the C allocator from scattering large buffers (``tune_allocator``).

Each turn frees buffers that its threads' allocator arenas keep: Whisper's windows, Piper's audio, llama.cpp's
states and their copies. glibc returns memory to the system only from the top of an arena, so pages freed inside
stay resident; the assistant's RSS then climbs turn after turn though what it holds does not. ``malloc_trim(0)``
gives back every whole free page of every arena. It runs when the assistant has been idle for ``delay_s`` after a
turn (never while a command is heard or answered: it holds each arena's lock while it walks it). Elsewhere than
glibc (macOS, Windows, musl) there is nothing to call and ``trim`` does nothing.

Before the trim a full ``gc.collect()``: each LLM answer leaves a reference cycle (ctypes array types made for its
sizes) holding ~0.6 MB of buffers, and Python's own collector frees such cycles only at its rare full collections,
tens of MB at once. The objects made while the models load are frozen out of the collector's walk
(``settle_loaded``): a full collection of the loaded assistant's objects took ~160 ms with the GIL held.
"""
from __future__ import annotations

import ctypes
import gc
import logging
import threading
import time
from typing import Callable

log = logging.getLogger(__name__)

DELAY_S = 2.0
# glibc gives each new thread an arena of its own, up to 8 per core: Whisper's, Piper's, the LLM's, speaker ID's and
# the prepare pool's threads each kept the free memory of their largest turn, and RSS grew ~10 MB a turn over a
# 24-turn pipeline bench (1205 -> 1456 MB). With two the same bench ran 1099 -> 1128 MB (skills P50 507 ms, 520
# without; such runs differ by ~40 ms), 2026-12-06, 2 cores.
ARENAS = 2
# glibc serves a block this large or larger with a mapping of its own, given back whole when it is freed. By default
# the threshold follows the largest block freed so far (up to 32 MB): after the first turns blocks of 4-32 MB
# (llama.cpp's states and their copies, Piper's largest tensors) were cut from the arenas, and what they left free
# there moved RSS by 20-40 MB now and then over 100 turns (``malloc_trim`` gives back a thread arena's free pages
# inside, not its free top). Fixed at 4 MB, RSS less the LLM's states stayed within 2 MB over 90 turns; the price is
# that such blocks are faulted in anew each time (one 100-turn run each: skills P50 479 ms against 425, LLM answers
# 872 against 795; runs differ by ~40 ms). At 256 KB every onnxruntime tensor of that size was: Smart Turn's
# decision +114 ms. A 64 MB top trim threshold beside it (glibc's own once its threshold is up) was no faster and
# let RSS move by 7 MB.
MMAP_THRESHOLD = 4 << 20
_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8   # mallopt's parameter numbers (malloc.h)


def _c_function(name: str, argtypes: list, restype):
    """``name`` from the C library this process runs on, typed; None where it has none (not glibc)."""
    try:
        function = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError, TypeError):
        return None
    function.argtypes, function.restype = argtypes, restype
    return function


_TRIM: Callable[[int], int] | None = _c_function("malloc_trim", [ctypes.c_size_t], ctypes.c_int)


def tune_allocator(arenas: int = ARENAS, mmap_threshold: int = MMAP_THRESHOLD) -> bool:
    """At most ``arenas`` allocator arenas from now on, and blocks of ``mmap_threshold`` bytes or more in mappings of
    their own (call it first thing: arenas made before stay); True if the C library took both (glibc), False
    elsewhere."""
    mallopt = _c_function("mallopt", [ctypes.c_int, ctypes.c_int], ctypes.c_int)
    return mallopt is not None and all([mallopt(_M_ARENA_MAX, arenas), mallopt(_M_MMAP_THRESHOLD, mmap_threshold)])


def settle_loaded() -> None:
    """The objects alive now (modules, loaded models) stay for the app's life: the collector no longer walks them at
    each full collection. ``unsettle`` before the models are let go."""
    gc.collect()
    gc.freeze()


def unsettle() -> None:
    """Back under the collector, so that what the models leave in cycles is freed."""
    gc.unfreeze()


def trim() -> bool:
    """Give free pages back to the system; True if any were (False where there is no ``malloc_trim``)."""
    return bool(_TRIM(0)) if _TRIM is not None else False


def release() -> bool:
    """Free the cyclic garbage Python holds, then ``trim``; True if the trim gave pages back."""
    collected = gc.collect()
    trimmed = trim()
    log.debug("after the turn: %d objects collected, pages %sgiven back", collected, "" if trimmed else "not ")
    return trimmed


class TrimWhenIdle:
    """``turn_over()`` schedules a ``release`` ``delay_s`` later; ``turn_started()`` (or another ``turn_over``) before
    then puts it off."""

    def __init__(self, delay_s: float = DELAY_S, trim: Callable[[], bool] = release):
        self.delay_s = delay_s
        self.trims = 0
        self.took_ms: float | None = None   # the last one's (the collector holds the GIL while it walks)
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
        started = time.perf_counter()
        try:
            self._trim()
            self.trims += 1
            self.took_ms = round((time.perf_counter() - started) * 1000, 1)
        except Exception:  # noqa: BLE001 - memory stays as it was
            log.exception("giving free memory back to the system failed")
