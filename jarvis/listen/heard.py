"""Which of Whisper's words the audio itself holds, and which only its prompt suggested.

The voice loop primes Whisper with the skills' commands (``jarvis.listen.vocabulary``). On a command that stops at
a pause mid-sentence ("Jarvis, what time…") Whisper then often finishes it from the prompt ("Jarvis, what time is
it?": 11 of 16 Piper commands cut at a word break), and the end-of-turn words check (``jarvis.listen.turn_end``)
took the half command for a whole one and ended the turn in the pause. Scored again against the audio alone
(CTranslate2's ``align``: the same tokens after the start of transcript, without the prompt, as faster-whisper scores
its word timestamps), such words are unlikely (0.00-0.45), words that were said are not (0.8 and more; the wake word
itself is often low). ``heard`` keeps the words before the first one the audio does not hold: what the words check
judges at a pause. Not the last unlikely words alone: Whisper may loop on the half command ("what time is it, what
time is it, …") and the repeats score high again. One word under the threshold with the two words after it held is
kept: scored without the prompt a word said before a long pause may score low ("what day… is it?": "day" 0.28 after a
0.6 s pause, "is" 0.6, "it" 0.89), and cutting there judged "Jarvis, what" and kept the whole command waiting the
unfinished cap (5 of 80 commands in a 100-turn bench). Words Whisper's prompt made up come at the end, all of them
unlikely. A word said but misheard still cuts the words short when the next two are not both held; the check then
judges a half sentence, which keeps the command open longer, not shorter.
"""
from __future__ import annotations

from typing import Sequence

MIN_PROBABILITY = 0.5


def _scored(piece: str) -> bool:
    """A token with letters or digits (punctuation is not scored: Whisper adds it from the prompt's style)."""
    return any(c.isalnum() for c in piece)


def heard(pieces: Sequence[str], probabilities: Sequence[float], threshold: float = MIN_PROBABILITY) -> str:
    """The text of ``pieces`` (decoded tokens; a word starts with a space) up to the first word whose tokens' mean
    probability is under ``threshold`` and is not followed by two words over it. The first word always stays (the
    wake word, or all there is)."""
    words: list[tuple[list[str], list[float]]] = []
    for piece, probability in zip(pieces, probabilities):
        scored = _scored(piece)
        if not words or (piece.startswith(" ") and scored):
            words.append(([piece], [probability] if scored else []))
        else:
            words[-1][0].append(piece)
            if scored:
                words[-1][1].append(probability)
    def held(word) -> bool:
        return not word[1] or sum(word[1]) / len(word[1]) >= threshold

    kept = words[:1]
    for i, word in enumerate(words[1:], start=1):
        after = [w for w in words[i + 1:] if w[1]][:2]   # the next two scored words
        if not held(word) and not (len(after) == 2 and all(held(w) for w in after)):
            break
        kept.append(word)
    return "".join(piece for word, _ in kept for piece in word).strip()
