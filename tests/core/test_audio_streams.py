"""Audio streams that misbehave on their way out: Jarvis goes on and says so."""
from __future__ import annotations


class _HangingStream:
    """Stand-in for a PortAudio stream whose abort blocks, as ALSA's pulse plugin did once when the audio server
    was killed under it (tests/e2e/test_reconnect.py): no real stream can be made to hang on cue."""

    def __init__(self):
        import threading
        self.release = threading.Event()

    def abort(self):
        self.release.wait(30)

    def close(self):
        pass


def test_a_stream_that_hangs_when_closed_does_not_hold_up_a_lost_microphone_report():
    import time

    from jarvis.audio import devices
    from jarvis.audio.capture import MicCapture

    reported = []
    capture = MicCapture(lambda block: None, on_error=reported.append)
    capture._stream = hanging = _HangingStream()
    capture._finished.set()                      # PortAudio said the stream ended: the device is gone
    t0 = time.monotonic()
    try:
        assert capture._lost(capture._stop, capture._finished)
        assert time.monotonic() - t0 < devices.CLOSE_TIMEOUT_S + 1.0
        assert [e.code for e in reported] == ["device_lost"] and not capture.running
    finally:
        hanging.release.set()
