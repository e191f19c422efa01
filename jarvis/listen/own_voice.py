"""Jarvis hearing itself: a transcript that repeats what Jarvis said a moment ago is not a command.

The echo canceller removes Jarvis's voice from the microphone; this is the second guard, on the text. A
transcript counts as Jarvis's own words when it closely matches part of a reply spoken now or in the last
``HOLD_S`` seconds (rapidfuzz's partial ratio: the best-matching stretch of the reply).
"""
from __future__ import annotations

import re
import threading
import time

from rapidfuzz import fuzz

HOLD_S = 10.0       # a reply's words count as Jarvis's own this long after it ended
SHORT_WORDS = 4     # transcripts shorter than this must match more closely (short phrases match by chance)


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


class OwnVoice:
    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._speaking: list = []                  # responses being spoken (their text grows as generated)
        self._recent: list[tuple[str, float]] = []  # (text, when it stopped being spoken)
        self._lock = threading.Lock()

    def speaking(self, response) -> None:
        """``response`` (anything with ``text_so_far``) is being spoken from now."""
        with self._lock:
            self._speaking.append(response)

    def done(self, response) -> None:
        with self._lock:
            if response in self._speaking:
                self._speaking.remove(response)
            self._recent.append((response.text_so_far, self._clock()))

    def heard(self, transcript: str) -> bool:
        """True when ``transcript`` is (close to) words Jarvis is saying or said within ``HOLD_S``."""
        said = _words(transcript)
        if not said:
            return False
        now = self._clock()
        with self._lock:
            self._recent = [(text, t) for text, t in self._recent if now - t <= HOLD_S]
            replies = [r.text_so_far for r in self._speaking] + [text for text, _ in self._recent]
        cutoff = 90 if len(said.split()) < SHORT_WORDS else 80
        return any(fuzz.partial_ratio(said, _words(reply), score_cutoff=cutoff) for reply in replies if reply)
