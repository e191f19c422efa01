"""The voice loop: capture -> listener -> speaker ID -> brain -> TTS chain -> player.

One capture stream feeds the listener; the listener hands back each command with the audio it
was transcribed from, which speaker ID reuses (no second recording). Replies are spoken on a
separate thread so the listener keeps hearing the wake word: a wake word during playback stops
the speech (barge-in) and the next command is taken.

In a real room the microphone also hears Jarvis: the echo canceller (``jarvis.audio.echo``) cleans the one
stream with what the player sends to the speakers as its reference, before anything listens. With
``audio.pause_when_spoken_over`` (experimental, off by default) a person talking over a reply pauses it at once
(``jarvis.listen.spoken_over``); the wake word then cuts it, else it goes on. After a reply
Jarvis listens ``listen.follow_up_s`` for a follow-up without the wake word. Transcripts that are Jarvis's
own words, Whisper's hallucinations on noise, or empty get no reply (an ``ignored`` event says why).
"""
from __future__ import annotations

import dataclasses
import logging
import threading

from jarvis import events, heap
from jarvis.brain import backends
from jarvis.brain.brain import Brain
from jarvis.brain.llm import LlmResponder
from jarvis.config import Settings
from jarvis.host import ModelHost
from jarvis.listen.own_voice import OwnVoice
from jarvis.loop.microphone import MicrophoneFeed
from jarvis.loop.speaking import ReplySpeaker
from jarvis.loop.turns import TurnTaker
from jarvis.speakers.strangers import UnknownVoices

log = logging.getLogger(__name__)


class VoiceLoop:
    """Start/stop, live settings and the controls (mute, push-to-talk, taps); the work is done by its parts
    (``jarvis.loop``): ``mic`` (MicrophoneFeed), ``speaker`` (ReplySpeaker), ``turns`` (TurnTaker)."""

    def __init__(self, settings: Settings, bus: events.EventBus, brain: Brain | None = None,
                 host: ModelHost | None = None):
        """``host``: the models of a loop stopped with ``stop(keep_models=True)``; what it kept is not reloaded."""
        self.settings = settings
        self.bus = bus
        self.responder = LlmResponder(settings.brain, bus)
        self.brain = brain or Brain(fallback=self.responder)
        self.host = host or ModelHost(settings, bus)
        self._stopping = threading.Event()
        self._loop_thread: threading.Thread | None = None
        self.own_voice = OwnVoice()
        self.strangers = UnknownVoices(settings.speakers.threshold, settings.brain.memory_idle_s)
        self.mic = MicrophoneFeed(settings, bus, self.host, self._stopping, before_reopen=self._before_reopen)
        self.speaker = ReplySpeaker(lambda: self.settings, bus, self.host, self.own_voice, self.mic, self._stopping)
        self.turns = TurnTaker(bus, self.host, self.brain, self.speaker, self.own_voice, self.strangers,
                               self._stopping, lambda: self.settings)
        self._turn_held: int | None = None   # the turn the speech server's requests are stepping aside for
        self.heap = heap.TrimWhenIdle()          # free memory back to the system once a turn is over
        self._unsubscribe = bus.subscribe(self._hold_requests_for_turns)

    # The parts' state, as the benchmarks and the windows read it.
    capture = property(lambda self: self.mic.capture)
    echo = property(lambda self: self.mic.echo)
    player = property(lambda self: self.speaker.player)
    muted = property(lambda self: self.mic.muted)
    spoken_over = property(lambda self: self.mic.spoken_over)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Open the audio devices, load and warm every model, start listening, emit ``ready``."""
        from jarvis.audio.devices import resolve_input, resolve_output

        audio = self.settings.audio
        resolve_input(audio.input_device)    # fail fast with a clear line before loading models
        resolve_output(audio.output_device)
        self.host.load(on_wake=self.speaker.barge_in)
        self.host.listener.on_recorded = self.turns.identify_early
        self.host.listener.on_paused = self.turns.identify_pause
        self.host.listener.on_early_transcript = self.turns.prepare_early
        self.host.listener.on_went_on = self.turns.went_on
        self.host.listener.known_command = self.brain.knows
        self._use_llm()
        echo = self.mic.start_echo_canceller()
        if echo is not None and audio.pause_when_spoken_over:
            from jarvis.listen.spoken_over import SpokenOver
            self.mic.spoken_over = SpokenOver(lambda: self.speaker.speaking, self.speaker.pause, self.speaker.resume)
        self.speaker.open()
        self.mic.start()
        self._loop_thread = threading.Thread(target=self.turns.run, name="voice-loop", daemon=True)
        self._loop_thread.start()
        self.host.serve(self.settings.serve)   # serve.enabled: the same models to other apps, the loop first
        heap.settle_loaded()
        self.bus.emit(events.Ready())
        log.info("voice loop ready: listening on %s", audio.input_device or "the default microphone")

    def stop(self, keep_models: bool = False) -> ModelHost:
        """Stop listening and speaking; close the models too unless ``keep_models`` (a restart for new audio or
        listening settings: ``ModelHost.release_for`` then says what stays). Returns the host."""
        self._stopping.set()
        self.speaker.barge_in()
        self.mic.stop()
        if self.host.listener is not None:
            self.host.listener.interrupt()
        if self._loop_thread is not None:
            self._loop_thread.join(timeout=2)
        heap.unsettle()
        if not keep_models:
            self.host.close()
        self.mic.close()
        self.turns.close()
        self.speaker.close()
        self._unsubscribe()
        self.heap.close()
        self.host.scheduler.turn_over()
        return self.host

    def _hold_requests_for_turns(self, event: events.Event) -> None:
        """From a person's first word (the wake word, or speech in a follow-up window) to the end of Jarvis's
        answer, the speech server's requests step aside (jarvis.serve.scheduler): the command is heard and
        answered at the pace of an idle machine."""
        kind = event.type
        if kind in ("wake", "speech_start"):
            self._turn_held = event.turn
            self.host.scheduler.turn_started()
            self.heap.turn_started()
        elif kind in ("playback_end", "listening", "ignored") and (event.turn is None or event.turn == self._turn_held):
            self._turn_held = None
            self.host.scheduler.turn_over()
            self.heap.turn_over()

    def _before_reopen(self) -> None:
        """A reconnect restarts PortAudio: stop the reply and drop the player's stream first (reopened lazily)."""
        self.speaker.barge_in()
        self.speaker.close()

    @property
    def ended(self) -> bool:
        """True once the loop was started and has stopped (listener failure or stop())."""
        return self._loop_thread is not None and not self._loop_thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the loop ends; True if it ended."""
        if self._loop_thread is None:
            return True
        self._loop_thread.join(timeout)
        return not self._loop_thread.is_alive()

    # -- settings changed while running ---------------------------------------------------------
    def apply_settings(self, new: Settings) -> bool:
        """Apply what can change live; True when the loop must restart (devices, listening models).

        TTS changes build and warm a new chain before swapping it in, so speech never stops midway
        without a voice; a reply speaking meanwhile ends with the old chain. The speaker threshold applies to the
        next turn.
        """
        old = self.settings
        # The follow-up window is read at each reply; every other listening setting needs a new listener.
        # The speech server switched on or off changes where the listener's Whisper runs (shared or its own process).
        restart = new.audio != old.audio or dataclasses.replace(new.listen, follow_up_s=old.listen.follow_up_s) \
            != old.listen or new.serve.enabled != old.serve.enabled
        if restart:  # nothing changes here: ModelHost.release_for(new) compares with what is loaded
            return True
        self.host.pressure.threshold = new.gpu.memory_limit
        if new.tts != old.tts and self.host.tts is not None and not self._room_for(new):
            new = dataclasses.replace(new, tts=old.tts)   # the voice stays as it is; the next apply tries again
        if new.tts != old.tts and self.host.tts is not None:
            from jarvis.speak.chain import TtsChain
            chain = self.host.place_tts(TtsChain.from_settings(new.tts, self.bus))
            chain.load(progress=lambda engine, state: self.host.progress(f"tts:{engine}", state))
            self.host.replace_tts(chain)  # a reply speaking now ends with the old voice
        if new.brain != old.brain and self.host.listener is not None:
            self.responder.apply_settings(new.brain)
            if backends.backend_fields(new.brain) != backends.backend_fields(old.brain):
                self.host.progress("brain", "loading")
                self.host.progress("brain", self.host.load_brain(new.brain))
                self._use_llm()
        if new.serve != old.serve:
            self.host.serve(new.serve)          # a new address or Wyoming on/off: the server alone restarts
        if self.host.identifier is not None:
            self.host.identifier.threshold = new.speakers.threshold
        self.strangers.threshold, self.strangers.idle_s = new.speakers.threshold, new.brain.memory_idle_s
        self.settings = self.host.settings = self.mic.settings = new
        return False

    def _room_for(self, new: Settings) -> bool:
        """A new chain with CSM loads beside the one speaking: not while GPU memory is over the limit."""
        if "csm" not in new.tts.engines or self.host.pressure.allow_large_load():
            return True
        self.bus.emit(events.Degraded(engine="gpu_memory", reason=(
            "The new voice settings were not applied: GPU memory is over the limit, and they would load another "
            "CSM beside the one in use. Close other GPU programs, then press OK again.")))
        return False

    def _use_llm(self) -> None:
        self.responder.backend, self.responder.unavailable = self.host.llm, self.host.llm_failure

    # -- controls ------------------------------------------------------------------------------
    def add_tap(self, tap) -> None:
        """``tap(int16 block)`` is called for every 16 kHz mono microphone block, muted or not."""
        self.mic.add_tap(tap)

    def remove_tap(self, tap) -> None:
        self.mic.remove_tap(tap)

    def set_muted(self, muted: bool) -> None:
        """Muted: the listener hears nothing (no wake word, no commands); taps still get audio."""
        self.mic.muted = bool(muted)
        if self.mic.muted and self.mic.spoken_over is not None and self.mic.spoken_over.paused:
            self.speaker.resume()  # nothing could cut it now

    def push_to_talk(self) -> None:
        """Listen for a command now, without the wake word (stops any reply first)."""
        if self.mic.muted or self.host.listener is None:
            return
        self.speaker.barge_in()
        self.host.listener.wakeup()
