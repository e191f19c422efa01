"""Typed pipeline events with monotonic timestamps.

The type names are a public contract: the UI, benchmarks and outside checks consume them
(``jarvis listen --events jsonl`` prints one JSON object per event: ``type``, ``t``, ``turn`` and fields).

A turn is one exchange: it opens at the wake word (or at speech that needed none: a follow-up, push-to-talk) and
ends with its reply. Every event of it carries the same ``turn`` id, given by ``EventBus.new_turn()``; events that
belong to no turn (``ready``, echo state, a lost microphone) have none. Code working for a turn runs inside
``in_turn(id)``, and the events it emits, however deep, are stamped with it; a thread started for the turn takes
it along with ``in_turn_thread``.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import enum
import itertools
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Iterator

log = logging.getLogger(__name__)


class EventType(enum.StrEnum):
    """Every event type; the values are the JSON names."""
    READY = "ready"
    WAKE = "wake"
    SPEECH_START = "speech_start"
    VAD_SILENCE = "vad_silence"
    END_OF_TURN = "end_of_turn"
    SPEECH_END = "speech_end"
    TRANSCRIPT = "transcript"
    SPEAKER = "speaker"
    REPLY = "reply"
    LLM_FIRST_TOKEN = "llm_first_token"
    TTS_FIRST_CHUNK = "tts_first_chunk"
    PLAYBACK_START = "playback_start"
    PLAYBACK_END = "playback_end"
    PLAYBACK_PAUSED = "playback_paused"
    PLAYBACK_RESUMED = "playback_resumed"
    DEGRADED = "degraded"
    RECOVERED = "recovered"
    ERROR = "error"
    AUDIO_BACK = "audio_back"
    FOLLOW_UP = "follow_up"
    LISTENING = "listening"
    IGNORED = "ignored"
    ECHO = "echo"


def now() -> float:
    return time.monotonic()


@dataclass(frozen=True)
class Event:
    type: ClassVar[EventType]
    t: float = field(default_factory=now, kw_only=True)
    turn: int | None = field(default=None, kw_only=True)  # the turn it belongs to (None: to no turn)

    def to_dict(self) -> dict:
        payload = {"type": self.type.value, "t": round(self.t, 6)}
        if self.turn is not None:
            payload["turn"] = self.turn
        for f in dataclasses.fields(self):
            if f.name not in ("t", "turn"):
                payload[f.name] = getattr(self, f.name)
        return payload

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)


@dataclass(frozen=True)
class Ready(Event):
    """Models are loaded and warm; listening for the wake word."""
    type: ClassVar[EventType] = EventType.READY


@dataclass(frozen=True)
class Wake(Event):
    type: ClassVar[EventType] = EventType.WAKE


@dataclass(frozen=True)
class SpeechStart(Event):
    type: ClassVar[EventType] = EventType.SPEECH_START


@dataclass(frozen=True)
class VadSilence(Event):
    """The VAD heard the voice stop; the command ends after ``listen.post_speech_silence`` more silence
    (several per command when the speaker pauses)."""
    type: ClassVar[EventType] = EventType.VAD_SILENCE


@dataclass(frozen=True)
class EndOfTurn(Event):
    """The end-of-turn model heard a pause (listen.end_of_turn "model"): ``finished`` ends the command after
    listen.end_of_turn_silence, unfinished waits up to listen.unfinished_silence. ``after_ms``: how long into the
    pause the decision came. ``heard``: Whisper's words for the pause, which the model's verdict needed
    (jarvis.listen.turn_end; "" when the model decided alone); ``probability`` is None when those words could not end
    a request and the model was not asked. ``wait_s``: the silence the command now ends after (counted from the
    pause's start; a command Jarvis knows that the model doubted ends after listen.post_speech_silence)."""
    type: ClassVar[EventType] = EventType.END_OF_TURN
    finished: bool
    probability: float | None
    after_ms: float
    heard: str = ""
    wait_s: float | None = None


@dataclass(frozen=True)
class SpeechEnd(Event):
    type: ClassVar[EventType] = EventType.SPEECH_END


@dataclass(frozen=True)
class Transcript(Event):
    type: ClassVar[EventType] = EventType.TRANSCRIPT
    text: str


@dataclass(frozen=True)
class Speaker(Event):
    type: ClassVar[EventType] = EventType.SPEAKER
    name: str
    score: float


@dataclass(frozen=True)
class Reply(Event):
    type: ClassVar[EventType] = EventType.REPLY
    text: str


@dataclass(frozen=True)
class LlmFirstToken(Event):
    """The LLM's first piece of an answer; ``seconds`` since the request was sent."""
    type: ClassVar[EventType] = EventType.LLM_FIRST_TOKEN
    backend: str
    seconds: float


@dataclass(frozen=True)
class TtsFirstChunk(Event):
    type: ClassVar[EventType] = EventType.TTS_FIRST_CHUNK
    engine: str
    prepared: bool = False  # synthesized while the command's last pause was still being heard (TtsChain.prepare)


@dataclass(frozen=True)
class PlaybackStart(Event):
    type: ClassVar[EventType] = EventType.PLAYBACK_START


@dataclass(frozen=True)
class PlaybackEnd(Event):
    type: ClassVar[EventType] = EventType.PLAYBACK_END
    interrupted: bool = False


@dataclass(frozen=True)
class PlaybackPaused(Event):
    """A person started talking over the reply: it is paused (silent, keeping its place) until the wake word cuts
    it (``playback_end`` interrupted) or it resumes (``playback_resumed``)."""
    type: ClassVar[EventType] = EventType.PLAYBACK_PAUSED


@dataclass(frozen=True)
class PlaybackResumed(Event):
    """No wake word came after a voice over the reply: it goes on where it paused."""
    type: ClassVar[EventType] = EventType.PLAYBACK_RESUMED


@dataclass(frozen=True)
class Degraded(Event):
    type: ClassVar[EventType] = EventType.DEGRADED
    engine: str
    reason: str


@dataclass(frozen=True)
class Recovered(Event):
    """What a ``degraded`` event said is over (GPU memory back under the limit, the speech server serving)."""
    type: ClassVar[EventType] = EventType.RECOVERED
    engine: str
    message: str = ""


@dataclass(frozen=True)
class Error(Event):
    type: ClassVar[EventType] = EventType.ERROR
    code: str
    message: str


@dataclass(frozen=True)
class AudioBack(Event):
    """The microphone works again after ``audio_device_lost`` (reconnected on its own)."""
    type: ClassVar[EventType] = EventType.AUDIO_BACK
    device: str


@dataclass(frozen=True)
class FollowUp(Event):
    """A reply ended: Jarvis listens for ``seconds`` for a follow-up without the wake word."""
    type: ClassVar[EventType] = EventType.FOLLOW_UP
    seconds: float


@dataclass(frozen=True)
class Listening(Event):
    """Back to waiting for the wake word: ``reason`` is "wake_timeout" (a wake word with no command after it)
    or "follow_up_timeout" (no follow-up came)."""
    type: ClassVar[EventType] = EventType.LISTENING
    reason: str


@dataclass(frozen=True)
class Ignored(Event):
    """A transcript that gets no reply: ``reason`` is "own_voice" (Jarvis heard its own reply), "hallucination"
    (Whisper's words on noise or silence, e.g. "Thank you.") or "empty"."""
    type: ClassVar[EventType] = EventType.IGNORED
    text: str
    reason: str


@dataclass(frozen=True)
class Echo(Event):
    """The echo canceller's state: "on", "off" (switched off in the settings), "unavailable" (the library is
    missing or failed: Jarvis listens without it) or "no_reference" (Jarvis's own playback is not reaching
    it). ``message`` is one line for the user."""
    type: ClassVar[EventType] = EventType.ECHO
    state: str
    message: str = ""


EVENT_TYPES: dict[EventType, type[Event]] = {
    cls.type: cls
    for cls in (Ready, Wake, SpeechStart, VadSilence, EndOfTurn, SpeechEnd, Transcript, Speaker, Reply, LlmFirstToken, TtsFirstChunk,
                PlaybackStart, PlaybackEnd, PlaybackPaused, PlaybackResumed, Degraded, Recovered, Error, AudioBack,
                FollowUp,
                Listening, Ignored, Echo)
}

Listener = Callable[[Event], None]

_current_turn: contextvars.ContextVar[int | None] = contextvars.ContextVar("jarvis_turn", default=None)


@contextlib.contextmanager
def in_turn(turn: int | None) -> Iterator[None]:
    """Events emitted inside (on this thread, or a thread started with ``in_turn_thread``) belong to ``turn``."""
    token = _current_turn.set(turn)
    try:
        yield
    finally:
        _current_turn.reset(token)


def current_turn() -> int | None:
    return _current_turn.get()


def in_turn_thread(target: Callable, *args, **kwargs) -> Callable[[], None]:
    """``target(*args, **kwargs)`` as a thread's target that keeps the turn of the thread that made it."""
    context = contextvars.copy_context()
    return lambda: context.run(target, *args, **kwargs)


class EventBus:
    """Synchronous fan-out. Listeners run on the emitting thread and must be quick."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._turns = itertools.count(1)

    def new_turn(self) -> int:
        """A fresh turn id (1, 2, …)."""
        with self._lock:
            return next(self._turns)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def emit(self, event: Event) -> None:
        """Hand ``event`` to every listener; stamped with the current turn (``in_turn``) when it names none."""
        if event.turn is None and (turn := _current_turn.get()) is not None:
            event = dataclasses.replace(event, turn=turn)
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # a broken listener must never stop the pipeline
                log.exception("event listener failed on %s", event.type)
