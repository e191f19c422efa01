"""Offline skills: time, date, who am I, system status, stop, repeat, and the honest fallback.

Each skill lists example phrases (templates); the cleaned transcript (:func:`clean`, with and without a
polite wrapper such as "can you tell me") matches a skill when it is one of them up to a misheard word:
"what is the gate today" is the date, "what's the thyme" the time (the rules, and why rapidfuzz:
:mod:`jarvis.brain.intents`). Matching stays narrow: a skill answers only the question it can answer
truthfully; anything near it goes to the fallback (the LLM). Choices worth knowing:

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


def clean(text: str) -> str:
    """Lowercase, punctuation stripped (apostrophes kept), contractions expanded, fillers and
    the wake word removed from both ends."""
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    text = re.sub(r"[^\w\s']", " ", text)
    words = [w.strip("'") for w in text.split()]
    text = " ".join(_CONTRACTIONS.get(w, w) for w in words if w)
    text = _TAIL.sub("", _LEAD.sub("", text))
    return text.strip()


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


class Skill(Protocol):
    name: str

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
        said = clean(text)
        return max(self.phrasebook.best(variant).score for variant in {said, _ASK.sub("", said, count=1)})

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
    _thing = "[the|my|your] (system|computer|machine|gpu|graphics card|cpu|processor|memory)"
    examples = (
        "(system|gpu|cpu|memory|ram) (status|report|usage|load|check)",
        "status [report]",
        f"how is {_thing} [doing|holding up|looking]",
        f"(check|show) {_thing} [status|usage]",
        "how much (memory|ram|gpu memory|vram) (is used|is free|is left|are you using|is in use)",
        "what is the (system|cpu|gpu|memory) (status|load|usage)",
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
        said = self._lead.sub("", clean(text), count=1)
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
