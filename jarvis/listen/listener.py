"""RealtimeSTT adapter: wake word (Porcupine) + Silero VAD + faster-whisper on fed audio.

Audio is pushed in with ``feed()`` from the single capture stream; nothing here opens a
microphone. ``next_utterance()`` blocks until the wake word was heard and the command that
followed ended, then returns its transcript together with the very audio that was transcribed
(pre-roll with the wake word included) so speaker ID reads the same snippet.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np

from jarvis import events
from jarvis.config import ListenSettings
from jarvis.errors import NotAvailable
from jarvis.listen.stt import resolve_model
from jarvis.listen.transcript import strip_wake_word

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Utterance:
    text: str              # wake word stripped
    raw_text: str          # as transcribed
    audio: np.ndarray      # float32 mono 16 kHz: wake word + command
    t_speech_end: float    # monotonic time the endpointer closed the recording


class Listener:
    def __init__(self, settings: ListenSettings, bus: events.EventBus,
                 on_wake: Callable[[], None] | None = None):
        self.settings = settings
        self.bus = bus
        self.on_wake = on_wake
        # Called (on RealtimeSTT's thread: be quick) with the recording (float32, 16 kHz) the moment the
        # command ends, before its transcript is ready: speaker ID runs while Whisper does.
        self.on_recorded: Callable[[np.ndarray], None] | None = None
        self._recorder = None
        self._closed = threading.Event()
        self._t_speech_end = 0.0

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
        stt_worker.install()

        wake_word = self.settings.wake_word.strip().lower()
        if wake_word not in pvporcupine.KEYWORDS:
            raise NotAvailable("bad_wake_word", f"Wake word '{wake_word}' is not a built-in Porcupine keyword. "
                                                f"Choose one of: {', '.join(sorted(pvporcupine.KEYWORDS))}.")
        s = self.settings
        try:
            self._recorder = AudioToTextRecorder(
                model=resolve_model(s.stt_model), device=s.stt_device, compute_type=s.stt_compute_type,
                language=s.language, beam_size=s.beam_size,
                # Priming Whisper with the wake word stops tiny models from hearing it as other words.
                initial_prompt=f"{wake_word.capitalize()},", use_microphone=False, spinner=False,
                wakeword_backend="pvporcupine", wake_words=wake_word,
                wake_words_sensitivity=float(s.wake_sensitivity), wake_word_timeout=s.wake_word_timeout,
                silero_sensitivity=s.silero_sensitivity, post_speech_silence_duration=s.post_speech_silence,
                deactivity_silence_confirmation_duration=s.end_confirmation,
                silero_deactivity_detection=s.end_of_speech_vad.strip().lower() != "webrtc",
                early_transcription_on_silence=s.early_transcription,
                min_length_of_recording=s.min_recording, pre_recording_buffer_duration=s.pre_recording_buffer,
                faster_whisper_vad_filter=False, no_log_file=True, level=logging.WARNING,
                on_wakeword_detected=self._on_wake, on_recording_start=self._on_speech_start,
                on_recording_stop=self._on_speech_end, on_turn_detection_start=self._on_silence,
            )
        except Exception as exc:
            raise NotAvailable("stt_failed", f"Could not start speech recognition ({exc}). "
                                             "Run: jarvis doctor") from exc

    def warmup(self) -> None:
        """Run one transcription through the worker process so the first command is not slower."""
        rng = np.random.default_rng(0)
        noise = (rng.standard_normal(16000) * 0.01).astype(np.float32)
        self._recorder.perform_final_transcription(noise)

    def close(self) -> None:
        self._closed.set()
        recorder, self._recorder = self._recorder, None
        if recorder is not None:
            recorder.shutdown()

    # -- audio in / utterances out -----------------------------------------------------------
    def feed(self, block: np.ndarray) -> None:
        """Feed int16 mono 16 kHz audio (any block size)."""
        recorder = self._recorder
        if recorder is not None:
            recorder.feed_audio(np.ascontiguousarray(block, dtype=np.int16).tobytes(), 16000)

    def next_utterance(self) -> Utterance | None:
        """Block until a wake-word command has been transcribed; None when closed or empty."""
        recorder = self._recorder
        if recorder is None or self._closed.is_set():
            return None
        raw = recorder.text() or ""
        if self._closed.is_set():
            return None
        audio = recorder.last_transcription_bytes
        if audio is None:
            audio = np.zeros(0, dtype=np.float32)
        return Utterance(text=strip_wake_word(raw), raw_text=raw.strip(),
                         audio=np.asarray(audio, dtype=np.float32), t_speech_end=self._t_speech_end)

    def wakeup(self) -> None:
        """Start listening for a command now, as if the wake word was heard (push-to-talk)."""
        recorder = self._recorder
        if recorder is not None:
            recorder.wakeup()

    def interrupt(self) -> None:
        """Make a blocked ``next_utterance`` return (used at shutdown)."""
        self._closed.set()
        recorder = self._recorder
        if recorder is not None:
            recorder.abort()

    # -- RealtimeSTT callbacks (its threads; keep them quick) --------------------------------
    def _on_wake(self) -> None:
        self.bus.emit(events.Wake())
        if self.on_wake is not None:
            self.on_wake()

    def _on_speech_start(self) -> None:
        self.bus.emit(events.SpeechStart())

    def _on_silence(self) -> None:
        self.bus.emit(events.VadSilence())

    def _on_speech_end(self) -> None:
        self._t_speech_end = events.now()
        self.bus.emit(events.SpeechEnd(t=self._t_speech_end))
        frames = getattr(self._recorder, "last_frames", None) if self.on_recorded is not None else None
        if frames:
            audio = np.frombuffer(b"".join(frames), dtype=np.int16).astype(np.float32) / 32768.0
            self.on_recorded(audio)
