"""Speak a sample sentence with a TTS chain built from (edited) settings; runs on a pool thread."""
from __future__ import annotations

from jarvis import events
from jarvis.config import Settings
from jarvis.errors import NotAvailable

SAMPLE = "Hello, I'm Jarvis. This is how I sound."


def speak_sample(settings: Settings, text: str = SAMPLE) -> str:
    """Play ``text``; returns one line saying which engine spoke and why any engine before it is down."""
    from jarvis.audio.devices import resolve_output
    from jarvis.audio.player import Player
    from jarvis.speak.chain import TtsChain

    spoke: list[str] = []
    bus = events.EventBus()
    bus.subscribe(lambda e: spoke.append(e.engine) if e.type == "tts_first_chunk" else None)
    resolve_output(settings.audio.output_device)
    chain = TtsChain.from_settings(settings.tts, bus)
    player = None
    try:
        chain.load()
        player = Player(settings.audio.output_device)
        player.play_stream(chain.speak(text, None))
        status = chain.status()
    finally:
        chain.close()
        if player is not None:
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
