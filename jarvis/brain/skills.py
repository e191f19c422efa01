"""Offline skills: time, date, who am I, system status, stop, repeat, and the honest fallback.

Each skill lists example phrases (templates); the cleaned transcript (:func:`clean`, with and without a
polite wrapper such as "can you tell me") matches a skill when it is one of them up to a misheard word:
"what is the gate today" is the date, "what's the thyme" the time (the rules, and why rapidfuzz:
:mod:`jarvis.brain.intents`). Matching stays narrow: a skill answers only the question it can answer
truthfully; anything near it goes to the fallback (the LLM). A voice Whisper does not know well often
turns "Jarvis" into a word or two before the request ("Service, what time is it?"): the request after a
short leading clause, or after one or two leading words, also counts, a little less (:func:`readings`).
Choices worth knowing:

- "what time is it" matches; "what time does the store close", "what time is it in Tokyo" and
  "what time is the meeting" do not (the local clock is not the answer to those).
- "what day is it" matches; "what day is Christmas" does not.
- A short command starting with "stop" or "cancel" (at most four words: "stop the music",
  "cancel that") is a stop; "cancel my dentist appointment on Friday" is not.
- "how's the gpu" is a status question; "what is a gpu" is not.

:func:`match_skill` gives the skill and its score (0..1) for benchmarks and logs.
"""
from __future__ import annotations

import functools
import re
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Iterable, Protocol

from jarvis.brain.intents import MATCH_FLOOR, Phrasebook
from jarvis.brain.types import REPEAT, STOP, Response, Turn

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")

_CONTRACTIONS = {
    "what's": "what is", "whats": "what is", "how's": "how is", "hows": "how is",
    "who's": "who is", "whos": "who is", "that's": "that is", "thats": "that is",
    "it's": "it is", "i'm": "i am", "im": "i am", "what're": "what are",
    "nevermind": "never mind", "todays": "today's", "recognize": "recognise",
}
# Said before or after a request without changing it ("hey jarvis, what time is it please").
_ADDRESS = r"(?:(?:hey|hi|ok|okay|yo) )?jarvis"
_LEAD = re.compile(rf"^(?:(?:{_ADDRESS}|um|uh|so|and|okay|ok|well|hey|please|sorry) )+")
_TAIL = re.compile(rf"(?: (?:{_ADDRESS}|please|thanks|thank you|for me|right now|now))+$")
# Polite wrappers: "can you tell me", "could you please", "do you know", "i want to know".
_ASK = re.compile(r"^(?:(?:can|could|would|will) you (?:please )?)?"
                  r"(?:(?:tell|give|show) me |let me know |(?:do )?you know |(?:i want|i'd like) to know |"
                  r"have you got |got )?")


# The wake word misheard: Whisper hears the command's own audio from "Jarvis" on, and a voice it does not know
# well turns "Jarvis" into a word or two before the request ("Service, what time is it?", "And now, what is
# the date today?", "No obvious system status."). Those readings of a transcript also count, a little less.
_CLAUSE_BREAK = re.compile(r"[,.;:!?\u2026]+\s+")
LEAD_CLAUSE_WEIGHT = 0.95  # the request after a leading clause of at most MAX_LEAD_WORDS words
MAX_LEAD_WORDS = 5
LEAD_WORDS_WEIGHT = 0.9    # the request after 1 or 2 leading words with nothing to mark them off, in a
MIN_WORDS_TO_DROP = 4      # transcript of at least 4 words as heard ("save the date" is not "Jarvis, the date" misheard)
# Words that start a question of their own: "what about the date" is not "the date" after a misheard "Jarvis".
_QUESTION_WORDS = frozenset({"what", "when", "where", "who", "whose", "why", "how", "which", "is", "are", "was",
                             "were", "do", "does", "did", "can", "could", "will", "would", "should", "not"})
# No example phrase is near this long, even after a leading clause, fillers and a polite wrapper: a longer
# transcript is not a skill's question and is refused before any matching, so long text costs next to nothing.
MAX_REQUEST_WORDS = 40


def too_long(text: str) -> bool:
    """More words than any request a phrase skill answers (counts at most MAX_REQUEST_WORDS + 1 words)."""
    return len(text.split(None, MAX_REQUEST_WORDS)) > MAX_REQUEST_WORDS


def clean(text: str) -> str:
    """Lowercase, punctuation stripped (apostrophes kept), contractions expanded, fillers and
    the wake word removed from both ends."""
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    text = re.sub(r"[^\w\s']", " ", text)
    words = [w.strip("'") for w in text.split()]
    text = " ".join(_CONTRACTIONS.get(w, w) for w in words if w)
    text = _TAIL.sub("", _LEAD.sub("", text))
    return text.strip()


def readings(text: str) -> dict[str, float]:
    """Cleaned readings of a raw transcript and how much each counts: the whole (1.0); the request after short
    leading clauses ("Service, what time is it?", "So, let's start this, what time is it?"); the request after
    one or two leading words that do not start with a question word ("no obvious system status", "job is what
    time is it")."""
    said = clean(text)
    out = {said: 1.0}
    for rest in after_lead_clauses(text):
        out.setdefault(rest, LEAD_CLAUSE_WEIGHT)
    words = said.split()
    for dropped in (1, 2) if len(text.split()) >= MIN_WORDS_TO_DROP else ():
        # "that is what time is it" ("Jarvis" heard as "That's"): the first word dropped must not ask a question
        if len(words) - dropped >= 2 and words[0] not in _QUESTION_WORDS:
            out.setdefault(" ".join(words[dropped:]), LEAD_WORDS_WEIGHT)
    out.pop("", None)
    return out


def after_lead_clauses(text: str) -> list[str]:
    """The cleaned request after each clause break whose lead has at most ``MAX_LEAD_WORDS`` words in all
    ("So, let's start this, what time is it?" -> "let's start this what time is it", "what time is it")."""
    parts = _CLAUSE_BREAK.split(text.strip())
    out = []
    for k in range(1, len(parts)):
        if len(clean(" ".join(parts[:k])).split()) > MAX_LEAD_WORDS:
            break
        rest = clean(" ".join(parts[k:]))
        if rest:
            out.append(rest)
    return out


def after_lead_clause(text: str) -> str:
    """The cleaned request after a short leading clause, or "" when there is none."""
    parts = _CLAUSE_BREAK.split(text.strip(), maxsplit=1)
    return clean(parts[1]) if len(parts) == 2 and len(clean(parts[0]).split()) <= MAX_LEAD_WORDS else ""


@functools.cache
def _phrasebook(examples: tuple[str, ...]) -> Phrasebook:
    return Phrasebook(examples)


@dataclass(frozen=True)
class Context:
    """What a skill may use besides the turn: the current local time, the last reply, and the turn's
    cancel event (set on barge-in or "stop"; long-running answers such as the LLM's watch it)."""
    now: datetime
    last_reply: Response | None = None
    cancel: threading.Event | None = None
    # Worked out before the turn is over (Brain.ahead): what it would change waits for Brain.adopt.
    ahead: bool = False


class Skill(Protocol):
    name: str
    # ``pure``: (optional, False when absent) its answer only reads (the clock, the machine) and changes nothing,
    # so it may be worked out before the turn is over (``Brain.ahead``).

    def match(self, turn: Turn) -> bool: ...

    def respond(self, turn: Turn, context: Context) -> Response: ...


class PhraseSkill:
    """A skill recognised by whole-utterance example phrases (templates: ``(a|b)`` one of, ``[a]`` optional),
    matched tolerantly on the cleaned text with and without a polite wrapper."""
    name = "phrase"
    examples: tuple[str, ...] = ()

    @property
    def phrasebook(self) -> Phrasebook:
        """The expanded examples (built once per list of examples)."""
        return _phrasebook(self.examples)

    def score(self, text: str) -> float:
        """How sure it is that ``text`` (a raw transcript) asks for this skill, 0..1."""
        if too_long(text):
            return 0.0
        best = 0.0
        for reading, weight in readings(text).items():
            for variant in {reading, _ASK.sub("", reading, count=1)}:
                best = max(best, weight * self.phrasebook.best(variant).score)
        return best

    def match(self, turn: Turn) -> bool:
        return self.score(turn.text) >= MATCH_FLOOR

    def reply(self, text: str) -> Response:
        return Response([text], source=self.name)


def say_time(now: datetime) -> str:
    """"2:45 PM"; "3 PM" on the hour (speech engines read "3:00" as "three zero zero")."""
    hour = now.hour % 12 or 12
    half = "AM" if now.hour < 12 else "PM"
    return f"{hour} {half}" if now.minute == 0 else f"{hour}:{now.minute:02d} {half}"


def say_date(now: datetime) -> str:
    """"Sunday, November 22" (English names whatever the process locale)."""
    return f"{_DAYS[now.weekday()]}, {_MONTHS[now.month - 1]} {now.day}"


class TimeSkill(PhraseSkill):
    name = "time"
    pure = True   # answers from what it reads, changes nothing: its reply may be worked out ahead (Brain.ahead)
    examples = (
        "what is the [current] time",
        "what time is it",
        "what time it is",
        "[the] [current] time",
    )

    def respond(self, turn: Turn, context: Context) -> Response:
        return self.reply(f"It's {say_time(context.now)}.")


class DateSkill(PhraseSkill):
    name = "date"
    pure = True
    examples = (
        "what (day|date) is (it|today|tonight) [today|tonight]",
        "(what|which) day [of the week] is it [today|tonight]",
        "what is (the date|today's date|the day|today) [today|tonight]",
        "[the|today's] date",
        "what day it is [today]",
    )

    def respond(self, turn: Turn, context: Context) -> Response:
        return self.reply(f"Today is {say_date(context.now)}.")


UNKNOWN_SPEAKER = "I don't recognise your voice. You can enroll it with: jarvis enroll YOUR_NAME"


class WhoAmISkill(PhraseSkill):
    name = "whoami"
    examples = (
        "who am i",
        "who i am",
        "who is (this|speaking|talking)",
        "tell who i am",
        "what is my name",
        "[do you] know my name",
        "[do you|can you] recognise (me|my voice)",
        "whose voice is this",
    )

    def respond(self, turn: Turn, context: Context) -> Response:
        name = turn.speaker.strip()
        if not name or name.lower() == "unknown":
            return self.reply(UNKNOWN_SPEAKER)
        return self.reply(f"You're {name}.")


GIB = 1024 ** 3


def _gigabytes(n: int) -> str:
    return f"{n / GIB:.1f}".removesuffix(".0")


def system_figures() -> dict:
    """CPU load (percent), memory used/total (bytes) and NVIDIA GPUs from jarvis.devices."""
    import psutil

    from jarvis.devices import gpu_memory

    mem = psutil.virtual_memory()
    return {"cpu_percent": psutil.cpu_percent(interval=0.2),
            "memory_used": mem.total - mem.available, "memory_total": mem.total,
            "gpus": gpu_memory()}


def say_status(figures: dict) -> str:
    """Figures as sentences a speech engine reads well ("percent", "gigabytes")."""
    parts = [f"CPU load is {round(figures['cpu_percent'])} percent.",
             f"Memory: {_gigabytes(figures['memory_used'])} of "
             f"{_gigabytes(figures['memory_total'])} gigabytes used."]
    gpus = figures.get("gpus") or []
    if not gpus:
        parts.append("No GPU.")
    for gpu in gpus:
        parts.append(f"GPU {gpu['name']}: {_gigabytes(gpu['used_bytes'])} of "
                     f"{_gigabytes(gpu['total_bytes'])} gigabytes used.")
    return " ".join(parts)


class SystemStatusSkill(PhraseSkill):
    name = "status"
    pure = True
    _thing = "[the|my|your] (system|computer|machine|gpu|graphics card|cpu|processor|memory)"
    examples = (
        "(system|gpu|cpu|memory|ram) (status|report|usage|load|check)",
        "status [report]",
        f"how is {_thing} [doing|holding up|looking]",
        f"(check|show) {_thing} [status|usage]",
        "how much (memory|ram|gpu memory|vram) (is used|is free|is left|are you using|is in use)",
        "what is [the] (system|cpu|gpu|memory) (status|load|usage)",
        "how are you running",
    )

    def __init__(self, probe: Callable[[], dict] = system_figures):
        self.probe = probe

    def respond(self, turn: Turn, context: Context) -> Response:
        return self.reply(say_status(self.probe()))


class StopSkill(PhraseSkill):
    """Cancel speech and any work in progress; says nothing.

    Besides its examples, any short command that starts with "stop" or "cancel" is a stop (at most four
    words: "stop the music"), so a sentence that merely contains "stop" is not.
    """
    name = "stop"
    examples = (
        "(stop|cancel) [it|that|this|now|talking|speaking]",
        "never mind", "be quiet", "quiet", "shut up", "hush", "silence", "enough", "that is enough",
        "forget [about] it", "that will do",
    )
    _short_command = re.compile(r"(?:stop|cancel)(?: \w+){0,3}|never mind(?: \w+)?")
    _lead = re.compile(r"^(?:(?:no|ok|okay|oh) )?(?:(?:can|could|would|will) you (?:please )?)?")

    def score(self, text: str) -> float:
        if too_long(text):
            return 0.0
        rest = after_lead_clause(text)
        if len(rest.split()) >= 2 and self._score(rest) < MATCH_FLOOR:
            # "Stop it, system status": a request follows, so the lead was "Jarvis" misheard, not a stop.
            return self._score(rest)
        return self._score(clean(text))

    def _score(self, said: str) -> float:
        said = self._lead.sub("", said, count=1)
        if self._short_command.fullmatch(said):
            return 1.0
        return self.phrasebook.best(said).score

    def respond(self, turn: Turn, context: Context) -> Response:
        return Response([], action=STOP, source=self.name)


NOTHING_TO_REPEAT = "I haven't said anything yet."


class RepeatSkill(PhraseSkill):
    """Say the last reply again (action "repeat"), or say there is none."""
    name = "repeat"
    examples = (
        "repeat [that|it|yourself|the last thing|the last answer|the last reply|what you said] [again]",
        "say (that|it) again",
        "come again", "pardon [me]", "what did you say", "what was that", "what", "huh", "once more",
        "one more time",
    )

    def respond(self, turn: Turn, context: Context) -> Response:
        last = context.last_reply
        text = last.text if last is not None else ""
        if not text:
            return self.reply(NOTHING_TO_REPEAT)
        return Response([text], action=REPEAT, source=self.name)


FALLBACK = ("I can't answer that offline yet. "
            "Try asking the time, the date, who you are, or the system status.")


def honest_fallback(turn: Turn, context: Context) -> Response:
    """The default answer when no skill matches (an LLM responder replaces it later)."""
    return Response([FALLBACK], source="fallback")


def default_skills() -> list[Skill]:
    """In priority order: stop first, so "stop" always wins."""
    return [StopSkill(), RepeatSkill(), WhoAmISkill(), TimeSkill(), DateSkill(), SystemStatusSkill()]


def match_skill(text: str, skills: Iterable[Skill] | None = None) -> tuple[Skill | None, float]:
    """The first skill (in priority order) that ``text`` asks for, and its score (0..1); as the brain
    chooses for a whole transcript. With no match: ``(None, best score seen)``, below ``MATCH_FLOOR``.
    A skill without a ``score`` method counts 1.0 when it matches, else 0."""
    best = 0.0
    for skill in default_skills() if skills is None else skills:
        scorer = getattr(skill, "score", None)
        score = scorer(text) if scorer else float(skill.match(Turn(text)))
        if score >= MATCH_FLOOR:
            return skill, score
        best = max(best, score)
    return None, best
