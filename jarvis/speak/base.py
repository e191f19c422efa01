"""The TTS engine interface.

An engine turns one piece of text into float32 mono audio chunks at ``sample_rate``, streaming:
the first chunk should come out as soon as the engine has it. Engines raise ``NotAvailable`` from
``load()`` when they cannot run here (missing model, missing library), and any exception from
``synthesize`` counts as a failure of that engine for the fallback chain.
"""
from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import Iterator

import numpy as np


class TtsEngine(ABC):
    name: str = "engine"
    sample_rate: int = 22050
    placement: str = ""     # where it runs once loaded ("cpu (onnxruntime)", "cuda:0 (bfloat16, …)"), for the status window
    # ``synthesize`` may run on another thread while the engine speaks (the chain then prepares a reply's first
    # sentence ahead of its turn: ``TtsChain.prepare``).
    concurrent: bool = False

    def load(self) -> None:
        """Load models once. Raise ``jarvis.errors.NotAvailable`` with a one-line reason."""

    def warmup(self) -> None:
        """Run one tiny synthesis so the first real request is as fast as the tenth."""
        for _ in self.synthesize("Ready."):
            pass

    @abstractmethod
    def synthesize(self, text: str, cancel: threading.Event | None = None) -> Iterator[np.ndarray]:
        """Yield float32 mono chunks for ``text``; stop early when ``cancel`` is set."""

    def close(self) -> None:
        """Free models and handles."""
