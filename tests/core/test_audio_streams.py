"""Audio streams that misbehave on their way out: Jarvis goes on and says so."""
from __future__ import annotations


class _HangingStream:
    """Stand-in for a PortAudio stream whose abort blocks, as the microphone's did when the audio server was killed
    under it (a deadlock in libpulse that jarvis.audio.pulse_client now prevents; tests/e2e/test_reconnect.py): no
    real stream can be made to hang on cue."""

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


def test_while_a_lost_stream_is_still_closing_restarting_portaudio_says_so_instead_of_waiting_for_ever():
    """Restarting PortAudio closes every stream it has open, that one too, and would wait for it with no end."""
    import time

    import pytest

    from jarvis.audio import devices
    from jarvis.errors import NotAvailable

    hanging = _HangingStream()
    devices.close_stream(hanging, "the microphone 'test'")
    try:
        t0 = time.monotonic()
        with pytest.raises(NotAvailable) as refused:
            devices.refresh()
        assert refused.value.code == "audio_stuck" and "Quit Jarvis and start it again" in refused.value.message
        assert time.monotonic() - t0 < 1.0
    finally:
        hanging.release.set()
    deadline = time.monotonic() + 5
    while any(closer.is_alive() for closer in devices._stuck_closers) and time.monotonic() < deadline:
        time.sleep(0.05)
    devices.refresh()   # closed at last: PortAudio restarts
    assert devices._stuck_closers == []


def test_the_microphone_feed_tells_the_user_once_when_the_audio_library_is_stuck(monkeypatch, caplog):
    import logging
    import threading
    import time
    from types import SimpleNamespace

    from jarvis import events
    from jarvis.audio import devices
    from jarvis.loop import microphone

    monkeypatch.setattr(microphone, "RECONNECT_FIRST_S", 0.05)
    monkeypatch.setattr(microphone, "RECONNECT_MAX_S", 0.05)
    bus, seen = events.EventBus(), []
    bus.subscribe(seen.append)
    audio = SimpleNamespace(input_device="jarvis_mic", block_ms=32, echo_cancellation=False)
    stopping = threading.Event()
    feed = microphone.MicrophoneFeed(SimpleNamespace(audio=audio), bus, host=None, stopping=stopping,
                                     before_reopen=lambda: None)
    hanging = _HangingStream()
    devices.close_stream(hanging, "the microphone 'jarvis_mic'")
    caplog.set_level(logging.INFO, logger="jarvis.loop.microphone")
    tries = lambda: sum("not back yet" in r.getMessage() for r in caplog.records)  # noqa: E731
    try:
        feed._on_capture_error(RuntimeError("gone"))
        deadline = time.monotonic() + 20
        while tries() < 3 and time.monotonic() < deadline:   # several tries, however slow the machine
            time.sleep(0.05)
        assert tries() >= 3
    finally:
        stopping.set()
        hanging.release.set()
    errors = [(e.code, e.message) for e in seen if e.type == "error"]
    assert errors[0][0] == "audio_device_lost"
    assert errors[1:] == [("audio_stuck", devices.STUCK_MESSAGE)], errors
