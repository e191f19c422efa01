"""Transcript clean-up: drop the wake word RealtimeSTT's pre-roll leaves in the text; tell Whisper's
hallucinations on noise or silence ("Thank you.", "you", "[Music]") from speech."""
from __future__ import annotations

import re
import zlib

from rapidfuzz import fuzz

# Whisper's usual spellings of "Jarvis" at the start of an utterance, with an optional greeting.
_WAKE = r"(?:jarvis|jarvi|jervis|jarvus|jarves|javis|jarviss)"
_LEADING_WAKE = re.compile(rf"^\s*(?:(?:hey|ok|okay|hi|hello)[\s,]+)?{_WAKE}\b[\s,.!?:;…-]*", re.IGNORECASE)
# Speech the pre-roll caught before the wake word, ended as a sentence ("…half past nine. Jarvis, what time is it?").
_BEFORE_WAKE = re.compile(rf"^[^.!?…]*[.!?…]+\s+(?:(?:hey|ok|okay|hi|hello)[\s,]+)?{_WAKE}\b[\s,.!?:;…-]*",
                          re.IGNORECASE)
# Any first word, then the punctuation (or space) after it.
_FIRST_WORD = re.compile(r"^\s*(?:(?:hey|ok|okay|hi|hello)[\s,]+)?([^\W\d_]+)([,.!?:;…-]+\s*|\s+|$)",
                         re.IGNORECASE)
# Other mishearings ("Jarmis,", "JARAMIS,", "Jarravish,") are stripped by similarity: this close when a
# comma or full stop sets the word apart (Porcupine heard the wake word, so it is there), closer without.
WAKE_SIMILARITY_SET_APART = 0.65
WAKE_SIMILARITY = 0.8


def strip_wake_word(text: str, wake_word: str = "jarvis") -> str:
    """Remove a leading wake word, as Whisper spells it ("Jarvis, what time is it?" -> "What time is it?";
    "Jarmis, stop." -> "Stop."), and a sentence heard before it ("Nine. Jarvis, stop." -> "Stop.")."""
    text = original = (text or "").strip()
    before = _BEFORE_WAKE.match(text) if wake_word.lower() == "jarvis" else None
    if before:
        text = text[before.end():].strip()
    cleaned = _LEADING_WAKE.sub("", text, count=1).strip() if wake_word.lower() == "jarvis" else text
    first = _FIRST_WORD.match(text)
    if cleaned == text and first and not before:
        floor = WAKE_SIMILARITY if first.group(2).isspace() else WAKE_SIMILARITY_SET_APART
        if fuzz.ratio(first.group(1).lower(), wake_word.lower()) >= 100 * floor:
            cleaned = text[first.end():].strip()
    if cleaned and cleaned != original:
        cleaned = cleaned[0].upper() + cleaned[1:]
    return cleaned


# What Whisper writes for noise, music or silence (it learnt them from subtitled videos), normalised as
# by _words(): lowercase, no punctuation. Skill commands ("stop", "repeat", "what", "huh") are not here.
_HALLUCINATIONS = frozenset({
    "you", "thank you", "thank you very much", "thank you so much", "thanks", "thank you all",
    "thanks for watching", "thank you for watching", "thank you so much for watching", "thanks for listening",
    "thank you for listening", "please subscribe", "like and subscribe", "see you next time",
    "see you in the next video", "bye", "bye bye", "goodbye", "the end", "i", "so", "oh", "ah", "uh", "um",
    "hmm", "mm", "mhm", "ooh", "uh huh", "okay", "ok",
})
# Credits and sound tags that can open or make up a whole transcript.
_CREDITS = re.compile(r"^(?:subtitles|subtitled|captions|captioned|transcribed|translated|transcript)\b.*\bby\b"
                      r"|amara\.org", re.IGNORECASE)
_SOUND_TAG = re.compile(r"\[[^\]]*\]|\([^)]*\)|\*[^*]*\*|[♪♫♬]+")


# Whisper stuck in a loop repeats a phrase to the end of its window ("And I'm on the side of the car, and I'm on
# the side of the car, …" for "Jarvis, who am I?" in a noisy room). faster-whisper calls a decoding failed above
# this gzip compression ratio; speech, even "stop stop stop stop" or a phrase said three times, stays well under.
LOOP_COMPRESSION_RATIO = 2.4
LOOP_MIN_CHARS = 40


def compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower().replace("\u2019", "'")).split())


def _is_stock(sentence: str) -> bool:
    """A stock phrase, or one stock word repeated ("you you you")."""
    return sentence in _HALLUCINATIONS or (len(set(sentence.split())) == 1 and sentence.split()[0] in _HALLUCINATIONS)


def hallucination_reason(text: str) -> str | None:
    """Why ``text`` is Whisper's output on noise or silence rather than a command, or None if it is speech.

    "no words" (".", "...", ""), "sound tag" ("[Music]", "(silence)", "♪"), "credits" ("Subtitles by …"),
    "stock phrase" ("Thank you.", "you", "Bye.", "Thanks for watching!", a lone "um"; also the same
    phrases repeated), "repetition loop" (one phrase over and over, see ``LOOP_COMPRESSION_RATIO``). A leading
    wake word is ignored ("Jarvis. Thank you." is a stock phrase). A real one-word command ("Stop.", "Repeat.",
    "Time?") is speech.
    """
    text = strip_wake_word(text)
    if _CREDITS.search(text):
        return "credits"
    untagged = _SOUND_TAG.sub(" ", text)
    if not _words(untagged):
        return "sound tag" if untagged != text else "no words"
    sentences = [_words(s) for s in re.split(r"[.!?,;…]+", untagged)]
    if all(_is_stock(s) for s in sentences if s):
        return "stock phrase"
    if len(untagged) >= LOOP_MIN_CHARS and compression_ratio(untagged) > LOOP_COMPRESSION_RATIO:
        return "repetition loop"
    return None


def is_hallucination(text: str) -> bool:
    """True for Whisper's usual words on noise or silence: they get no reply and no LLM call."""
    return hallucination_reason(text) is not None
