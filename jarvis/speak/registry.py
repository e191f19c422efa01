"""Name → TTS engine factory. Adding an engine is one module plus one line in ``ENGINES``.

Factories import their module only when called, so listing engines costs nothing and a missing
optional dependency only affects the engine that needs it.
"""
from __future__ import annotations

import importlib
from typing import Callable

from jarvis.config import TtsSettings
from jarvis.errors import BadInput
from jarvis.speak.base import TtsEngine


def _cls(module: str, name: str) -> type[TtsEngine]:
    return getattr(importlib.import_module(f"jarvis.speak.{module}"), name)


ENGINES: dict[str, Callable[[TtsSettings], TtsEngine]] = {
    "csm": lambda s: _cls("csm.engine", "CsmEngine")(s.csm, s.voices),
    "piper": lambda s: _cls("piper_engine", "PiperEngine")(s.piper_voice),
    "system": lambda s: _cls("system_engine", "SystemEngine")(s.system_voice, s.system_rate),
    "openai": lambda s: _cls("openai_engine", "OpenAiEngine")(s.cloud.openai_model, s.cloud.openai_voice,
                                                               s.cloud.openai_base_url),
    "edge": lambda s: _cls("edge_engine", "EdgeEngine")(s.cloud.edge_voice),
}


def engine_key(name: str, s: TtsSettings) -> tuple:
    """What the engine ``name`` is built from, less what a loaded engine switches per sentence (CSM's speaker and
    cloned voice, ``CsmEngine.in_voice``): settings with equal keys can share one loaded engine."""
    c, cloud = s.csm, s.cloud
    return {
        "csm": (c.model, c.device, c.dtype, c.fast_path, c.max_seconds, c.temperature, c.top_k),
        "piper": (s.piper_voice,),
        "system": (s.system_voice, s.system_rate),
        "openai": (cloud.openai_model, cloud.openai_voice, cloud.openai_base_url),
        "edge": (cloud.edge_voice,),
    }.get(name.strip().lower(), (name,))


def names() -> list[str]:
    return list(ENGINES)


def create(name: str, settings: TtsSettings | None = None) -> TtsEngine:
    """Build (not load) the engine called ``name``; unknown names raise ``BadInput``."""
    factory = ENGINES.get(name.strip().lower() if isinstance(name, str) else name)
    if factory is None:
        raise BadInput("unknown_engine", f"Unknown TTS engine '{name}'. Available: {', '.join(ENGINES)}.")
    return factory(settings or TtsSettings())
