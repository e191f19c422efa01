"""Per-stage latency of a turn, from event timestamps (no Qt here, so it is easy to test).

Every event of a turn carries its ``turn`` id (jarvis.events); a turn opens with its first event (``wake``, or
``speech_start`` when no wake word opened it: a follow-up, push-to-talk). Events of an earlier turn that arrive
late (the interrupted reply's ``playback_end`` after a barge-in) and events of no turn are left out. Every
event carries ``.t`` (monotonic seconds) and ``.type``; within a turn only the first event of each type counts
(e.g. the first ``tts_first_chunk``).
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
    ("end-of-turn decision", END, "end_of_turn"),
    ("silence wait", END, "speech_end"),
    ("speech-to-text", "speech_end", "transcript"),
    ("speaker ID", "transcript", "speaker"),
    ("answer", "speaker", ANSWER),
    ("first audio", ANSWER, "tts_first_chunk"),
    (HEADLINE, END, "playback_start"),
)

TURN_EVENTS = frozenset({"wake", "speech_start", "vad_silence", "end_of_turn", "speech_end", "transcript", "speaker",
                         "reply", "llm_first_token", "tts_first_chunk", "playback_start", "playback_end"})
OPENING_EVENTS = frozenset({"wake", "speech_start"})  # a turn's first event is one of these


class _Event(Protocol):
    type: str
    t: float
    turn: int | None


def _ms(start: float | None, end: float | None) -> int | None:
    if start is None or end is None or end < start:
        return None
    return int(round((end - start) * 1000))


class TurnTracker:
    """Follows the event stream and keeps the timestamps of the latest turn (in progress or done)."""

    def __init__(self) -> None:
        self.turn: int | None = None
        self.times: dict[str, float] = {}

    @property
    def started(self) -> bool:
        return START in self.times

    def feed(self, event: _Event) -> bool:
        """Take one event; True when it opened a new turn. Events of no turn, or of another turn than the one
        followed (an earlier turn's late ones), are ignored."""
        kind, turn = event.type, getattr(event, "turn", None)
        if kind not in TURN_EVENTS or turn is None:
            return False
        new = turn != self.turn
        if new:
            if kind not in OPENING_EVENTS:
                return False
            self.turn, self.times = turn, {START: event.t}
        self.times.setdefault(kind, event.t)
        if kind in ("reply", "llm_first_token"):
            self.times.setdefault(ANSWER, event.t)
        if kind in ("vad_silence", "end_of_turn") and "speech_end" not in self.times:
            # the last pause before the command ended is its end, and the model's decision on it the one that counts
            self.times[END if kind == "vad_silence" else kind] = event.t
        elif kind == "speech_end":
            self.times.setdefault(END, event.t)
        return new

    def latencies(self) -> list[tuple[str, int | None]]:
        """``[(label, milliseconds or None), …]`` in ``STAGES`` order; None for a stage not reached yet. An answer
        worked out ahead, while the last pause was still being heard (its first token came before the transcript),
        counts as ready when the speaker was known: no wait for it."""
        times = dict(self.times)
        if ANSWER in times and "speaker" in times:
            times[ANSWER] = max(times[ANSWER], times["speaker"])
        return [(label, _ms(times.get(a), times.get(b))) for label, a, b in STAGES]


def turn_latencies(events: Iterable[_Event]) -> list[tuple[str, int | None]]:
    """Latency per stage of the last turn in ``events`` (an event stream, oldest first)."""
    tracker = TurnTracker()
    for event in events:
        tracker.feed(event)
    return tracker.latencies()
