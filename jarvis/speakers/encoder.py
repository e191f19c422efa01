"""Voice embeddings with resemblyzer's network (a 256-d unit vector per utterance).

Only resemblyzer's weights (``pretrained.pt``) and network layout are used: importing the
``resemblyzer`` package would pull in librosa -> numba/llvmlite and scipy (a slow JIT on first
use, and a large frozen bundle), so its audio front end is re-implemented exactly in
``jarvis.speakers.features`` and the network is rebuilt here; embeddings are unchanged.
torch loads inside ``load()``, so importing this module costs nothing; ``warmup()`` runs the whole
path once on synthetic voiced audio so the first real call is fast.

On the CPU the network runs on one of torch's intra-op threads: its products are a few partials by 256 (a batch of
3-5 rows), too small to gain from more, and at a command's pause speaker ID shares the cores with Whisper and the
end-of-turn model. A Piper "Jarvis, ..." command on a 2-core AMD EPYC (AVX2): 22 ms of CPU on one thread against
29 ms on two (alone: 22 ms wall against 15), the same embedding (``benchmarks/speaker_threads.py``).
"""
from __future__ import annotations

import contextlib
import importlib.util
import logging
import threading
from pathlib import Path

import numpy as np

from jarvis.audio.wav import is_silence
from jarvis.errors import BadInput, NotAvailable

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
EMBEDDING_SIZE = 256
MIN_SPEECH_S = 0.5      # voiced audio left after resemblyzer trims silences
PARTIAL_FRAMES = 160    # mel frames (1.6 s) per partial utterance
PARTIAL_RATE = 1.3      # partial utterances per second (resemblyzer's embed_utterance defaults)
MIN_COVERAGE = 0.75
_INSTALL = "pip install -r requirements.txt && pip install --no-deps -r requirements-nodeps.txt"


class SpeakerEncoder:
    """Thread-safe equivalent of ``resemblyzer.VoiceEncoder`` + ``preprocess_wav``."""

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
                weights = _weights_path()
                import torch
                from jarvis.speakers import features
            except ImportError as exc:
                raise NotAvailable(
                    "speaker_model_missing",
                    f"Speaker ID needs resemblyzer ({exc}). Install it: {_INSTALL}") from exc
            try:
                model = _load_network(torch, weights, self.device)
            except Exception as exc:
                log.exception("resemblyzer failed to load on %r", self.device)
                raise NotAvailable(
                    "speaker_model_failed",
                    f"The speaker model could not load on device {self.device!r} ({exc}). "
                    "Try device 'cpu'.") from exc
            self._model, self._preprocess = model, features.preprocess
            log.info("speaker encoder loaded on %s", self.device)

    def warmup(self) -> None:
        """Run preprocessing and the network once on synthetic speech-like audio."""
        self.load()
        audio = _synthetic_voice(1.6)
        with self._lock:
            trimmed = self._preprocess(audio)
            _embed_utterance(self._model, trimmed if trimmed.size >= SAMPLE_RATE else audio)

    def embed(self, samples: np.ndarray) -> np.ndarray:
        """Unit-length float32 embedding (256,) of float32 mono 16 kHz ``samples``.

        Raises ``BadInput("no_speech")`` when the audio is silent or too little speech remains.
        """
        samples = _check_samples(samples)
        self.load()
        with self._lock:
            trimmed = self._preprocess(samples)
            if trimmed.size < MIN_SPEECH_S * SAMPLE_RATE:
                raise BadInput("no_speech",
                               f"Only {trimmed.size / SAMPLE_RATE:.1f} s of speech was heard; "
                               f"speak for at least {MIN_SPEECH_S:g} s, closer to the microphone.")
            emb = _embed_utterance(self._model, trimmed)
        emb = np.asarray(emb, dtype=np.float32)
        return emb / np.linalg.norm(emb)

    def close(self) -> None:
        with self._lock:
            self._model = self._preprocess = None


def _weights_path() -> Path:
    """resemblyzer's ``pretrained.pt``, found without importing the package (find_spec of a
    top-level package does not run its ``__init__``)."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("No module named 'resemblyzer'")
    return Path(list(spec.submodule_search_locations)[0]) / "pretrained.pt"


def _load_network(torch, weights: Path, device: str):
    """The network of ``resemblyzer.VoiceEncoder`` with its pretrained weights, in eval mode."""
    from torch import nn

    class VoiceEncoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(40, 256, 3, batch_first=True)   # mel channels, hidden, layers
            self.linear = nn.Linear(256, EMBEDDING_SIZE)
            self.relu = nn.ReLU()

        def forward(self, mels):
            _, (hidden, _) = self.lstm(mels)
            embeds_raw = self.relu(self.linear(hidden[-1]))
            return embeds_raw / torch.norm(embeds_raw, dim=1, keepdim=True)

    if not weights.exists():
        raise FileNotFoundError(f"Couldn't find the voice encoder pretrained model at {weights}.")
    model = VoiceEncoder()
    checkpoint = torch.load(weights, map_location="cpu", weights_only=True)
    # strict=False as in resemblyzer: the checkpoint also holds training-only similarity weights
    missing = model.load_state_dict(checkpoint["model_state"], strict=False).missing_keys
    if missing:
        raise ValueError(f"{weights} lacks {', '.join(missing)}")
    model.device = torch.device(device)
    return model.to(model.device).eval()


def _embed_utterance(model, wav: np.ndarray) -> np.ndarray:
    """``VoiceEncoder.embed_utterance(wav)``: mean of the embeddings of 1.6 s partial utterances
    (1.3 per second, the last kept if it is 75 % covered), L2-normalised."""
    import torch
    from jarvis.speakers.features import mel_spectrogram

    wav_slices, mel_slices = _partial_slices(len(wav), PARTIAL_RATE, MIN_COVERAGE)
    max_wave_length = wav_slices[-1].stop
    if max_wave_length >= len(wav):
        wav = np.pad(wav, (0, max_wave_length - len(wav)), "constant")
    mel = mel_spectrogram(wav)
    mels = np.array([mel[s] for s in mel_slices])
    with torch.no_grad(), _intra_op_threads(torch, 1 if model.device.type == "cpu" else None):
        partial_embeds = model(torch.from_numpy(mels).to(model.device)).cpu().numpy()
    raw_embed = np.mean(partial_embeds, axis=0)
    return raw_embed / np.linalg.norm(raw_embed, 2)


@contextlib.contextmanager
def _intra_op_threads(torch, threads: int | None):
    """torch's intra-op threads set to ``threads`` (None: unchanged) for the block, then back as they were: the
    setting is torch's, and other models in this process (CSM on the CPU) keep theirs."""
    before = torch.get_num_threads()
    if threads is None or threads == before:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _partial_slices(n_samples: int, rate: float, min_coverage: float):
    """``VoiceEncoder.compute_partial_slices``: (wav slices, mel slices) of the partials."""
    from jarvis.speakers.features import HOP

    n_frames = int(np.ceil((n_samples + 1) / HOP))
    frame_step = int(np.round((SAMPLE_RATE / rate) / HOP))
    wav_slices, mel_slices = [], []
    for i in range(0, max(1, n_frames - PARTIAL_FRAMES + frame_step + 1), frame_step):
        mel_range = np.array([i, i + PARTIAL_FRAMES])
        mel_slices.append(slice(*mel_range))
        wav_slices.append(slice(*(mel_range * HOP)))
    last = wav_slices[-1]
    coverage = (n_samples - last.start) / (last.stop - last.start)
    if coverage < min_coverage and len(mel_slices) > 1:
        mel_slices, wav_slices = mel_slices[:-1], wav_slices[:-1]
    return wav_slices, mel_slices


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
