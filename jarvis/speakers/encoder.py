"""Voice embeddings with resemblyzer (a 256-d unit vector per utterance).

resemblyzer is imported inside ``load()`` so importing this module costs nothing. The first
``preprocess_wav`` call spends ~2 s compiling (numba/librosa), so ``warmup()`` runs the whole
path once on synthetic voiced audio and the first real call is fast.
"""
from __future__ import annotations

import logging
import threading
import warnings

import numpy as np

from jarvis.audio.wav import is_silence
from jarvis.errors import BadInput, NotAvailable

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
EMBEDDING_SIZE = 256
MIN_SPEECH_S = 0.5      # voiced audio left after resemblyzer trims silences


class SpeakerEncoder:
    """Thread-safe wrapper around ``resemblyzer.VoiceEncoder``."""

    sample_rate = SAMPLE_RATE

    def __init__(self, device: str = "cpu"):
        self.device = device
        self._model = None
        self._preprocess = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        """Load the model once; ``NotAvailable`` if resemblyzer or the device is missing."""
        with self._lock:
            if self._model is not None:
                return
            try:
                with warnings.catch_warnings():   # resemblyzer imports a deprecated scipy path
                    warnings.simplefilter("ignore", DeprecationWarning)
                    from resemblyzer import VoiceEncoder, preprocess_wav
            except ImportError as exc:
                raise NotAvailable(
                    "speaker_model_missing",
                    f"Speaker ID needs resemblyzer ({exc}). Install it: "
                    "pip install -r requirements.txt && pip install --no-deps -r requirements-nodeps.txt") from exc
            try:
                model = VoiceEncoder(device=self.device, verbose=False)
            except Exception as exc:
                log.exception("resemblyzer failed to load on %r", self.device)
                raise NotAvailable(
                    "speaker_model_failed",
                    f"The speaker model could not load on device {self.device!r} ({exc}). "
                    "Try device 'cpu'.") from exc
            model.eval()
            self._model, self._preprocess = model, preprocess_wav
            log.info("speaker encoder loaded on %s", self.device)

    def warmup(self) -> None:
        """Run preprocessing and the network once on synthetic speech-like audio."""
        self.load()
        audio = _synthetic_voice(1.6)
        with self._lock:
            trimmed = self._preprocess(audio, source_sr=SAMPLE_RATE)
            self._model.embed_utterance(trimmed if trimmed.size >= SAMPLE_RATE else audio)

    def embed(self, samples: np.ndarray) -> np.ndarray:
        """Unit-length float32 embedding (256,) of float32 mono 16 kHz ``samples``.

        Raises ``BadInput("no_speech")`` when the audio is silent or too little speech remains.
        """
        samples = _check_samples(samples)
        self.load()
        with self._lock:
            trimmed = self._preprocess(samples, source_sr=SAMPLE_RATE)
            if trimmed.size < MIN_SPEECH_S * SAMPLE_RATE:
                raise BadInput("no_speech",
                               f"Only {trimmed.size / SAMPLE_RATE:.1f} s of speech was heard; "
                               f"speak for at least {MIN_SPEECH_S:g} s, closer to the microphone.")
            emb = self._model.embed_utterance(trimmed)
        emb = np.asarray(emb, dtype=np.float32)
        return emb / np.linalg.norm(emb)

    def close(self) -> None:
        with self._lock:
            self._model = self._preprocess = None


def _check_samples(samples: np.ndarray) -> np.ndarray:
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 2 and 1 in samples.shape:
        samples = samples.reshape(-1)
    if samples.ndim != 1:
        raise BadInput("wrong_format", f"Speaker ID needs mono audio; got shape {samples.shape}.")
    if not np.all(np.isfinite(samples)):
        raise BadInput("bad_audio", "The audio holds NaN or infinite samples; record it again.")
    if samples.size == 0 or is_silence(samples):
        raise BadInput("no_speech", "The audio is silent; check the microphone and speak again.")
    return samples


def _synthetic_voice(seconds: float) -> np.ndarray:
    """A vowel-like buzz with gliding pitch and syllable-rate loudness: enough to pass the VAD."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    phase = 2 * np.pi * np.cumsum(140 + 30 * np.sin(2 * np.pi * 3 * t)) / SAMPLE_RATE
    wave = sum(np.sin(k * phase) / k for k in range(1, 15)) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))
    return (0.3 * wave / np.abs(wave).max()).astype(np.float32)
