"""Settings → Voices "Preview": a sample sentence in voice settings not applied yet, through the model host.

The preview borrows the host's loaded engines wherever the draft builds the same engine (``registry.engine_key``);
CSM speaks the draft's speaker and cloned voice with the model already loaded (``CsmEngine.in_voice``). Only
engines the draft changes (a Piper voice, the system voice's rate, a cloud voice) are made, for the preview alone.
A draft that names another CSM model or device does not load a second CSM next to the one in use: that voice is
heard once the settings are applied.
"""
from __future__ import annotations

import copy
import threading

from jarvis import events
from jarvis.config import Settings, TtsSettings
from jarvis.errors import NotAvailable
from jarvis.speak import registry
from jarvis.speak.base import TtsEngine
from jarvis.speak.chain import TtsChain

# No wake word in it: played through the voice loop, Jarvis must not wake on its own preview.
SAMPLE = "Hello. This is how I will sound when I answer you."
OTHER_CSM = "another CSM model or device is heard once the settings are applied (one CSM on the GPU at a time)"


class _Unavailable(TtsEngine):
    """An engine the preview must not load (a second CSM)."""

    def __init__(self, name: str, reason: str):
        self.name, self.reason = name, reason

    def load(self) -> None:
        raise NotAvailable("preview_unavailable", self.reason)

    def synthesize(self, text: str, cancel: threading.Event | None = None):
        raise NotAvailable("preview_unavailable", self.reason)


def preview_chain(loaded: TtsChain | None, draft: TtsSettings, bus: events.EventBus
                  ) -> tuple[TtsChain, list[TtsEngine]]:
    """``(chain for the draft, the engines made for it)``. Close only the engines made, never the chain: the
    others are the host's."""
    engines: list[TtsEngine] = []
    made: list[TtsEngine] = []
    borrowed: list[tuple[TtsEngine, bool, str]] = []
    for name in draft.engines:
        state = loaded.engine_state(name) if loaded is not None and loaded.settings is not None else None
        same = state is not None and registry.engine_key(name, loaded.settings) == registry.engine_key(name, draft)
        if same:
            engine, healthy, reason = state
            if name == "csm" and healthy:
                engine = engine.in_voice(draft.csm.speaker_id, draft.csm.voice, draft.voices)
            engines.append(engine)
            borrowed.append((engine, healthy, reason))
        elif name == "csm" and state is not None and state[1]:
            engines.append(_Unavailable(name, OTHER_CSM))
        else:
            engine = registry.create(name, draft)
            engines.append(engine)
            made.append(engine)
    chain = TtsChain(engines, bus)
    chain.settings = copy.deepcopy(draft)
    for engine, healthy, reason in borrowed:
        chain.adopt_state(engine, healthy, reason)
    return chain, made


def speak_sample(host, settings: Settings, player=None, text: str = SAMPLE) -> str:
    """Speak ``text`` in the draft ``settings``' voices through ``host`` (a ``ModelHost``); returns one line saying
    which engine spoke and why any engine before it is down. ``player``: the voice loop's, when it plays to the
    draft's output device (its echo canceller then hears the preview as Jarvis's own voice); else one of its own."""
    from jarvis.audio.devices import resolve_output
    from jarvis.audio.player import Player

    spoke: list[str] = []
    bus = events.EventBus()   # the preview's own: its first chunk is not a turn's
    bus.subscribe(lambda e: spoke.append(e.engine) if e.type == events.EventType.TTS_FIRST_CHUNK else None)
    own = player is None
    if own:
        resolve_output(settings.audio.output_device)
    with host.voice_preview(settings.tts, bus) as chain:
        chain.load()
        if own:
            player = Player(settings.audio.output_device)
        try:
            player.play_stream(chain.speak(text, None))
            status = chain.status()
        finally:
            if own:
                player.close()
    if not spoke:
        reasons = "; ".join(f"{s['name']}: {s['reason']}" for s in status if not s["healthy"]) or "no engine"
        raise NotAvailable("tts_failed", f"No engine could speak ({reasons}).")
    before = []
    for s in status:
        if s["name"] == spoke[0]:
            break
        if not s["healthy"]:
            before.append(f"{s['name']} is down: {s['reason']}")
    return f"Spoken by {spoke[0]}." + (f" ({'; '.join(before)})" if before else "")
