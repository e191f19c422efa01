"""Speaker ID work for the windows, run on pool threads: enroll recorded takes, identify a take.

The encoder is the model host's (``Controller.speaker_encoder``): the windows never build a model of their own.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from jarvis.speakers.encoder import SpeakerEncoder
from jarvis.speakers.enroll import enroll_from_mic
from jarvis.speakers.identify import Identifier, Match
from jarvis.speakers.store import SpeakerStore

def enroll(encoder: SpeakerEncoder, name: str, takes: Sequence[np.ndarray], phrases: Sequence[str],
           seconds: float) -> int:
    """Store the takes (one per phrase) through the core enrollment; nothing is stored if one is bad."""
    recorded = iter(takes)
    return enroll_from_mic(name, SpeakerStore(), encoder, phrases=phrases, seconds=seconds,
                           on_prompt=lambda line: None, recorder=lambda s, device, on_open: next(recorded))


def identify(encoder: SpeakerEncoder, samples: np.ndarray, threshold: float) -> Match:
    return Identifier(SpeakerStore(), encoder, threshold).identify(samples)


def people() -> list[tuple[str, int]]:
    """(name, number of samples) for every enrolled person."""
    store = SpeakerStore()
    return [(name, store.embedding_count(name)) for name in store.names()]
