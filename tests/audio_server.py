"""The private PulseAudio server lives in jarvis.bench.virtual_audio (the pipeline benchmark uses it too)."""
from jarvis.bench.virtual_audio import MIC, MIC_FEED, RECORD_RATE, SPEAKER, Recording, VirtualAudio  # noqa: F401
