"""One queue in front of the models: the voice loop first, API requests in a bounded queue behind it.

A request is admitted (``admit``) or refused at once: 429 with a Retry-After when ``max_waiting`` wait already,
503 when the GPU is under memory pressure and the job is a large one. An admitted request then waits its turn
(``Ticket.wait``) up to ``timeout_s`` (503 after), runs alone on the models, and ``release``s them. The voice
loop (``live``) goes ahead of every waiting request and never waits for another part of itself (a transcription
while a reply is speaking): only for the one request running, and a long one steps aside between its chunks
(``Ticket.step``), so the loop waits at most one chunk's synthesis.
"""
from __future__ import annotations

import contextlib
import threading
import time
from typing import Callable

from jarvis.pressure import MemoryPressure

TURN_GUARD_S = 60.0   # a turn that never says it is over stops holding requests back after this


class Refused(Exception):
    """A request the queue will not take now: HTTP ``status``, a message, and when to come back."""

    def __init__(self, status: int, code: str, message: str, retry_after_s: float | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after_s = status, code, message, retry_after_s


class Scheduler:
    def __init__(self, max_waiting: int = 8, timeout_s: float = 60.0, pressure: MemoryPressure | None = None):
        self.max_waiting = max_waiting
        self.timeout_s = timeout_s
        # GPU memory (jarvis.pressure): frees caches when a GPU is over its limit; no GPU reads as no pressure
        self.pressure = pressure or MemoryPressure(lambda: [])
        self._cond = threading.Condition()
        self._running = False       # an API request has the models
        self._live_waiting = 0
        self._live_running = 0      # the voice loop's jobs on the models now (they may overlap)
        self._turn_until = 0.0      # a person is talking to Jarvis until then (monotonic): requests step aside
        self.waiting = 0
        self.served = 0
        self.rejected = 0
        self.timed_out = 0
        self._job_s = 1.0   # running mean of a job's length, for Retry-After

    # -- the voice loop ------------------------------------------------------------------------
    @contextlib.contextmanager
    def live(self):
        """The voice loop's turn on the models: ahead of every waiting request, beside its own other jobs."""
        with self._cond:
            self._live_waiting += 1
            while self._running:
                self._cond.wait()
            self._live_waiting -= 1
            self._live_running += 1
        try:
            yield
        finally:
            with self._cond:
                self._live_running -= 1
                self._cond.notify_all()

    def turn_started(self, guard_s: float = TURN_GUARD_S) -> None:
        """A person started a turn (the wake word, or speech in a follow-up window): from now until ``turn_over``
        requests step aside at their next chunk and none starts, so the machine is the loop's for the command,
        its transcription and the reply. Never blocks (called on the capture thread); ``guard_s`` bounds it should
        the end never be said."""
        with self._cond:
            self._turn_until = time.monotonic() + guard_s

    def turn_over(self) -> None:
        with self._cond:
            self._turn_until = 0.0
            self._cond.notify_all()

    def _live(self) -> bool:
        return bool(self._live_waiting or self._live_running) or time.monotonic() < self._turn_until

    # -- API requests --------------------------------------------------------------------------
    def admit(self, large: bool = False) -> "Ticket":
        """A place in the queue, or ``Refused`` (429 queue full, 503 memory pressure for a large job)."""
        if large and not self.pressure.allow_large_load():
            with self._cond:
                self.rejected += 1
            raise Refused(503, "memory_pressure", f"The GPU is {self.pressure.fullest:.0%} full (limit "
                                                  f"{self.pressure.threshold:.0%}); try again shortly.",
                          retry_after_s=5.0)
        with self._cond:
            if self.waiting >= self.max_waiting:
                self.rejected += 1
                retry = max(1.0, round(self._job_s * (self.waiting + 1), 1))
                raise Refused(429, "queue_full", f"{self.waiting} requests are waiting already; try again in "
                                                 f"{retry:g} s.", retry_after_s=retry)
            self.waiting += 1
        return Ticket(self)

    def memory_pressure(self) -> float | None:
        """The fullest GPU's share of memory in use (None: no GPU, or it cannot be read)."""
        try:
            self.pressure.check()
        except Exception:  # noqa: BLE001 - a failing probe is no pressure reading, not a failed request
            return None
        return self.pressure.fullest

    def stats(self) -> dict:
        with self._cond:
            return {"waiting": self.waiting, "running": int(self._running), "live": self._live_running,
                    "served": self.served,
                    "rejected": self.rejected, "timed_out": self.timed_out,
                    "max_waiting": self.max_waiting, "memory_pressure": self.memory_pressure(),
                    "memory_pressure_threshold": self.pressure.threshold}

    def _release(self, started: float | None = None) -> None:
        with self._cond:
            self._running = False
            if started is not None:
                self.served += 1
                self._job_s = 0.8 * self._job_s + 0.2 * (time.monotonic() - started)
            self._cond.notify_all()


class Ticket:
    """An admitted request: ``wait()`` for the models, then ``release()`` them (once; idempotent)."""

    def __init__(self, scheduler: Scheduler):
        self._s = scheduler
        self._state = "waiting"     # waiting -> running -> done
        self._started = 0.0

    def wait(self, cancelled: Callable[[], bool] = lambda: False) -> None:
        s = self._s
        deadline = time.monotonic() + s.timeout_s
        with s._cond:
            try:
                while s._running or s._live():
                    left = deadline - time.monotonic()
                    if left <= 0 or cancelled():
                        s.timed_out += left <= 0
                        self._state = "done"
                        raise Refused(503, "timeout", f"Waited {s.timeout_s:g} s for the models; try again.",
                                      retry_after_s=max(1.0, round(s._job_s, 1)))
                    s._cond.wait(min(left, 0.1))
                s._running = True
                self._state = "running"
                self._started = time.monotonic()
            finally:
                s.waiting -= 1

    def step(self) -> None:
        """Between two chunks of a running request: when the voice loop wants the models, let it go first and
        take them back after (the request's own timeout does not apply: it was admitted and is streaming)."""
        s = self._s
        if self._state != "running" or not s._live():
            return
        with s._cond:
            s._running = False
            s._cond.notify_all()
            while s._running or s._live():
                s._cond.wait(0.1)
            s._running = True

    def release(self) -> None:
        if self._state == "running":
            self._state = "done"
            self._s._release(self._started)
        elif self._state == "waiting":   # never waited (the request failed before): leave the queue
            self._state = "done"
            with self._s._cond:
                self._s.waiting -= 1
