"""What the models do for a request: speak with the TTS chain (its fallbacks included), transcribe with the warmed
Whisper, name the voices and models. Qt-free and HTTP-free (``jarvis.serve.app`` maps it to routes).

Voices: ``jarvis`` is the TTS chain in the user's order; each engine's name (``csm``, ``piper``, ``system``, …)
puts that engine first with the rest as its fallbacks. OpenAI's voice names (alloy, echo, …) are the chain, so a
client written for OpenAI speaks with Jarvis's voice unchanged.
"""
from __future__ import annotations

import threading
from typing import Iterator

import numpy as np

from jarvis.errors import BadInput

CHAIN_VOICE = "jarvis"
OPENAI_VOICES = frozenset("alloy ash ballad coral echo fable nova onyx sage shimmer verse marin cedar".split())
TTS_MODELS = ("jarvis-tts", "tts-1", "tts-1-hd", "gpt-4o-mini-tts")
STT_MODELS = ("jarvis-stt", "whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe")
MAX_INPUT_CHARS = 4096      # OpenAI's own limit for one speech request


class SpeechService:
    def __init__(self, tts, transcriber, stt_model: str = "", store=None):
        self.tts = tts                  # jarvis.speak.chain.TtsChain, loaded
        self.transcriber = transcriber  # anything with transcribe(float32 16 kHz) -> str, loaded
        self.stt_model = stt_model
        self.store = store              # jarvis.serve.voices.VoiceStore: uploaded prompts and mappings
        self._stt_lock = threading.Lock()

    def engines(self) -> list[str]:
        return [s["name"] for s in self.tts.status()]

    def taken_names(self) -> set[str]:
        """Voice ids a prompt or mapping may not take."""
        return {CHAIN_VOICE, *OPENAI_VOICES, *self.engines()}

    # -- names -------------------------------------------------------------------------------
    def voices(self) -> list[dict]:
        engines = [s["name"] for s in self.tts.status()]
        healthy = {s["name"]: s["healthy"] for s in self.tts.status()}
        voices = [{"id": CHAIN_VOICE, "engines": engines, "available": any(healthy.values()),
                   "description": "Jarvis's voice: the TTS chain in your settings' order, with its fallbacks"}]
        for name in engines:
            voices.append({"id": name, "engines": [name] + [e for e in engines if e != name],
                           "available": healthy[name],
                           "description": f"the {name} engine first, the others as its fallbacks"})
        if self.store is not None:
            for mapping in self.store.mappings().values():
                voices.append({"id": mapping["id"], "engines": [mapping["engine"]] + [e for e in engines
                                                                                     if e != mapping["engine"]],
                               "available": healthy.get(mapping["engine"], False), "mapping": mapping,
                               "description": "a voice mapping"})
        return voices

    def models(self) -> list[dict]:
        return ([{"id": m, "object": "model", "owned_by": "jarvis", "kind": "tts"} for m in TTS_MODELS]
                + [{"id": m, "object": "model", "owned_by": "jarvis", "kind": "stt",
                    "whisper": self.stt_model} for m in STT_MODELS])

    def first_engine(self, voice: str) -> str | None:
        """The engine a ``voice`` puts first (None: the chain as it is); BadInput for a name nobody knows."""
        name = (voice or "").strip().lower()
        if not name or name == CHAIN_VOICE or name in OPENAI_VOICES:
            return None
        engines = self.engines()
        if name in engines:
            return name
        mapping = self.mapping(name)
        if mapping is not None:
            return mapping["engine"]
        raise BadInput("unknown_voice", f"No voice named {voice[:60]!r}. Voices: {', '.join([CHAIN_VOICE] + engines)}"
                                        " and any mappings (GET /v1/audio/voices).")

    def mapping(self, voice: str) -> dict | None:
        return self.store.mappings().get((voice or "").strip().lower()) if self.store is not None else None

    # -- work --------------------------------------------------------------------------------
    def speak(self, text: str, voice: str, cancel: threading.Event) -> Iterator[tuple[str, int, np.ndarray]]:
        """``(engine, rate, float32 chunk)`` as the chain makes them; BadInput for empty or overlong text."""
        if not isinstance(text, str) or not text.strip():
            raise BadInput("empty_text", "Nothing to say: 'input' is empty.")
        if len(text) > MAX_INPUT_CHARS:
            raise BadInput("input_too_long", f"'input' has {len(text)} characters; at most {MAX_INPUT_CHARS} "
                                             "per request: split the text.")
        first = self.first_engine(voice)
        mapping = self.mapping(voice)
        if mapping is None or mapping["engine"] != "csm":
            return self.tts.speak_naming(text, cancel, first=first)
        return self._speak_cloned(text, mapping, cancel)

    def _speak_cloned(self, text: str, mapping: dict, cancel: threading.Event):
        """CSM as the mapping's speaker and cloned prompt, with the loaded model (``jarvis.speak.preview``)."""
        import copy

        from jarvis import events
        from jarvis.speak.preview import preview_chain

        draft = copy.deepcopy(self.tts.settings)
        draft.engines = ["csm"] + [e for e in draft.engines if e != "csm"]
        draft.csm.speaker_id, draft.csm.voice = mapping["csm_speaker"], mapping["prompt"]
        draft.voices = {**draft.voices, **self.store.clips()}
        chain, made = preview_chain(self.tts, draft, events.EventBus())
        try:
            yield from chain.speak_naming(text, cancel)
        finally:
            for engine in made:
                engine.close()

    def speed(self, voice: str) -> float:
        """The mapping's speed for ``voice`` (1 for anything else)."""
        mapping = self.mapping(voice)
        return float(mapping["speed"]) if mapping is not None else 1.0

    def transcribe(self, samples: np.ndarray, language: str | None = None, prompt: str | None = None) -> str:
        if language is not None and not (language.isalpha() and 2 <= len(language) <= 3):
            raise BadInput("bad_language", f"language {language!r} is not an ISO-639-1 code such as 'en'.")
        with self._stt_lock:
            return self.transcriber.transcribe(np.asarray(samples, np.float32), language=language, prompt=prompt)
