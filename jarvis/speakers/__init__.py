"""Speaker identification: enrolled voice signatures (embeddings only) and matching.

Importing this package is cheap: resemblyzer loads in ``SpeakerEncoder.load()``.
"""
from jarvis.speakers.encoder import SpeakerEncoder
from jarvis.speakers.enroll import enroll_from_mic, enroll_from_wavs
from jarvis.speakers.identify import UNKNOWN, Identifier, Match
from jarvis.speakers.store import SpeakerStore, validate_name

__all__ = ["SpeakerEncoder", "SpeakerStore", "Identifier", "Match", "UNKNOWN",
           "enroll_from_wavs", "enroll_from_mic", "validate_name"]
