"""Speaking replies on a thread of their own, so the listener keeps hearing the wake word meanwhile: a wake word
cuts the reply (barge-in); with ``audio.pause_when_spoken_over`` a voice over it pauses it first; a reply heard to
its end opens the follow-up window (``listen.follow_up_s``) for a question without the wake word.

A reply starts with its first sound: the silence a voice begins with is not played (``without_lead_in``). Piper
begins "It's 9:08 AM." with 40 ms of it, "The capital of Italy is Rome." with 30: that much longer to wait for the
answer."""
from __future__ import annotations

import logging
import threading
from typing import Callable, Iterable, Iterator

import numpy as np

from jarvis import events
from jarvis.audio.wav import first_sound
from jarvis.errors import JarvisError

log = logging.getLogger(__name__)

LEAD_IN_RMS = 0.003      # about -50 dBFS over 10 ms: quieter than that, a reply's start is silence
LEAD_IN_KEPT_S = 0.01    # kept before the first sound, so its onset is whole
LEAD_IN_MAX_S = 0.3      # at most this much is left out (a voice that starts that quietly on purpose keeps the rest)


class ReplySpeaker:
    def __init__(self, settings: Callable, bus: events.EventBus, host, own_voice, mic, stopping: threading.Event):
        """``settings()``: the settings now in use (the follow-up window is read at each reply); ``mic``: the
        ``MicrophoneFeed`` (mute, and the echo canceller's reference checked after each reply)."""
        self._settings = settings
        self.bus = bus
        self.host = host
        self.own_voice = own_voice
        self.mic = mic
        self.player = None
        self._stopping = stopping
        self._cancel = threading.Event()   # the reply speaking now: set to stop it (and its LLM generation)
        self._thread: threading.Thread | None = None
        self._turn: int | None = None      # the turn whose reply is being spoken (pausing it is that turn's)

    def open(self) -> None:
        from jarvis.audio.player import Player

        echo = self.mic.echo
        audio = self._settings().audio
        self.player = Player(audio.output_device, block_ms=audio.output_block_ms,
                             on_output=echo.far_end.push if echo else None)

    def close(self) -> None:
        if self.player is not None:
            self.player.close()

    # -- speaking ----------------------------------------------------------------------------------
    def speak_async(self, response, cancel: threading.Event) -> None:
        """Stop what is being said and say ``response`` (barge-in sets ``cancel``); this turn's events keep its id."""
        self.barge_in()
        if self._thread is not None:
            self._thread.join(timeout=1)
        self._cancel = cancel
        self._thread = threading.Thread(target=events.in_turn_thread(self._speak, response, cancel),
                                        name="speaker", daemon=True)
        self._thread.start()

    def _speak(self, response, cancel: threading.Event) -> None:
        """Speak the reply as it is produced. A reply known up front (skills) is shown at once; a
        generated one (LLM) when it has been generated, or cut off. A reply heard to its end opens the
        follow-up window."""
        known = isinstance(response.text_chunks, (list, tuple))
        if known:
            self.bus.emit(events.Reply(text=response.text))
            if not response.text.strip() or cancel.is_set():
                return
        started = False
        self._turn = events.current_turn()
        self.host.listener.close_window()  # while Jarvis talks, only the wake word interrupts it
        self.own_voice.speaking(response)
        reference_before = self.mic.reference_blocks

        def on_start() -> None:
            nonlocal started
            started = True
            self.bus.emit(events.PlaybackStart())

        try:
            # The reply goes ahead of the speech server's requests (they wait, or step aside between chunks).
            with self.host.scheduler.live(), self.host.tts_for_reply() as tts:
                self.player.play_stream(without_lead_in(tts.speak_stream(response, cancel)), on_start=on_start)
        except JarvisError as exc:
            self.bus.emit(events.Error(code=exc.code, message=exc.message))
        finally:
            interrupted = cancel.is_set()
            # The turn is over: stop a generation still running (speech failed or ended early). The
            # player's feed thread may still be inside the reply's generator, so it is told, not closed.
            cancel.set()
            self.own_voice.done(response)
            if not known:
                self.bus.emit(events.Reply(text=response.text_so_far))
            if started:
                self.bus.emit(events.PlaybackEnd(interrupted=interrupted))
                self.mic.check_reference(reference_before)
            if started and not interrupted and not self._stopping.is_set():
                self._follow_up()

    def _follow_up(self) -> None:
        seconds = float(self._settings().listen.follow_up_s)
        if seconds > 0 and not self.mic.muted and self.host.listener is not None:
            self.bus.emit(events.FollowUp(seconds=seconds))
            self.host.listener.listen_without_wake_word(seconds, "follow_up")

    # -- stopping and pausing ----------------------------------------------------------------------
    @property
    def speaking(self) -> bool:
        return self.player is not None and self.player.is_playing

    def barge_in(self) -> None:
        """Stop speaking now (wake word heard, stop command, or shutdown)."""
        self._cancel.set()
        if self.player is not None and self.player.is_playing:
            self.player.stop()

    def pause(self) -> None:
        """A voice over the reply: silent, keeping its place, until the wake word cuts it or ``resume``."""
        self.player.pause()
        self.bus.emit(events.PlaybackPaused(turn=self._turn))

    def resume(self) -> None:
        self.player.resume()
        self.bus.emit(events.PlaybackResumed(turn=self._turn))


def without_lead_in(stream: Iterable[tuple[int, np.ndarray]]) -> Iterator[tuple[int, np.ndarray]]:
    """A reply's (rate, chunk) stream from ``LEAD_IN_KEPT_S`` before its first sound on: the quiet chunks and samples
    before it are left out, at most ``LEAD_IN_MAX_S``. Closing it closes ``stream`` (the reply's synthesis)."""
    chunks = iter(stream)
    try:
        left_out_s = 0.0
        for rate, chunk in chunks:
            chunk = np.asarray(chunk)
            start = first_sound(chunk, rate, LEAD_IN_RMS)
            cut = chunk.size if start is None else max(0, start - int(LEAD_IN_KEPT_S * rate))
            cut = min(cut, max(0, int((LEAD_IN_MAX_S - left_out_s) * rate)))
            left_out_s += cut / rate
            if cut < chunk.size:
                yield rate, chunk[cut:]
                break
        yield from chunks
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
