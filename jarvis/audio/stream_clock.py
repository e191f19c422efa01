"""PortAudio stream times (when a buffer is heard or was captured) on ``time.monotonic()``'s clock.

The callbacks are Python: one waits for the GIL before it runs, by tens of milliseconds on a busy 2-core machine.
PortAudio stamps its times before that wait, so ``outputBufferDacTime`` / ``inputBufferAdcTime`` are exact;
``time.monotonic()`` read inside the callback is late by the wait. Measured on the virtual devices with three
threads holding the GIL: DAC times stayed within 3 ms of the sample count, ``monotonic() + (dac - currentTime)``
wandered by ±20-50 ms, which the echo canceller's reference took for playback slips.

PortAudio's clock is the wall clock on Linux (CLOCK_REALTIME): reading ``time.time()`` and ``time.monotonic()``
together maps it exactly. Elsewhere (Windows, macOS use other clocks) the offset is the smallest
``monotonic() - currentTime`` seen over the last ``WINDOW_S``: the callback that waited least.
"""
from __future__ import annotations

import collections
import time

WINDOW_S = 2.0
WALL_CLOCK_TOLERANCE_S = 1.0  # a stream time this close to time.time() is on the wall clock


class StreamClock:
    def __init__(self) -> None:
        self._offsets: collections.deque = collections.deque()  # (monotonic at callback, monotonic - stream time)

    def to_monotonic(self, stream_time: float, stream_now: float) -> float:
        """``stream_time`` (a DAC or ADC time from the callback's ``time_info``) on the monotonic clock;
        ``stream_now`` is the same ``time_info``'s ``currentTime``."""
        now, wall = time.monotonic(), time.time()
        if abs(stream_now - wall) < WALL_CLOCK_TOLERANCE_S:
            return stream_time - wall + now
        offsets = self._offsets
        while offsets and offsets[0][0] < now - WINDOW_S:
            offsets.popleft()
        offsets.append((now, now - stream_now))
        return stream_time + min(offset for _, offset in offsets)
