"""Per-stage latency of a turn, from event timestamps (no Qt here, so it is easy to test).

A turn starts at ``wake``, or at ``speech_start`` when no wake word opened it (push-to-talk, or a
command after the previous turn ended). Every event carries ``.t`` (monotonic seconds) and ``.type``;
within a turn only the first event of each type counts (e.g. the first ``tts_first_chunk``).
"""
from __future__ import annotations

from typing import Iterable, Protocol

START = "start"  # the turn's opening event: wake, or speech_start without one
ANSWER = "answer"  # the answer's start: a skill's reply, or the LLM's first token (its reply comes at the end)
END = "end"        # the end of speech: the VAD heard the voice stop (the last vad_silence), else speech_end

HEADLINE = "end of speech → voice"

# (label, from, to), in the order the window shows them; the headline figure comes last.
STAGES: tuple[tuple[str, str, str], ...] = (
    ("listening", START, END),
    ("silence wait", END, "speech_end"),
    ("speech-to-text", "speech_end", "transcript"),
    ("speaker ID", "transcript", "speaker"),
    ("answer", "speaker", ANSWER),
    ("first audio", ANSWER, "tts_first_chunk"),
    (HEADLINE, END, "playback_start"),
)

TURN_EVENTS = frozenset({"wake", "speech_start", "vad_silence", "speech_end", "transcript", "speaker", "reply",
                         "llm_first_token", "tts_first_chunk", "playback_start", "playback_end"})


class _Event(Protocol):
    type: str
    t: float


def _ms(start: float | None, end: float | None) -> int | None:
    if start is None or end is None or end < start:
        return None
    return int(round((end - start) * 1000))


class TurnTracker:
    """Follows the event stream and keeps the timestamps of the latest turn (in progress or done)."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    @property
    def started(self) -> bool:
        return START in self.times

    def starts_turn(self, event: _Event) -> bool:
        """Would this event open a new turn?"""
        if event.type == "wake":
            return True
        if event.type == "speech_start":
            # after a wake word it belongs to that turn; otherwise (push-to-talk, or the previous
            # turn is already past the end of speech) it opens a new one
            return not self.started or "speech_end" in self.times
        return False

    def feed(self, event: _Event) -> bool:
        """Take one event; True when it opened a new turn. Events that are not part of a turn are ignored."""
        kind = event.type
        if kind not in TURN_EVENTS:
            return False
        new = self.starts_turn(event)
        if new:
            self.times = {START: event.t}
        self.times.setdefault(kind, event.t)
        if kind in ("reply", "llm_first_token"):
            self.times.setdefault(ANSWER, event.t)
        if kind == "vad_silence" and "speech_end" not in self.times:
            self.times[END] = event.t  # the last pause before the command ended is its end
        elif kind == "speech_end":
            self.times.setdefault(END, event.t)
        return new

    def latencies(self) -> list[tuple[str, int | None]]:
        """``[(label, milliseconds or None), …]`` in ``STAGES`` order; None for a stage not reached yet."""
        return [(label, _ms(self.times.get(a), self.times.get(b))) for label, a, b in STAGES]


def turn_latencies(events: Iterable[_Event]) -> list[tuple[str, int | None]]:
    """Latency per stage of the last turn in ``events`` (an event stream, oldest first)."""
    tracker = TurnTracker()
    for event in events:
        tracker.feed(event)
    return tracker.latencies()
