"""Transcript clean-up: drop the wake word RealtimeSTT's pre-roll leaves in the text."""
from __future__ import annotations

import re

# Whisper's usual spellings of "Jarvis" at the start of an utterance, with an optional greeting.
_WAKE = r"(?:jarvis|jarvi|jervis|jarvus|jarves|javis|jarviss)"
_LEADING_WAKE = re.compile(rf"^\s*(?:(?:hey|ok|okay|hi|hello)[\s,]+)?{_WAKE}\b[\s,.!?:;…-]*", re.IGNORECASE)


def strip_wake_word(text: str) -> str:
    """Remove a leading wake word ("Jarvis, what time is it?" -> "What time is it?")."""
    cleaned = _LEADING_WAKE.sub("", text or "", count=1).strip()
    if cleaned and cleaned != (text or "").strip():
        cleaned = cleaned[0].upper() + cleaned[1:]
    return cleaned
