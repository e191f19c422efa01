"""PortAudio stream times on the monotonic clock (jarvis.audio.stream_clock), on the real clocks."""
from __future__ import annotations

import time

import pytest

from jarvis.audio.stream_clock import StreamClock


def test_a_wall_clock_stream_time_maps_exactly_whatever_the_callback_delay():
    clock = StreamClock()
    stamped_wall = time.time() - 0.040          # PortAudio stamped this 40 ms before the callback got the GIL
    heard = clock.to_monotonic(stamped_wall + 0.025, stamped_wall)  # heard 25 ms after the stamp
    assert heard == pytest.approx(time.monotonic() - 0.040 + 0.025, abs=0.002)


def test_another_clock_uses_the_callback_that_waited_least():
    clock = StreamClock()
    epoch = time.monotonic() - 5000.0           # a stream clock with its own zero (Windows, macOS)
    on_time = time.monotonic() - epoch
    first = clock.to_monotonic(on_time + 0.025, on_time)
    assert first == pytest.approx(time.monotonic() + 0.025, abs=0.002)
    late = time.monotonic() - epoch - 0.030     # this callback ran 30 ms after PortAudio's stamp
    heard = clock.to_monotonic(late + 0.025, late)
    assert heard == pytest.approx(time.monotonic() - 0.030 + 0.025, abs=0.002), "the 30 ms wait is not added"
