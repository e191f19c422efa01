"""Who is speaking: cosine similarity of an utterance embedding against each person's centroid."""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

import numpy as np

from jarvis.errors import BadInput
from jarvis.speakers.encoder import SpeakerEncoder
from jarvis.speakers.store import SpeakerStore

UNKNOWN = "unknown"


@dataclass(frozen=True)
class Match:
    name: str           # an enrolled name, or "unknown" below the threshold / nobody enrolled
    score: float        # cosine similarity with the closest centroid (0.0 when nobody is enrolled)
    nearest: str = ""   # closest enrolled name even when ``name`` is "unknown" (for logs)
    embedding: np.ndarray | None = field(default=None, compare=False, repr=False)  # the utterance's voice print

    @property
    def known(self) -> bool:
        return self.name != UNKNOWN


class Identifier:
    """Matches audio against the store; picks up enrollments made by other processes."""

    def __init__(self, store: SpeakerStore, encoder: SpeakerEncoder, threshold: float = 0.75):
        self.store = store
        self.encoder = encoder
        self.threshold = threshold
        self._lock = threading.Lock()
        self._signature: tuple | None = None
        self._names: list[str] = []
        self._matrix = np.zeros((0, 0), dtype=np.float32)

    @property
    def threshold(self) -> float:
        return self._threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        value = float(value)
        if not math.isfinite(value) or not 0.0 <= value <= 1.0:
            raise BadInput("bad_threshold",
                           f"Speaker threshold {value} is out of range; use a cosine between 0 and 1 (default 0.75).")
        self._threshold = value

    def identify(self, samples: np.ndarray) -> Match:
        """Match float32 mono 16 kHz audio; ``BadInput("no_speech")`` if it holds no speech and someone is
        enrolled. The match carries the embedding even when nobody is (unknown voices are told apart by it)."""
        if not self._centroids()[0]:
            try:
                return self.identify_embedding(self.encoder.embed(samples))
            except BadInput:
                return Match(UNKNOWN, 0.0)
        return self.identify_embedding(self.encoder.embed(samples))

    def identify_embedding(self, emb: np.ndarray) -> Match:
        names, matrix = self._centroids()
        vec = np.asarray(emb, dtype=np.float32).reshape(-1)
        vec = vec / (np.linalg.norm(vec) or 1.0)
        if not names:
            return Match(UNKNOWN, 0.0, embedding=vec)
        scores = matrix @ vec
        best = int(np.argmax(scores))
        score = float(scores[best])
        name = names[best] if score >= self._threshold else UNKNOWN
        return Match(name, score, names[best], embedding=vec)

    def _centroids(self) -> tuple[list[str], np.ndarray]:
        """Cached centroids, re-read only when the store's files changed."""
        with self._lock:
            signature = self.store.signature()
            if signature != self._signature:
                centroids = self.store.centroids()
                self._names = list(centroids)
                self._matrix = (np.stack(list(centroids.values())) if centroids
                                else np.zeros((0, 0), dtype=np.float32))
                self._signature = signature
            return self._names, self._matrix
