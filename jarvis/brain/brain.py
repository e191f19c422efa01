"""The brain: turns a transcript (and who said it) into a Response.

Skills are tried in order; the first that matches answers. Otherwise the ``fallback``
responder answers: ``jarvis.brain.llm.LlmResponder`` (an LLM with per-speaker memory) or, with the
LLM off, the honest "can't answer that offline" reply. A responder is any callable
``(turn, context) -> Response``; the LLM's ``text_chunks`` is a generator of sentences, so the
pipeline speaks the first sentence while the rest is generated.
"""
from __future__ import annotations

import dataclasses
import re
import threading
from datetime import datetime
from typing import Callable, Iterable

from jarvis.brain.skills import MAX_REQUEST_WORDS, Context, Skill, default_skills, honest_fallback
from jarvis.brain.types import SPEAK, Response, Turn

Responder = Callable[[Turn, Context], Response]

DIDNT_CATCH = "Sorry, I didn't catch that."


class Brain:
    """Answers turns with offline skills, then the fallback; remembers the last reply.

    ``clock`` returns the current local time (injectable for tests). Not thread-safe: the
    pipeline handles one turn at a time.
    """

    def __init__(self, skills: Iterable[Skill] | None = None,
                 clock: Callable[[], datetime] | None = None,
                 fallback: Responder = honest_fallback):
        self.skills: list[Skill] = list(default_skills() if skills is None else skills)
        self.clock = clock or datetime.now
        self.fallback = fallback
        self.last_reply: Response | None = None

    def respond(self, turn: Turn, cancel: threading.Event | None = None) -> Response:
        """The answer to ``turn``; setting ``cancel`` stops an answer that is still being generated."""
        if not turn.text.strip():
            return Response([DIDNT_CATCH])
        context = Context(now=self.clock(), last_reply=self.last_reply, cancel=cancel)
        skill, turn = self._match(turn)
        response = skill.respond(turn, context) if skill else self.fallback(turn, context)
        self.adopt(response)
        return response

    def ahead(self, turn: Turn, cancel: threading.Event | None = None, fallback: bool = True) -> Response | None:
        """The answer ``respond`` would give, worked out before the turn is over, when that changes nothing: a
        skill that only reads (the time, the date, the system's status: ``Skill.pure``), or the fallback when it
        answers ahead (the LLM: it remembers the exchange only once ``adopt`` makes it the turn's answer); else
        None (actions, the speaker's name, the last reply are the turn's). ``cancel`` stops a generation;
        ``fallback=False``: a skill's answer only."""
        if not turn.text.strip():
            return None
        context = Context(now=self.clock(), last_reply=self.last_reply, cancel=cancel, ahead=True)
        skill, turn = self._match(turn)
        if skill is None:
            ready = fallback and getattr(self.fallback, "answers_ahead", False)
            return self.fallback(turn, context) if ready else None
        return skill.respond(turn, context) if getattr(skill, "pure", False) else None

    def knows(self, text: str) -> bool:
        """``text`` (a transcript, wake word and leading clauses allowed) is word for word one of the skills'
        phrases: a whole request, whatever a rule of thumb says of its last words ("who am I", "what was that")."""
        from jarvis.brain.skills import readings

        books = [skill.phrasebook for skill in self.skills if getattr(skill, "examples", ())]
        return any(reading in book for reading in readings(text) for book in books)

    def adopt(self, response: Response) -> None:
        """``response`` is the turn's answer (``respond``'s, or one worked out ahead)."""
        if response.on_adopt is not None:
            response.on_adopt()
        # Only answers are remembered, so "repeat" after "stop", "repeat" or "didn't catch that"
        # still repeats the last answer.
        if response.action == SPEAK and response.source not in ("brain", "repeat"):
            self.last_reply = response

    def _match(self, turn: Turn) -> tuple[Skill | None, Turn]:
        """First skill that matches the whole text, else one that matches a later sentence.

        Whisper sometimes mishears the wake word left at the start of the utterance as words of its
        own ("You're a bitch. What time is it?"); the command is then the last sentence. Only endings short
        enough to be a request are tried, so a long text costs a few matches, not one per sentence.
        """
        sentences = [s for s in _SENTENCE_END.split(turn.text.strip()) if s.strip()]
        first, words = len(sentences), 0
        while first > 1 and words + len(sentences[first - 1].split()) <= MAX_REQUEST_WORDS:
            first -= 1
            words += len(sentences[first].split())
        for start in [0, *range(max(first, 1), len(sentences))]:
            candidate = turn if start == 0 else dataclasses.replace(turn, text=" ".join(sentences[start:]))
            skill = next((s for s in self.skills if s.match(candidate)), None)
            if skill is not None:
                return skill, candidate
        return None, turn


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")

