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
from concurrent.futures import Future, ThreadPoolExecutor

from jarvis import events
from jarvis.brain import backends
from jarvis.brain.brain import Brain
from jarvis.brain.llm import LlmResponder
from jarvis.brain.types import Turn
from jarvis.config import Settings
from jarvis.errors import JarvisError, NotAvailable
from jarvis.host import ModelHost
from jarvis.listen.own_voice import OwnVoice
from jarvis.listen.transcript import is_hallucination
from jarvis.speakers.strangers import UnknownVoices

log = logging.getLogger(__name__)

RECONNECT_FIRST_S, RECONNECT_MAX_S = 1.0, 8.0  # retry delays after the microphone is lost


class VoiceLoop:
    def __init__(self, settings: Settings, bus: events.EventBus, brain: Brain | None = None,
                 host: ModelHost | None = None):
        """``host``: the models of a loop stopped with ``stop(keep_models=True)``; what it kept is not reloaded."""
        self.settings = settings
        self.bus = bus
        self.responder = LlmResponder(settings.brain, bus)
        self.brain = brain or Brain(fallback=self.responder)
        self.host = host or ModelHost(settings, bus)
        self.capture = None
        self.player = None
        self._stopping = threading.Event()
        self._audio_lock = threading.Lock()  # reconnecting vs. stopping
        self._speech_cancel = threading.Event()
        self._speaker_thread: threading.Thread | None = None
        self._reply_turn: int | None = None  # the turn whose reply is being spoken (pausing it is that turn's)
        self._loop_thread: threading.Thread | None = None
        self.muted = False
        self._taps: list = []  # callables that also get every microphone block (level meter, enrollment)
        self._early_speaker: Future | None = None  # speaker ID started when the command ended
        self._id_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="speaker-id")
        self.echo = None                 # the EchoCanceller while it is on and working
        self.spoken_over = None          # pauses a reply a person talks over (with the echo canceller only)
        self.own_voice = OwnVoice()      # what Jarvis said lately: a transcript of it is not a command
        self.strangers = UnknownVoices(settings.speakers.threshold, settings.brain.memory_idle_s)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Open the audio devices, load and warm every model, start listening, emit ``ready``."""
        from jarvis.audio.devices import resolve_input, resolve_output
        from jarvis.audio.player import Player

        audio = self.settings.audio
        resolve_input(audio.input_device)    # fail fast with a clear line before loading models
        resolve_output(audio.output_device)
        self.host.load(on_wake=self._barge_in)
        self.host.listener.on_recorded = self._identify_early
        self._use_llm()
        self.echo = self._start_echo_canceller()
        if self.echo is not None and audio.pause_when_spoken_over:
            from jarvis.listen.spoken_over import SpokenOver
            self.spoken_over = SpokenOver(self._speaking, self._pause_reply, self._resume_reply)
        self.player = Player(audio.output_device, on_output=self.echo.far_end.push if self.echo else None)
        self.capture = self._new_capture()
        self.capture.start()
        self._loop_thread = threading.Thread(target=self._run, name="voice-loop", daemon=True)
        self._loop_thread.start()
        self.bus.emit(events.Ready())
        log.info("voice loop ready: listening on %s", audio.input_device or "the default microphone")

    def stop(self, keep_models: bool = False) -> ModelHost:
        """Stop listening and speaking; close the models too unless ``keep_models`` (a restart for new audio or
        listening settings: ``ModelHost.release_for`` then says what stays). Returns the host."""
        self._stopping.set()
        self._barge_in()
        with self._audio_lock:  # not while a reconnect swaps the microphone
            if self.capture is not None:
                self.capture.stop()
        if self.host.listener is not None:
            self.host.listener.interrupt()
        if self._loop_thread is not None:
            self._loop_thread.join(timeout=2)
        if not keep_models:
            self.host.close()
        if self.echo is not None:
            self.echo.close()
        self._id_pool.shutdown(wait=False)
        if self.player is not None:
            self.player.close()
        return self.host

    def _start_echo_canceller(self):
        """The echo canceller, or None (switched off, or unavailable: then the loop runs without it and says so)."""
        audio = self.settings.audio
        if not audio.echo_cancellation:
            self.bus.emit(events.Echo(state="off", message="Echo cancellation is off (Settings → Audio): on open "
                                                           "speakers Jarvis may not hear you over its own voice."))
            return None
        from jarvis.audio.echo import EchoCanceller
        try:
            echo = EchoCanceller(noise_suppression=audio.noise_suppression, on_state=self._on_echo_state,
                                 wake_tap=self._on_wake_stream)
        except NotAvailable as exc:
            log.warning("%s", exc.message)
            self.bus.emit(events.Echo(state="unavailable", message=exc.message))
            return None
        self.bus.emit(events.Echo(state="on", message="Echo cancellation is on."))
        return echo

    def _on_echo_state(self, state: str, message: str) -> None:
        self.bus.emit(events.Echo(state=state, message=message))

    def _new_capture(self):
        from jarvis.audio.capture import MicCapture

        audio = self.settings.audio
        capture = MicCapture(self._on_block, device=audio.input_device, block_ms=audio.block_ms,
                             processor=self.echo.process if self.echo is not None else None)
        capture.on_error = self._on_capture_error
        return capture

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
        restart = new.audio != old.audio or dataclasses.replace(new.listen, follow_up_s=old.listen.follow_up_s) \
            != old.listen
        if restart:  # nothing changes here: ModelHost.release_for(new) compares with what is loaded
            return True
        if new.tts != old.tts and self.host.tts is not None:
            from jarvis.speak.chain import TtsChain
            chain = TtsChain.from_settings(new.tts, self.bus)
            chain.load(progress=lambda engine, state: self.host.progress(f"tts:{engine}", state))
            self.host.replace_tts(chain)  # a reply speaking now ends with the old voice
        if new.brain != old.brain and self.host.listener is not None:
            self.responder.apply_settings(new.brain)
            if backends.backend_fields(new.brain) != backends.backend_fields(old.brain):
                self.host.progress("brain", "loading")
                self.host.progress("brain", self.host.load_brain(new.brain))
                self._use_llm()
        if self.host.identifier is not None:
            self.host.identifier.threshold = new.speakers.threshold
        self.strangers.threshold, self.strangers.idle_s = new.speakers.threshold, new.brain.memory_idle_s
        self.settings = self.host.settings = new
        return False

    def _use_llm(self) -> None:
        self.responder.backend, self.responder.unavailable = self.host.llm, self.host.llm_failure

    # -- microphone: one stream feeds the listener and any taps ---------------------------------
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

    def set_muted(self, muted: bool) -> None:
        """Muted: the listener hears nothing (no wake word, no commands); taps still get audio."""
        self.muted = bool(muted)
        if self.muted and self.spoken_over is not None and self.spoken_over.paused:
            self._resume_reply()  # nothing could cut it now

    def push_to_talk(self) -> None:
        """Listen for a command now, without the wake word (stops any reply first)."""
        if self.muted or self.host.listener is None:
            return
        self._barge_in()
        self.host.listener.wakeup()

    # -- the loop ----------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                utterance = self.host.listener.next_utterance()
            except Exception as exc:  # the recorder died: report and stop rather than spin
                log.exception("listener failed")
                self.bus.emit(events.Error(code="listener_failed",
                                           message=f"Speech recognition stopped ({exc}). Restart Jarvis."))
                return
            if utterance is None or self._stopping.is_set():
                self._early_speaker = None
                continue
            with events.in_turn(utterance.turn):
                try:
                    self._handle(utterance)
                except JarvisError as exc:
                    self.bus.emit(events.Error(code=exc.code, message=exc.message))
                except Exception as exc:
                    log.exception("turn failed")
                    self.bus.emit(events.Error(code="turn_failed", message=f"That turn failed ({exc})."))

    def _handle(self, utterance) -> None:
        self.bus.emit(events.Transcript(text=utterance.text))
        early, self._early_speaker = self._early_speaker, None
        reason = self._no_reply_reason(utterance.text)
        if reason:
            log.info("no reply to %r: %s", utterance.raw_text, reason)
            self.bus.emit(events.Ignored(text=utterance.raw_text, reason=reason))
            return
        match = early.result() if early is not None else self._identify(utterance.audio)
        self.bus.emit(events.Speaker(name=match.name, score=round(float(match.score), 4)))
        cancel = threading.Event()  # this turn's: barge-in stops its speech and its LLM generation
        conversation = "" if match.known else self.strangers.key_for(match.embedding)
        turn = Turn(text=utterance.text, speaker=match.name, speaker_score=match.score, conversation=conversation)
        response = self.brain.respond(turn, cancel=cancel)
        if response.action == "stop":
            self._barge_in()
            self.bus.emit(events.Reply(text=""))
            return
        self._speak_async(response, cancel)

    def _no_reply_reason(self, text: str) -> str:
        """Why a transcript gets no reply: "empty" (only the wake word), "hallucination" (Whisper's words on
        noise or silence) or "own_voice" (Jarvis heard itself); "" for a real command."""
        if not text.strip(" .,!?"):
            return "empty"
        if is_hallucination(text):
            return "hallucination"
        if self.own_voice.heard(text):
            return "own_voice"
        return ""

    def _identify_early(self, audio) -> None:
        """The command just ended: identify its speaker while Whisper transcribes the same recording."""
        self._early_speaker = self._id_pool.submit(self._identify, audio)

    def _identify(self, audio):
        from jarvis.speakers.identify import Match

        try:
            return self.host.identifier.identify(audio)
        except JarvisError as exc:  # too little speech for a voice print: not an error for the turn
            log.info("speaker ID skipped: %s", exc)
            return Match(name="unknown", score=0.0)

    # -- speaking ----------------------------------------------------------------------------
    def _speak_async(self, response, cancel: threading.Event) -> None:
        self._barge_in()
        if self._speaker_thread is not None:
            self._speaker_thread.join(timeout=1)
        self._speech_cancel = cancel
        self._speaker_thread = threading.Thread(target=events.in_turn_thread(self._speak, response, cancel),
                                                name="speaker", daemon=True)
        self._speaker_thread.start()

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
        self._reply_turn = events.current_turn()
        self.host.listener.close_window()  # while Jarvis talks, only the wake word interrupts it
        self.own_voice.speaking(response)
        reference_before = self.echo.far_end.blocks if self.echo is not None else 0

        def on_start() -> None:
            nonlocal started
            started = True
            self.bus.emit(events.PlaybackStart())

        try:
            with self.host.tts_for_reply() as tts:
                self.player.play_stream(tts.speak_stream(response, cancel), on_start=on_start)
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
                self._check_reference(reference_before)
            if started and not interrupted and not self._stopping.is_set():
                self._follow_up()

    def _follow_up(self) -> None:
        seconds = float(self.settings.listen.follow_up_s)
        if seconds > 0 and not self.muted and self.host.listener is not None:
            self.bus.emit(events.FollowUp(seconds=seconds))
            self.host.listener.listen_without_wake_word(seconds, "follow_up")

    def _check_reference(self, blocks_before: int) -> None:
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
            self._on_echo_state("no_reference", "Echo cancellation gets none of Jarvis's own playback, so it cannot "
                                                "remove it; Jarvis listens without it. Use headphones, or check "
                                                "that Jarvis plays through its own output device (jarvis doctor).")

    def _speaking(self) -> bool:
        return self.player is not None and self.player.is_playing

    def _pause_reply(self) -> None:
        self.player.pause()
        self.bus.emit(events.PlaybackPaused(turn=self._reply_turn))

    def _resume_reply(self) -> None:
        self.player.resume()
        self.bus.emit(events.PlaybackResumed(turn=self._reply_turn))

    def _barge_in(self) -> None:
        """Stop speaking now (wake word heard, stop command, or shutdown)."""
        self._speech_cancel.set()
        if self.player is not None and self.player.is_playing:
            self.player.stop()

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

        wait = RECONNECT_FIRST_S
        while not self._stopping.wait(wait):
            wait = min(wait * 2, RECONNECT_MAX_S)
            self._barge_in()
            with self._audio_lock:
                if self._stopping.is_set():
                    return
                if self.player is not None:
                    self.player.close()
                devices.refresh()
                capture = self._new_capture()
                try:
                    capture.start()
                except Exception as exc:  # NotAvailable with its reason; anything else is logged the same way
                    log.info("microphone not back yet (next try in %.0f s): %s", wait, exc)
                    continue
                self.capture = capture
            log.info("microphone back: %s", capture.device_name)
            self.bus.emit(events.AudioBack(device=capture.device_name))
            return

