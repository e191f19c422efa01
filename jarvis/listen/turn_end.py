"""Is the turn over? The end-of-turn model's probability together with what Whisper heard so far.

Smart Turn hears prosody; on synthetic voices (and on people who stop without trailing off) a half sentence can
sound finished (benchmarks/smart_turn_probe.py: 21 of 60 Piper sentences cut mid-way were heard unfinished). The
words say it plainly: English commands do not end on "the", "for", "about" or "um". A turn is over when the model
says finished and the last word heard is not one a sentence cannot end on.
"""
from __future__ import annotations

import re

THRESHOLD = 0.5

# Words an English sentence does not end on: articles, prepositions, conjunctions, possessives, auxiliaries and
# hesitations ("What is the…", "Set a timer for…", "Tell me about… um").
UNFINISHED_LAST_WORDS = frozenset("""
a an the this that these those my your his her its our their some any every each no
of for to from with without about into onto over under after before between through during at in on by as than
like and or but nor so because if when while whereas although though unless until whether
is are was were be been am do does did have has had can could will would shall should may might must
what's where's who's how's it's i'm you're we're they're
i you we they he she
um uh er erm hmm ah
""".split())
_WORD = re.compile(r"[a-z']+")


def last_word(text: str) -> str:
    words = _WORD.findall(text.lower().replace("’", "'"))
    return words[-1] if words else ""


def sounds_unfinished(text: str) -> bool:
    """The transcript so far stops where no sentence ends (or trails off with "..." / "-")."""
    stripped = text.strip()
    if stripped.endswith(("...", "…", "-", "—", ",")):
        return True
    return last_word(stripped) in UNFINISHED_LAST_WORDS


def turn_over(probability: float, text: str, threshold: float = THRESHOLD) -> bool:
    """The end of the turn: the model hears a finished turn and the words heard so far can end a sentence."""
    return probability > threshold and not sounds_unfinished(text)
