"""GPU memory pressure (issue 16): over ``threshold`` of a GPU, free what can be freed, refuse a second large
load, and tell the user once; back under, say so once.

``check()`` reads the GPUs (``read``: rows with ``index``, ``name``, ``used_bytes``, ``total_bytes``, as
``jarvis.devices.gpu_memory`` gives them), calls ``relieve()`` (torch's cache, CSM's cached voice prompts) when a
GPU is over, and reads again. ``on_change(state, message)`` hears "pressure" and "ok" transitions only. ``start``
polls every ``interval_s`` on a daemon thread.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable

log = logging.getLogger(__name__)

THRESHOLD = 0.85


class MemoryPressure:
    def __init__(self, read: Callable[[], list[dict]], relieve: Callable[[], None] = lambda: None,
                 on_change: Callable[[str, str], None] = lambda state, message: None,
                 threshold: float = THRESHOLD):
        self.read, self.relieve, self.on_change, self.threshold = read, relieve, on_change, threshold
        self.state = "ok"
        self.fullest: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> str:
        over = self._over(self.read())
        if over:
            try:
                self.relieve()
            except Exception:  # noqa: BLE001 - freeing caches must never take the assistant down
                log.exception("freeing GPU memory failed")
            over = self._over(self.read())
        state = "pressure" if over else "ok"
        if state != self.state:
            self.state = state
            if over:
                name, share = over
                message = (f"GPU memory is {share:.0%} full on {name} (limit {self.threshold:.0%}): Jarvis freed its "
                           "caches and loads nothing large until it drops; close other GPU programs.")
            else:
                message = "GPU memory is back under the limit: large models load again."
            log.warning("%s", message)
            self.on_change(state, message)
        return state

    def allow_large_load(self) -> bool:
        return self.check() == "ok"

    def start(self, interval_s: float = 5.0) -> None:
        """Poll on a daemon thread until ``stop()`` (again after a stop; once at a time)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop = stop = threading.Event()

        def poll() -> None:
            while not stop.wait(interval_s):
                try:
                    self.check()
                except Exception:  # noqa: BLE001 - a probe failing once is no reason to stop watching
                    log.exception("GPU memory probe failed")
        self._thread = threading.Thread(target=poll, name="gpu-pressure", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _over(self, rows: list[dict]) -> tuple[str, float] | None:
        shares = [(str(r.get("name", r.get("index"))), r["used_bytes"] / r["total_bytes"]) for r in rows
                  if r.get("total_bytes") and r.get("used_bytes") is not None]
        self.fullest = max((s for _, s in shares), default=None)
        over = [(n, s) for n, s in shares if s >= self.threshold]
        return max(over, key=lambda x: x[1]) if over else None
