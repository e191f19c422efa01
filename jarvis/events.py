"""Typed pipeline events with monotonic timestamps.

The type names are a public contract: the UI, benchmarks and outside checks consume them
(``jarvis listen --events jsonl`` prints one JSON object per event: ``type``, ``t`` and fields).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, ClassVar

log = logging.getLogger(__name__)


def now() -> float:
    return time.monotonic()


@dataclass(frozen=True)
class Event:
    type: ClassVar[str] = "event"
    t: float = field(default_factory=now, kw_only=True)

    def to_dict(self) -> dict:
        payload = {"type": self.type, "t": round(self.t, 6)}
        for f in dataclasses.fields(self):
            if f.name != "t":
                payload[f.name] = getattr(self, f.name)
        return payload

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)


@dataclass(frozen=True)
class Ready(Event):
    """Models are loaded and warm; listening for the wake word."""
    type: ClassVar[str] = "ready"


@dataclass(frozen=True)
class Wake(Event):
    type: ClassVar[str] = "wake"


@dataclass(frozen=True)
class SpeechStart(Event):
    type: ClassVar[str] = "speech_start"


@dataclass(frozen=True)
class VadSilence(Event):
    """The VAD heard the voice stop; the command ends after ``listen.post_speech_silence`` more silence
    (several per command when the speaker pauses)."""
    type: ClassVar[str] = "vad_silence"


@dataclass(frozen=True)
class SpeechEnd(Event):
    type: ClassVar[str] = "speech_end"


@dataclass(frozen=True)
class Transcript(Event):
    type: ClassVar[str] = "transcript"
    text: str


@dataclass(frozen=True)
class Speaker(Event):
    type: ClassVar[str] = "speaker"
    name: str
    score: float


@dataclass(frozen=True)
class Reply(Event):
    type: ClassVar[str] = "reply"
    text: str


@dataclass(frozen=True)
class LlmFirstToken(Event):
    """The LLM's first piece of an answer; ``seconds`` since the request was sent."""
    type: ClassVar[str] = "llm_first_token"
    backend: str
    seconds: float


@dataclass(frozen=True)
class TtsFirstChunk(Event):
    type: ClassVar[str] = "tts_first_chunk"
    engine: str


@dataclass(frozen=True)
class PlaybackStart(Event):
    type: ClassVar[str] = "playback_start"


@dataclass(frozen=True)
class PlaybackEnd(Event):
    type: ClassVar[str] = "playback_end"
    interrupted: bool = False


@dataclass(frozen=True)
class PlaybackPaused(Event):
    """A person started talking over the reply: it is paused (silent, keeping its place) until the wake word cuts
    it (``playback_end`` interrupted) or it resumes (``playback_resumed``)."""
    type: ClassVar[str] = "playback_paused"


@dataclass(frozen=True)
class PlaybackResumed(Event):
    """No wake word came after a voice over the reply: it goes on where it paused."""
    type: ClassVar[str] = "playback_resumed"


@dataclass(frozen=True)
class Degraded(Event):
    type: ClassVar[str] = "degraded"
    engine: str
    reason: str


@dataclass(frozen=True)
class Error(Event):
    type: ClassVar[str] = "error"
    code: str
    message: str


@dataclass(frozen=True)
class AudioBack(Event):
    """The microphone works again after ``audio_device_lost`` (reconnected on its own)."""
    type: ClassVar[str] = "audio_back"
    device: str


@dataclass(frozen=True)
class FollowUp(Event):
    """A reply ended: Jarvis listens for ``seconds`` for a follow-up without the wake word."""
    type: ClassVar[str] = "follow_up"
    seconds: float


@dataclass(frozen=True)
class Listening(Event):
    """Back to waiting for the wake word: ``reason`` is "wake_timeout" (a wake word with no command after it)
    or "follow_up_timeout" (no follow-up came)."""
    type: ClassVar[str] = "listening"
    reason: str


@dataclass(frozen=True)
class Ignored(Event):
    """A transcript that gets no reply: ``reason`` is "own_voice" (Jarvis heard its own reply), "hallucination"
    (Whisper's words on noise or silence, e.g. "Thank you.") or "empty"."""
    type: ClassVar[str] = "ignored"
    text: str
    reason: str


@dataclass(frozen=True)
class Echo(Event):
    """The echo canceller's state: "on", "off" (switched off in the settings), "unavailable" (the library is
    missing or failed: Jarvis listens without it) or "no_reference" (Jarvis's own playback is not reaching
    it). ``message`` is one line for the user."""
    type: ClassVar[str] = "echo"
    state: str
    message: str = ""


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (Ready, Wake, SpeechStart, VadSilence, SpeechEnd, Transcript, Speaker, Reply, LlmFirstToken, TtsFirstChunk,
                PlaybackStart, PlaybackEnd, PlaybackPaused, PlaybackResumed, Degraded, Error, AudioBack, FollowUp,
                Listening, Ignored, Echo)
}

Listener = Callable[[Event], None]


class EventBus:
    """Synchronous fan-out. Listeners run on the emitting thread and must be quick."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def emit(self, event: Event) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # a broken listener must never stop the pipeline
                log.exception("event listener failed on %s", event.type)
