"""RealtimeSTT adapter: wake word (Porcupine) + Silero VAD + faster-whisper on fed audio.

Audio is pushed in with ``feed()`` from the single capture stream; nothing here opens a
microphone. ``next_utterance()`` blocks until the wake word was heard and the command that
followed ended, then returns its transcript together with the very audio that was transcribed
(pre-roll with the wake word included) so speaker ID reads the same snippet.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import numpy as np

from jarvis import events
from jarvis.config import CHOICES, ListenSettings
from jarvis.errors import NotAvailable
from jarvis.listen import early_transcript, short_window, turn_end, wake
from jarvis.listen.stt import cpu_threads, resolve_model, resolve_placed
from jarvis.listen.vocabulary import whisper_prompt
from jarvis.listen.transcript import strip_wake_word

log = logging.getLogger(__name__)

STOP_CALLBACK_WAIT_S = 2.0  # RealtimeSTT's stop callback follows the queued audio within ms, unless the machine stalls
# A pause's Whisper request goes out before speaker ID and the end-of-turn model start (at most this long after the
# silence): started first, their threads held the GIL and the cores from the thread that sends it, which then went
# out 25-45 ms late, and Whisper's words are what a reply waits for (2026-12-05 traces).
WHISPER_FIRST_S = 0.05
# ... and, for a command on the short window, once Whisper's encoder is done (at most this long after the request):
# its products use both cores; its one-thread decoder then leaves the other to them (jarvis.listen.short_window).
ENCODER_FIRST_S = 0.15
# RealtimeSTT asks Whisper on the first 32 ms chunk that is early_transcription into the silence; a setting under one
# chunk means the chunk the silence was heard on, which needs a threshold under the microseconds in between.
CHUNK_S = 512 / 16000
SAME_CHUNK_S = 1e-6


@dataclass(frozen=True)
class Utterance:
    text: str              # wake word stripped
    raw_text: str          # as transcribed
    audio: np.ndarray      # float32 mono 16 kHz: wake word + command
    t_speech_end: float    # monotonic time the endpointer closed the recording
    turn: int | None = None  # the turn it opened (jarvis.events)


class Listener:
    def __init__(self, settings: ListenSettings, bus: events.EventBus,
                 on_wake: Callable[[], None] | None = None, shared_stt=None, placed_device: str | None = None):
        self.settings = settings
        self.bus = bus
        self.on_wake = on_wake
        # jarvis.listen.shared_stt.SharedTranscription: the speech server's Whisper, in this process (serve.enabled)
        self.shared_stt = shared_stt
        self.placed_device = placed_device   # jarvis.placement's choice for Whisper ("cuda:N" / "cpu"), for auto
        # Called (on RealtimeSTT's thread: be quick) with the recording (float32, 16 kHz) the moment the
        # command ends, before its transcript is ready: speaker ID runs while Whisper does.
        self.on_recorded: Callable[[np.ndarray], None] | None = None
        # Called (on the thread that read it: be quick) with the command's transcript (wake word stripped), its turn
        # and its audio so far (float32, 16 kHz) when its last pause began, while the end of the turn is still being
        # decided (the reply may be worked out meanwhile); the utterance handed over when the turn ends usually has
        # the same text.
        self.on_early_transcript: Callable[[str, int | None, np.ndarray], None] | None = None
        # Called (on RealtimeSTT's thread: be quick) when the person speaks again after a pause of the command.
        self.on_went_on: Callable[[], None] | None = None
        self._recorder = None
        self._closed = threading.Event()
        self._t_speech_end = 0.0
        self._without_wake_word = ""  # "follow_up" / "push_to_talk" while a window without the wake word is open
        self.wake_detector: wake.WakeDetector | None = None
        self._external_wake: wake.ExternalWake | None = None
        self._pause: _CommandPause | None = None  # a recording held open for the command after the wake word
        # The turn being heard (opened by the wake word, or by speech in a window without it).
        self._turn: int | None = None
        # Each recording RealtimeSTT queued for transcription, in order: (its turn, when it ended). Filled by the
        # stop callback, which RealtimeSTT runs *after* queueing the audio: ``next_utterance`` waits for it.
        self._ended: collections.deque[tuple[int | None, float]] = collections.deque()
        self._ended_ready = threading.Condition()
        # End of turn by a model (listen.end_of_turn "model"): asked at each pause, on a thread of its own.
        self.turn_model = None
        self.decisions: list[bool] = []  # the pauses' verdicts so far (finished?), for the log and the tests
        # A whole request the assistant knows (Brain.knows): a pause after it may end the turn whatever its last word.
        self.known_command: Callable[[str], bool] | None = None
        self._verdict: turn_end.PauseVerdict | None = None  # the model and the words on each pause
        # Called (on RealtimeSTT's thread: be quick) with the command's audio (float32, 16 kHz) and turn as each
        # pause begins: speaker ID runs while Whisper and the end-of-turn model do.
        self.on_paused: Callable[[np.ndarray, int | None], None] | None = None
        self._window_recording = False   # the recording was opened by speech in a window without the wake word
        self._whisper_asked = _Asked()   # the pause of Whisper's latest request
        self._pause_pool: ThreadPoolExecutor | None = None   # each pause's speaker ID start and end-of-turn model
        self.remote_stt = None           # jarvis.listen.remote_stt.RemoteTranscription with listen.stt_remote_url
        self._encoder_first = False      # a pause's other work waits for Whisper's encoder (ENCODER_FIRST_S)
        self.stt_placement = ""          # where Whisper runs, e.g. "cpu (int8)" (listen.stt_device auto resolved)

    # -- lifecycle ---------------------------------------------------------------------------
    def load(self) -> None:
        """Start RealtimeSTT (its Whisper worker process, Silero VAD, Porcupine)."""
        if self._recorder is not None:
            return
        try:
            from RealtimeSTT import AudioToTextRecorder
        except ImportError as exc:
            raise NotAvailable("stt_missing", "RealtimeSTT is not installed: run scripts/setup.sh.") from exc
        import pvporcupine

        from jarvis.listen import stt_worker
        from jarvis.listen.command_engine import engine_for
        stt_worker.install()

        wake_word = self.settings.wake_word.strip().lower()
        if wake_word not in pvporcupine.KEYWORDS:
            raise NotAvailable("bad_wake_word", f"Wake word '{wake_word}' is not a built-in Porcupine keyword. "
                                                f"Choose one of: {', '.join(sorted(pvporcupine.KEYWORDS))}.")
        s = self.settings
        self._load_turn_model()
        stt_device, gpu_index, stt_compute_type = resolve_placed(s.stt_device, s.stt_compute_type, self.placed_device)
        where = f"cuda:{gpu_index}" if stt_device == "cuda" else stt_device
        self.stt_placement = f"{where} ({stt_compute_type})"
        log.info("speech-to-text: %s on %s", s.stt_model, self.stt_placement)
        self.remote_stt = None
        if s.stt_remote_url.strip():
            from jarvis.listen.remote_stt import RemoteTranscription

            local = self.shared_stt.transcriber if self.shared_stt is not None else None
            self.remote_stt = RemoteTranscription.from_settings(s, self.bus, prompt=whisper_prompt(wake_word),
                                                                local=local)
        if self.shared_stt is not None:
            self.shared_stt.prompt = whisper_prompt(wake_word)
            self.stt_placement += ", shared with the speech server"
        if self.remote_stt is not None:
            self.stt_placement = f"{self.remote_stt.url}, this machine's {self.stt_placement} when it is down"
        # The worker's short passes decoded on one thread (jarvis.listen.short_window.one_thread_decoder)
        self._encoder_first = self.remote_stt is None and self.shared_stt is None and s.stt_short_window and \
            short_window.decodes_on_one_thread(stt_device, cpu_threads())
        try:
            self._recorder = AudioToTextRecorder(
                # Remote or shared speech-to-text replaces the Whisper worker process (jarvis.listen.remote_stt,
                # jarvis.listen.shared_stt).
                transcription_executor=self.remote_stt or self.shared_stt,
                # faster-whisper, commands decoded as jarvis.listen.stt and jarvis.listen.short_window say
                transcription_engine=engine_for(s.stt_short_window),
                # One command at a time: RealtimeSTT's batched pipeline (its default, 16) would bypass how Jarvis's
                # engine decodes a command, and batches nothing here.
                batch_size=0,
                model=resolve_model(s.stt_model), device=stt_device, gpu_device_index=gpu_index,
                compute_type=stt_compute_type,
                language=s.language, beam_size=s.beam_size,
                # Priming Whisper with the wake word and the skills' words (jarvis.listen.vocabulary).
                initial_prompt=whisper_prompt(wake_word), use_microphone=False, spinner=False,
                wakeword_backend="pvporcupine", wake_words=wake_word,
                wake_words_sensitivity=float(s.wake_sensitivity), wake_word_timeout=s.wake_word_timeout,
                silero_sensitivity=s.silero_sensitivity, post_speech_silence_duration=self._pause_limit(),
                deactivity_silence_confirmation_duration=s.end_confirmation,
                silero_deactivity_detection=s.end_of_speech_vad.strip().lower() != "webrtc",
                # Silero on one thread: a second one spins in onnxruntime's pool after every 32 ms chunk.
                silero_onnx_threads=1,
                early_transcription_on_silence=self._early_transcription(),
                min_length_of_recording=s.min_recording, pre_recording_buffer_duration=s.pre_recording_buffer,
                faster_whisper_vad_filter=False, no_log_file=True, level=logging.WARNING,
                on_recording_start=self._on_speech_start,
                on_recording_stop=self._on_speech_end, on_turn_detection_start=self._on_silence,
                on_turn_detection_stop=self._on_voice_again,
                on_wakeword_timeout=self._on_wake_timeout,
            )
            stt_worker.wait_for_chunks(self._recorder)
            self._external_wake = wake.install(self._recorder)
            early_transcript.install(self._recorder, self._on_early_transcript, self._whisper_asked.mark)
            self._pause_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pause")
            self.wake_detector = wake.WakeDetector(wake_word, float(s.wake_sensitivity), self._on_wake)
        except Exception as exc:
            raise NotAvailable("stt_failed", f"Could not start speech recognition ({exc}). "
                                             "Run: jarvis doctor") from exc

    def _load_turn_model(self) -> None:
        mode = self.settings.end_of_turn.strip().lower()
        if mode not in CHOICES["listen.end_of_turn"]:
            raise NotAvailable("bad_end_of_turn", f"listen.end_of_turn is {self.settings.end_of_turn!r}: use "
                                                  "\"model\" or \"silence\".")
        if mode != "model":
            return
        from jarvis.listen.end_of_turn import EndOfTurnModel

        model = EndOfTurnModel()
        try:
            model.load()
        except NotAvailable as exc:  # the command then ends on silence alone, and the user is told
            silence = self.settings.post_speech_silence
            reason = f"{exc.message} Until then a command ends after {silence:g} s of silence."
            log.warning("%s", reason)
            self.bus.emit(events.Degraded(engine="end_of_turn", reason=reason))
            return
        model.probability(np.zeros(16000, np.float32))  # the first run is slow (~300 ms): not in the first pause
        self.turn_model = model
        # Whisper's words for each pause check the model's "finished" (jarvis.listen.turn_end): they come with the
        # pause's early transcription, so without it the model decides alone.
        self._verdict = turn_end.PauseVerdict(use_words=self.settings.early_transcription > 0,
                                              known=lambda text: bool(self.known_command and self.known_command(text)))

    def _early_transcription(self) -> float:
        """RealtimeSTT's ``early_transcription_on_silence`` for ``listen.early_transcription`` (0: off)."""
        after = float(self.settings.early_transcription)
        return SAME_CHUNK_S if 0 < after < CHUNK_S else after

    def _pause_limit(self) -> float:
        """How long a pause may last before the command ends, until the model has heard it: with the model, the
        longest an unfinished sentence may pause; else the end-of-speech silence."""
        return self.settings.unfinished_silence if self.turn_model is not None else self.settings.post_speech_silence

    def warmup(self) -> None:
        """Run one transcription through the worker process so the first command is not slower."""
        executor = self.remote_stt or self.shared_stt
        if executor is not None:
            executor.warmup()    # no worker process to warm: the server and this machine's Whisper
            return
        rng = np.random.default_rng(0)
        noise = (rng.standard_normal(16000) * 0.01).astype(np.float32)
        self._recorder.perform_final_transcription(noise)

    def close(self) -> None:
        self._set_closed()
        recorder, self._recorder = self._recorder, None
        if recorder is not None:
            recorder.shutdown()
        detector, self.wake_detector = self.wake_detector, None
        if detector is not None:
            detector.close()
        if self._pause_pool is not None:
            self._pause_pool.shutdown(wait=False)

    # -- audio in / utterances out -----------------------------------------------------------
    def feed(self, block: np.ndarray, wake_word: bool = True) -> None:
        """Feed int16 mono 16 kHz audio (any block size); ``wake_word=False`` when the wake-word detector gets
        its own stream (``hear_wake_stream``)."""
        recorder = self._recorder
        if recorder is not None:
            recorder.feed_audio(np.ascontiguousarray(block, dtype=np.int16).tobytes(), 16000)
            pause = self._pause
            if pause is not None and pause.over(recorder):
                self._end_pause()
        detector = self.wake_detector
        if wake_word and detector is not None:
            detector.feed(block)

    def hear_wake_stream(self, wake_stream: np.ndarray, clean: np.ndarray, raw: np.ndarray, far_active: bool) -> None:
        """The echo canceller's wake-word stream, with its cleaned output and the raw microphone (float32)."""
        detector = self.wake_detector
        if detector is not None:
            detector.feed(wake_stream, clean, raw, far_active)

    def next_utterance(self) -> Utterance | None:
        """Block until a wake-word command has been transcribed; None when closed or empty."""
        recorder = self._recorder
        if recorder is None or self._closed.is_set():
            return None
        raw = recorder.text() or ""
        turn, t_speech_end = self._recording_ended()
        if self._closed.is_set():
            return None
        audio = recorder.last_transcription_bytes
        if audio is None:
            audio = np.zeros(0, dtype=np.float32)
        return Utterance(text=strip_wake_word(raw), raw_text=raw.strip(),
                         audio=np.asarray(audio, dtype=np.float32), t_speech_end=t_speech_end, turn=turn)

    def _recording_ended(self) -> tuple[int | None, float]:
        """The turn and end time of the recording just transcribed. RealtimeSTT hands the audio to ``text()``
        before it calls the stop callback (``_on_speech_end``) on its own thread; a loaded machine can run the
        whole transcription first, so this waits for the callback rather than read the previous turn's values
        (its id then went on every event of the reply)."""
        with self._ended_ready:
            if not self._ended_ready.wait_for(lambda: self._ended or self._closed.is_set(),
                                              timeout=STOP_CALLBACK_WAIT_S):
                log.warning("no end of speech reported for a transcribed recording in %.0f s", STOP_CALLBACK_WAIT_S)
            return self._ended.popleft() if self._ended else (None, self._t_speech_end)

    @property
    def waiting_for_wake(self) -> bool:
        """Listening for the wake word only: no recording, no window without it, no turn under way."""
        recorder = self._recorder
        return recorder is not None and not recorder.is_recording and not self._without_wake_word and \
            self._turn is None

    def wakeup(self) -> None:
        """Start listening for a command now, as if the wake word was heard (push-to-talk)."""
        self.listen_without_wake_word(self.settings.wake_word_timeout, "push_to_talk")

    def listen_without_wake_word(self, seconds: float, why: str = "follow_up") -> None:
        """For ``seconds``, any speech is taken as a command (follow-ups, push-to-talk); then the wake word is
        needed again and a ``listening`` event says so.

        RealtimeSTT's wake-word activation delay is exactly that window: voice activity starts a recording
        until ``seconds`` after ``listen_start``, then ``on_wakeword_timeout`` fires. The window is closed
        (delay back to 0) as soon as a recording starts, so later commands need the wake word again.
        """
        recorder = self._recorder
        if recorder is None or seconds <= 0:
            return
        self._without_wake_word = why
        recorder.wake_word_activation_delay = float(seconds)
        recorder.wakeup()

    def close_window(self) -> None:
        """Need the wake word again now (a reply started while a follow-up window was open)."""
        recorder = self._recorder
        self._without_wake_word = ""
        if recorder is not None:
            recorder.wake_word_activation_delay = 0.0

    def interrupt(self) -> None:
        """Make a blocked ``next_utterance`` return (used at shutdown)."""
        self._set_closed()
        recorder = self._recorder
        if recorder is not None:
            recorder.abort()

    def _set_closed(self) -> None:
        self._closed.set()
        with self._ended_ready:
            self._ended_ready.notify_all()

    # -- RealtimeSTT callbacks (its threads; keep them quick) --------------------------------
    def _on_wake(self) -> None:
        """The detector heard the wake word (capture thread): barge in now, then RealtimeSTT takes the command."""
        recorder = self._recorder
        recording = recorder is not None and recorder.is_recording
        if not (recording and self._turn is not None):  # else it is inside a command that opened a turn already
            self._turn = self.bus.new_turn()
        self.bus.emit(events.Wake(turn=self._turn))
        if self.on_wake is not None:
            self.on_wake()
        if recorder is None:
            return
        if recording:
            # A follow-up or push-to-talk window took the speech, wake word and all: the command may come after
            # a pause ("Jarvis. ... What time is it?"), so the recording must not end in that pause.
            self._pause = _CommandPause(recorder, self.settings.wake_word_timeout)
        elif self._external_wake is not None:
            self._external_wake.trigger()

    def _on_early_transcript(self, raw: str, heard: str | None = None, provisional: bool = False) -> None:
        """Whisper's words for the command so far (the recording is in the pause they were asked in): they check the
        end-of-turn model's verdict, and go to ``on_early_transcript`` as ``next_utterance`` would hand them over.
        ``heard``: the words the audio itself held (``jarvis.listen.heard``): the check judges those, not words
        Whisper's prompt made up to finish a half command. ``provisional`` (a half command's words, its 30 s pass
        put off): the check only, no reply is prepared for them."""
        handler, recorder = self.on_early_transcript, self._recorder
        if recorder is None or self._pause is not None:
            return
        from RealtimeSTT.core.text_formatting import preprocess_output

        text = preprocess_output(raw, ensure_sentence_starting_uppercase=recorder.ensure_sentence_starting_uppercase,
                                 ensure_sentence_ends_with_period=recorder.ensure_sentence_ends_with_period)
        turn = self._turn
        pause = recorder.speech_end_silence_start   # 0: the voice came back meanwhile
        if self._verdict is not None and pause:
            self._conclude(recorder, pause, self._verdict.words(pause, text if heard is None else heard), turn)
        if handler is not None and not provisional:
            audio = np.frombuffer(b"".join(list(recorder.frames)), dtype=np.int16).astype(np.float32) / 32768.0
            handler(strip_wake_word(text), turn, audio)

    def _end_pause(self) -> None:
        recorder, self._pause = self._recorder, None
        if recorder is not None:
            recorder.post_speech_silence_duration = self._pause_limit()

    def _on_speech_start(self) -> None:
        self._window_recording = bool(self._without_wake_word)
        if self._without_wake_word:
            self.close_window()
        if self._turn is None:  # no wake word opened it: a follow-up or push-to-talk
            self._turn = self.bus.new_turn()
        self.bus.emit(events.SpeechStart(turn=self._turn))

    def _on_wake_timeout(self) -> None:
        """No command came: after a wake word (RealtimeSTT's wake_word_timeout) or in a window without it."""
        why, self._without_wake_word = self._without_wake_word, ""
        recorder = self._recorder
        if recorder is not None:
            recorder.wake_word_activation_delay = 0.0
        reason = {"follow_up": "follow_up_timeout", "push_to_talk": "wake_timeout"}.get(why, "wake_timeout")
        turn, self._turn = self._turn, None  # a wake word's turn ends here; a window's had no turn yet
        self.bus.emit(events.Listening(reason=reason, turn=turn))

    def _on_silence(self) -> None:
        self.bus.emit(events.VadSilence(turn=self._turn))
        recorder, pool = self._recorder, self._pause_pool
        if recorder is None or pool is None or self._pause is not None:
            return
        frames = list(recorder.frames)
        if frames and (self.on_paused is not None or self.turn_model is not None):
            pool.submit(self._hear_pause, recorder, recorder.speech_end_silence_start, frames, self._turn)

    def _hear_pause(self, recorder, pause: float, frames: list, turn: int | None) -> None:
        """A pause began: once Whisper was asked for it (``WHISPER_FIRST_S``) and, for a command on the short window
        in this process's worker, its encoder is done (``ENCODER_FIRST_S``), its speaker ID starts (``on_paused``)
        and the end-of-turn model hears it."""
        audio = np.frombuffer(b"".join(frames), dtype=np.int16).astype(np.float32) / 32768.0
        if self._early_transcription() > 0 and self._whisper_asked.wait_for(pause, WHISPER_FIRST_S) and \
                self._encoder_first and short_window.fits(audio) and short_window.ENCODER.reported:
            short_window.ENCODER.wait(self._whisper_asked.at, ENCODER_FIRST_S)
        if recorder.speech_end_silence_start != pause:
            return   # the person went on meanwhile: this pause's audio is not the command's (``on_went_on``)
        if self.on_paused is not None:
            try:
                self.on_paused(audio, turn)
            except Exception:  # noqa: BLE001 - speaker ID then runs on the whole recording, as without it
                log.exception("starting speaker ID on a pause failed")
        if self.turn_model is not None:
            self._decide(recorder, pause, audio, turn)

    def _decide(self, recorder, pause: float, audio: np.ndarray, turn: int | None) -> None:
        """The model hears the command so far; with Whisper's words for the pause (``PauseVerdict``) that gives the
        verdict: finished, the command ends after ``end_of_turn_silence`` (or now, if they took longer);
        unfinished, it waits up to ``unfinished_silence``. A pause that ended meanwhile (the person went on) is left
        alone."""
        try:
            probability = self.turn_model.probability(audio)
        except Exception:  # noqa: BLE001 - this pause then ends on silence, as without the model
            log.exception("the end-of-turn model failed; this pause ends on silence")
            probability = None
        if recorder.speech_end_silence_start != pause or self._pause is not None:
            return  # the person went on, or the recording is held open for the command after the wake word
        if probability is None:
            recorder.post_speech_silence_duration = self.settings.post_speech_silence
            return
        self._conclude(recorder, pause, self._verdict.model(pause, probability), turn)

    def _conclude(self, recorder, pause: float, verdict: turn_end.Verdict | None, turn: int | None) -> None:
        """The pause's verdict, once given: finished ends the command after ``end_of_turn_silence``, unfinished waits
        up to ``unfinished_silence`` (a known command the model doubted: ``post_speech_silence``)."""
        if verdict is None or recorder.speech_end_silence_start != pause or self._pause is not None:
            return
        s = self.settings
        # In a recording a window opened, the speech may be "Jarvis." and a pause before the command; Porcupine
        # reports the word ~300 ms after it ends (benchmarks/porcupine_latency.py), so such a pause is given
        # the usual end-of-speech silence for the wake word to arrive and hold the recording open.
        done = max(s.end_of_turn_silence, s.post_speech_silence) if self._window_recording else s.end_of_turn_silence
        wait = done if verdict.finished else s.post_speech_silence if verdict.doubted else s.unfinished_silence
        recorder.post_speech_silence_duration = wait
        self.decisions.append(verdict.finished)
        after_ms = round((time.time() - pause) * 1000, 1)  # RealtimeSTT times its pauses with time.time()
        probability = None if verdict.probability is None else round(verdict.probability, 3)
        self.bus.emit(events.EndOfTurn(finished=verdict.finished, probability=probability, after_ms=after_ms,
                                       heard=verdict.heard or "", wait_s=wait, turn=turn))

    def _on_voice_again(self) -> None:
        """The person went on after a pause: the next pause is heard afresh, and what was worked out for this one is
        dropped. (RealtimeSTT also calls this as a recording ends: not a voice then.)"""
        recorder = self._recorder
        if recorder is not None and recorder.is_recording and self.on_went_on is not None:
            self.on_went_on()
        if self.turn_model is not None and recorder is not None and self._pause is None:
            recorder.post_speech_silence_duration = self._pause_limit()

    def _on_speech_end(self) -> None:
        if self._pause is not None:
            self._end_pause()
        self._t_speech_end = ended_at = events.now()
        ended, self._turn = self._turn, None  # the next speech or wake word opens a new turn
        if self._recorder is not None and self._pause is None:
            self._recorder.post_speech_silence_duration = self._pause_limit()
        self.bus.emit(events.SpeechEnd(t=ended_at, turn=ended))
        # Empty when the transcription took the audio first (a late callback): speaker ID then reads the
        # utterance's audio once it is handed over.
        frames = getattr(self._recorder, "last_frames", None)
        if frames and self.on_recorded is not None:
            self.on_recorded(np.frombuffer(b"".join(frames), dtype=np.int16).astype(np.float32) / 32768.0)
        # Every recording that ends was queued for transcription (audio is fed continuously, so none is empty).
        with self._ended_ready:
            self._ended.append((ended, ended_at))
            self._ended_ready.notify_all()


class _Asked:
    """The pause (RealtimeSTT's start of its silence) of Whisper's latest request, to wait for."""

    def __init__(self) -> None:
        self._pause = 0.0
        self.at = 0.0   # when it was asked (time.monotonic)
        self._changed = threading.Condition()

    def mark(self, pause: float) -> None:
        with self._changed:
            self._pause, self.at = pause, time.monotonic()
            self._changed.notify_all()

    def wait_for(self, pause: float, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._pause == pause, timeout=timeout)


class _CommandPause:
    """After the wake word inside a recording, wait for the command as RealtimeSTT waits after a wake word heard
    between recordings: the recording ends only after ``wait_s`` of silence, until speech resumes; from then on the
    usual end-of-speech silence applies again (``over``).

    RealtimeSTT marks the start of each silence in ``speech_end_silence_start`` (0 while voice is active), so a
    new value after the pause began means the speaker went on.
    """

    def __init__(self, recorder, wait_s: float):
        self.silence_start = recorder.speech_end_silence_start  # 0: the wake word is still sounding
        recorder.post_speech_silence_duration = max(recorder.post_speech_silence_duration, float(wait_s))

    def over(self, recorder) -> bool:
        if not recorder.is_recording:
            return True
        now = recorder.speech_end_silence_start
        if not self.silence_start:
            self.silence_start = now   # the pause after the wake word begins
            return False
        return now != self.silence_start
