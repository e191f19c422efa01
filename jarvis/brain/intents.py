"""Tolerant intent matching: a transcript matches a skill when it is one of the skill's example phrases,
up to a misheard word ("what is the gate today" -> date, "what is the thyme" -> time).

Why rapidfuzz rather than hassil: what goes wrong is Whisper hearing a word as another that sounds and is
spelt alike. hassil matches sentence templates word for word, so each mishearing would have to be listed;
rapidfuzz (MIT, C++, maintained) scores any two strings by edit distance in microseconds. The examples use
hassil's template syntax all the same: ``(a|b)`` is one of the alternatives, ``[a|b]`` is optional.

How a transcript (cleaned) scores against one phrase (:func:`similarity`, 0..1):

- it must have the same number of words: a missing or extra word is another question ("what time is it
  in tokyo" is not "what time is it", "what day is christmas" not "what day is it");
- each word is the phrase's word, or a misheard one: a word of four letters or more heard as a similar one
  (rapidfuzz ratio >= ``WORD_FLOOR``: gate/date 0.75, thyme/time 0.67, it counts that ratio), or one small
  function word heard as another ("what day on the week", "tell me my time"; it counts 0.5). Any other
  word rejects the phrase: "what is your name" is not "what is my name";
- at most one misheard word, or one in three in phrases of six words or more; one-word phrases are exact;
- the score is the mean of the word scores (1 for each word heard right).

A transcript matches a skill when its best phrase scores at least ``MATCH_FLOOR``.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from rapidfuzz import fuzz

WORD_FLOOR = 0.65     # a misheard word must be at least this similar to the phrase's word
MATCH_FLOOR = 0.75    # the mean word score a transcript needs to match a phrase
MIN_FUZZY_WORD = 4    # shorter words can only be misheard as a function word for a function word
WORDS_PER_MISHEARD = 3
FUNCTION_WORD_SCORE = 0.5
# Small words Whisper swaps for one another. Not "your", "this", "that": "what is your name", "who is that"
# are other questions than "what is my name", "who is this".
FUNCTION_WORDS = frozenset({"a", "an", "the", "my", "of", "on", "in", "to", "for", "at"})

_GROUP = re.compile(r"([(\[])([^()\[\]]*)[)\]]")


def expand(template: str) -> list[str]:
    """Every phrase a template stands for: ``"what is [the] (time|date)"`` -> 4 phrases (no nesting)."""
    parts: list[list[str]] = []
    pos = 0
    for group in _GROUP.finditer(template):
        parts.append([template[pos:group.start()]])
        choices = group.group(2).split("|")
        parts.append(choices + [""] if group.group(1) == "[" else choices)
        pos = group.end()
    parts.append([template[pos:]])
    return sorted({" ".join("".join(p).split()) for p in itertools.product(*parts)} - {""})


def word_similarity(heard: str, said: str) -> float:
    """1 for the same word; the rapidfuzz ratio for a similar word of 4+ letters; 0.5 for one function word
    heard as another; else 0."""
    if heard == said:
        return 1.0
    if heard in FUNCTION_WORDS and said in FUNCTION_WORDS:
        return FUNCTION_WORD_SCORE
    if min(len(heard), len(said)) < MIN_FUZZY_WORD:
        return 0.0
    ratio = fuzz.ratio(heard, said) / 100
    return ratio if ratio >= WORD_FLOOR else 0.0


def similarity(text: str, phrase: str) -> float:
    """How well a cleaned transcript matches one phrase, 0..1 (rules in the module docstring)."""
    if text == phrase:
        return 1.0
    heard, said = text.split(), phrase.split()
    if len(heard) != len(said) or len(said) < 2:
        return 0.0
    scores = [word_similarity(h, s) for h, s in zip(heard, said)]
    misheard = sum(score < 1.0 for score in scores)
    if 0.0 in scores or misheard > max(1, len(said) // WORDS_PER_MISHEARD):
        return 0.0
    return sum(scores) / len(scores)


@dataclass(frozen=True)
class PhraseMatch:
    phrase: str    # the example phrase that matched best ("" when none came close)
    score: float   # 0..1; a match when >= MATCH_FLOOR

    @property
    def matched(self) -> bool:
        return self.score >= MATCH_FLOOR


class Phrasebook:
    """One skill's example phrases, expanded from templates and grouped by word count."""

    def __init__(self, templates: tuple[str, ...] | list[str]):
        self.phrases = sorted({p for t in templates for p in expand(t)})
        self._known = frozenset(self.phrases)
        self._by_length: dict[int, list[str]] = {}
        for phrase in self.phrases:
            self._by_length.setdefault(len(phrase.split()), []).append(phrase)

    def __contains__(self, text: str) -> bool:
        """``text`` (already cleaned) is one of the phrases, word for word."""
        return text in self._known

    def best(self, text: str) -> PhraseMatch:
        """The phrase closest to ``text`` (already cleaned) and its score."""
        best = PhraseMatch("", 0.0)
        for phrase in self._by_length.get(len(text.split()), ()):
            score = similarity(text, phrase)
            if score > best.score:
                best = PhraseMatch(phrase, score)
                if score == 1.0:
                    break
        return best
