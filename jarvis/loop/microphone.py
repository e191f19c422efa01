"""The one microphone stream: the echo canceller cleans it first, then the listener and any taps (level meter,
enrollment) get it; mute; and reconnecting on its own when the device or the audio server comes back."""
from __future__ import annotations

import logging
import threading
from typing import Callable

from jarvis import events
from jarvis.errors import JarvisError, NotAvailable

log = logging.getLogger(__name__)

RECONNECT_FIRST_S, RECONNECT_MAX_S = 1.0, 8.0  # retry delays after the microphone is lost
RELAXED_AFTER_PLAYING_S = 1.0                  # the capture gathers blocks only this long after Jarvis played
NO_REFERENCE = ("Echo cancellation gets none of Jarvis's own playback, so it cannot remove it; Jarvis listens "
                "without it. Use headphones, or check that Jarvis plays through its own output device (jarvis doctor).")


class MicrophoneFeed:
    def __init__(self, settings, bus: events.EventBus, host, stopping: threading.Event,
                 before_reopen: Callable[[], None]):
        """``before_reopen`` runs before a reconnect restarts PortAudio (stop the reply, drop the player's stream)."""
        self.settings = settings
        self.bus = bus
        self.host = host
        self.capture = None
        self.echo = None                 # the EchoCanceller while it is on and working
        self.spoken_over = None          # fed the cleaned and raw audio while Jarvis talks (jarvis.listen.spoken_over)
        self.muted = False
        self._stopping = stopping
        self._before_reopen = before_reopen
        self._lock = threading.Lock()    # reconnecting vs. stopping
        self._taps: list = []            # callables that also get every microphone block (level meter, enrollment)

    # -- life cycle ------------------------------------------------------------------------------
    def start_echo_canceller(self):
        """The echo canceller, or None (switched off, or unavailable: then Jarvis listens without it and says so)."""
        audio = self.settings.audio
        if not audio.echo_cancellation:
            self.bus.emit(events.Echo(state="off", message="Echo cancellation is off (Settings → Audio): on open "
                                                           "speakers Jarvis may not hear you over its own voice."))
            return None
        from jarvis.audio.echo import EchoCanceller
        try:
            self.echo = EchoCanceller(noise_suppression=audio.noise_suppression, on_state=self._on_echo_state,
                                      wake_tap=self._on_wake_stream)
        except NotAvailable as exc:
            log.warning("%s", exc.message)
            self.bus.emit(events.Echo(state="unavailable", message=exc.message))
            return None
        self.bus.emit(events.Echo(state="on", message="Echo cancellation is on."))
        return self.echo

    def start(self) -> None:
        self.capture = self._new_capture()
        self.capture.start()

    def stop(self) -> None:
        with self._lock:  # not while a reconnect swaps the microphone
            if self.capture is not None:
                self.capture.stop()

    def close(self) -> None:
        if self.echo is not None:
            self.echo.close()

    def _new_capture(self):
        from jarvis.audio.capture import MicCapture

        audio = self.settings.audio
        capture = MicCapture(self._on_block, device=audio.input_device, block_ms=audio.block_ms,
                             processor=self.echo.process if self.echo is not None else None)
        capture.on_error = self._on_capture_error
        capture.relaxed = self._relaxed
        return capture

    def _relaxed(self) -> bool:
        """Nothing waits on the microphone's next block: Jarvis waits for its wake word and has played nothing for
        a second (a voice over Jarvis's own is heard at once). Without the echo canceller, never."""
        echo, listener = self.echo, getattr(self.host, "listener", None)
        return echo is not None and listener is not None and echo.far_end.quiet_for(RELAXED_AFTER_PLAYING_S) and \
            listener.waiting_for_wake

    # -- audio in --------------------------------------------------------------------------------
    def _on_block(self, block) -> None:
        for tap in list(self._taps):
            try:
                tap(block)
            except Exception:
                log.exception("microphone tap failed; removing it")
                self.remove_tap(tap)
        if not self.muted:
            self.host.listener.feed(block, wake_word=self.echo is None)

    def _on_wake_stream(self, wake_stream, clean, raw, far_active: bool) -> None:
        if not self.muted:
            self.host.listener.hear_wake_stream(wake_stream, clean, raw, far_active)
            if self.spoken_over is not None:
                self.spoken_over.feed(clean, raw)

    def add_tap(self, tap) -> None:
        """``tap(int16 block)`` is called for every 16 kHz mono microphone block, muted or not."""
        self._taps.append(tap)

    def remove_tap(self, tap) -> None:
        if tap in self._taps:
            self._taps.remove(tap)

    # -- the echo canceller's reference ------------------------------------------------------------
    @property
    def reference_blocks(self) -> int:
        """Blocks of Jarvis's playback the canceller has been given so far."""
        return self.echo.far_end.blocks if self.echo is not None else 0

    def check_reference(self, blocks_before: int) -> None:
        """After a reply: the canceller must have been given what was played. If not, say so (once) and go on
        without it; say so again when the reference is back."""
        echo = self.echo
        if echo is None or echo.state == "unavailable":
            return
        state = "on" if echo.far_end.blocks > blocks_before else "no_reference"
        if state == echo.state:
            return
        echo.state = state
        if state == "on":
            self._on_echo_state("on", "Echo cancellation is on again: it gets Jarvis's playback.")
        else:
            self._on_echo_state("no_reference", NO_REFERENCE)

    def _on_echo_state(self, state: str, message: str) -> None:
        self.bus.emit(events.Echo(state=state, message=message))

    # -- lost and found ----------------------------------------------------------------------------
    def _on_capture_error(self, exc: Exception) -> None:
        reason = exc.message if isinstance(exc, JarvisError) else f"The microphone stopped ({exc})."
        self.bus.emit(events.Error(code="audio_device_lost",
                                   message=f"{reason} Jarvis listens again as soon as it is back."))
        if not self._stopping.is_set():
            threading.Thread(target=self._reconnect, name="audio-reconnect", daemon=True).start()

    def _reconnect(self) -> None:
        """Reopen the microphone (and, lazily, the speaker) once the device or audio server is back:
        PortAudio is restarted to see it, so the player's old stream is dropped first."""
        from jarvis.audio import devices

        wait, told_stuck = RECONNECT_FIRST_S, False
        while not self._stopping.wait(wait):
            wait = min(wait * 2, RECONNECT_MAX_S)
            with self._lock:
                if self._stopping.is_set():
                    return
                self._before_reopen()
                capture = self._new_capture()
                try:
                    devices.refresh()
                    capture.start()
                except Exception as exc:  # NotAvailable with its reason; anything else is logged the same way
                    log.info("microphone not back yet (next try in %.0f s): %s", wait, exc)
                    if getattr(exc, "code", "") == "audio_stuck" and not told_stuck:   # waiting will not help
                        told_stuck = True
                        self.bus.emit(events.Error(code=exc.code, message=exc.message))
                    continue
                self.capture = capture
            log.info("microphone back: %s", capture.device_name)
            self.bus.emit(events.AudioBack(device=capture.device_name))
            return
