"""The model host across a restart for new audio or listening settings: it keeps every model whose own settings
did not change (real parts: the system voice, the LLM switched off), and lets go of the rest."""
from __future__ import annotations

import copy

from jarvis.config import Settings
from jarvis.events import EventBus
from jarvis.host import ModelHost
from jarvis.speak.chain import TtsChain


def test_a_restart_keeps_the_models_whose_settings_did_not_change():
    bus = EventBus()
    settings = Settings()
    settings.tts.engines = ["system"]
    settings.brain.backend = "off"
    host = ModelHost(settings, bus, progress=lambda part, state: None)
    host.tts = chain = TtsChain.from_settings(settings.tts, bus)
    chain.load()
    assert host.load_brain() == "off"

    new = copy.deepcopy(settings)
    new.audio.output_device, new.listen.stt_compute_type = "jarvis_speaker", "float32"
    assert host.release_for(new) == ["tts", "brain"]
    assert host.tts is chain and not chain.closed and host.settings == new

    both = copy.deepcopy(new)                      # a new microphone and another voice in one OK
    both.audio.input_device, both.tts.engines = "jarvis_mic", ["system", "piper"]
    assert host.release_for(both) == ["brain"]
    assert host.tts is None and chain.closed

    llm = copy.deepcopy(both)
    llm.brain.backend = "local"
    assert host.release_for(llm) == []
