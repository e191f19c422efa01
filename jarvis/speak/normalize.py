"""Text clean-up before synthesis, so engines read common forms the way people say them."""
from __future__ import annotations

import re

_CLOCK = re.compile(r"\b(\d{1,2}):(\d{2})\b")


def _clock(match: re.Match) -> str:
    hour, minute = match.group(1), match.group(2)
    if minute == "00":
        return hour
    if minute.startswith("0"):
        return f"{hour} oh {minute[1]}"   # "3:05" -> "3 oh 5", not "three zero five"
    return f"{hour} {minute}"


def normalize_for_speech(text: str) -> str:
    return _CLOCK.sub(_clock, text)
