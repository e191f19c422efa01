"""Conversations for voices nobody enrolled: each unknown voice gets a memory key of its own.

Without this every unrecognised person shared one conversation called "unknown". Here an unknown turn's voice
print is compared with the unknown voices heard recently (cosine, the same threshold as identification): the
same voice continues its conversation, another voice starts a fresh one. Voice prints stay in memory only.
"""
from __future__ import annotations

import itertools
import threading
import time

import numpy as np

KEEP = 8  # unknown voices remembered at once (the least recently heard is dropped)


class UnknownVoices:
    def __init__(self, threshold: float = 0.75, idle_s: float = 300.0, clock=time.monotonic):
        self.threshold = threshold
        self.idle_s = idle_s
        self._clock = clock
        self._voices: list[tuple[np.ndarray, str, float]] = []  # (unit voice print, key, last heard)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def key_for(self, embedding: np.ndarray | None) -> str:
        """The conversation key for this unknown voice ("unknown-N"); a new key when it matches no recent voice
        (always, without a voice print: too little speech to tell who it was)."""
        now = self._clock()
        with self._lock:
            self._voices = [v for v in self._voices if now - v[2] <= self.idle_s]
            if embedding is not None:
                vec = np.asarray(embedding, np.float32).reshape(-1)
                vec = vec / (np.linalg.norm(vec) or 1.0)
                scores = [float(v[0] @ vec) for v in self._voices]
                best = int(np.argmax(scores)) if scores else -1
                if best >= 0 and scores[best] >= self.threshold:
                    _, key, _ = self._voices.pop(best)
                    self._voices.append((vec, key, now))
                    return key
            key = f"unknown-{next(self._ids)}"
            if embedding is not None:
                self._voices.append((vec, key, now))
                del self._voices[:-KEEP]
            return key
