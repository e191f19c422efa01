"""Split text into sentences for sentence-by-sentence TTS.

``split_sentences`` cuts a whole text; ``SentenceSplitter`` does the same incrementally for an
LLM token stream, emitting a sentence only once the text after it proves it ended (so "3." is held
until we know it is not "3.5"). Rules: a sentence ends at ``.``, ``!``, ``?`` or an ellipsis followed
by whitespace, or at a newline; not after titles and abbreviations ("Dr.", "e.g.", "U.S."), single
initials, a leading list number ("1."), or before a lowercase word. Sentences longer than
``max_chars`` are cut at the last comma/semicolon/colon, else the last space. Pieces with no letter
or digit ("...", "-") are dropped: there is nothing to say.
"""
from __future__ import annotations

import re

MAX_CHARS = 200

# Words that end with a dot without ending the sentence (compared lower-case, dot removed).
ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st sr jr mt vs no nos fig figs approx dept est inc ltd co corp ave gen col "
    "capt lt sgt rev hon gov sen rep cf al op vol ch pp".split())

_END = re.compile(r"(?P<term>[.!?\u2026]+)(?P<close>[\"'\u201d\u2019)\]\u00bb]*)(?P<space>\s+)|(?P<nl>\n)")
_DOTTED = re.compile(r"^(?:[A-Za-z]\.)+[A-Za-z]$")  # e.g / i.e / U.S
_CLAUSE = re.compile(r"[,;:\u2014\u2013](?=\s)")
_SPEAKABLE = re.compile(r"\w")


def split_sentences(text: str, max_chars: int = MAX_CHARS) -> list[str]:
    """Whole ``text`` → sentences (stripped, none empty, none longer than ``max_chars``)."""
    sentences, _ = _cut(text or "", final=True, max_chars=max_chars)
    return sentences


class SentenceSplitter:
    """Incremental splitter: ``feed`` pieces of text, get complete sentences; ``flush`` the rest.

    With ``eager_first`` the first piece is let go at the first clause break (a comma, semicolon, colon
    or dash followed by a space) or before the first word that opens a phrase ("because", "where", "with",
    "by", ``PHRASE_WORDS``) once it has ``EAGER_WORDS`` words, so speech can start before a long first
    sentence is finished: "The sky is blue" plays while the LLM and the TTS are still on "because of a
    process called Rayleigh scattering," (an LLM's first sentence often has no comma for 10-20 words).
    """

    def __init__(self, max_chars: int = MAX_CHARS, eager_first: bool = False) -> None:
        self.max_chars = max_chars
        self._buffer = ""
        self._eager = eager_first

    def feed(self, text_piece: str) -> list[str]:
        self._buffer += text_piece or ""
        sentences, self._buffer = _cut(self._buffer, final=False, max_chars=self.max_chars)
        if self._eager and not sentences:
            clause = _first_clause(self._buffer)
            if clause:
                sentences, self._buffer = [clause.strip()], self._buffer[len(clause):]
        self._eager = self._eager and not sentences
        return sentences

    def flush(self) -> list[str]:
        sentences, self._buffer = _cut(self._buffer, final=True, max_chars=self.max_chars)
        return sentences


EAGER_WORDS = 4
# Words that open a new phrase (conjunctions, relatives, most prepositions): a speaker may pause before them.
# Not "of", "to", "and" or "or", which mostly sit inside a phrase ("a cup of tea", "want to go", "the capital and
# largest city").
PHRASE_WORDS = ("because", "where", "which", "who", "whose", "when", "while", "but", "so", "since",
                "although", "though", "if", "unless", "until", "as", "by", "with", "for", "in", "on", "at", "from",
                "after", "before", "than", "like", "through", "during")
# The space before such a word, once the word is whole (something follows it).
_PHRASE = re.compile(rf"\s+(?=(?:{'|'.join(PHRASE_WORDS)})[\s,;:.!?])", re.IGNORECASE)


def _first_clause(text: str) -> str | None:
    """The text up to the first clause break (its punctuation included) or phrase opening (see ``PHRASE_WORDS``)
    that follows at least ``EAGER_WORDS`` words."""
    breaks = sorted([m.end() for m in _CLAUSE.finditer(text)] + [m.start() for m in _PHRASE.finditer(text)])
    for end in breaks:
        head = text[:end]
        if len(head.split()) >= EAGER_WORDS and end < len(text) and _SPEAKABLE.search(head):
            return head
    return None


def _cut(text: str, final: bool, max_chars: int) -> tuple[list[str], str]:
    """Return (complete sentences, unconsumed rest). With ``final`` the rest is always ""."""
    pieces: list[str] = []
    start = 0
    for m in _END.finditer(text):
        if m.group("nl") is None:
            nxt = m.end()
            if nxt >= len(text):
                if not final:
                    break  # cannot tell yet whether the sentence ended
                continue  # end of text: the tail below takes it
            if not _is_boundary(text[start:m.start()], m.group("term"), text[nxt]):
                continue
        pieces.append(text[start:m.end()])
        start = m.end()
    rest = text[start:]
    if final:
        pieces.append(rest)
        rest = ""
    elif len(rest.strip()) > max_chars:
        *done, last = _split_long(rest.strip(), max_chars)
        pieces.extend(done)
        rest = last + rest[len(rest.rstrip()):]  # keep the trailing space: "word " + "next"
    sentences = [s for p in pieces for s in _split_long(p.strip(), max_chars) if _SPEAKABLE.search(s)]
    return sentences, rest


def _is_boundary(sentence: str, term: str, next_char: str) -> bool:
    if "!" in term or "?" in term:
        return True
    if next_char.islower():
        return False
    if term == ".":
        words = sentence.split()
        word = words[-1].lstrip("([\"'\u201c\u2018") if words else ""
        if word.lower() in ABBREVIATIONS or _DOTTED.match(word):
            return False
        if len(word) == 1 and word.isalpha():
            return False  # an initial: "J. R. R. Tolkien"
        if len(words) == 1 and word.isdigit():
            return False  # a list number: "1. Buy milk"
    return True


def _split_long(sentence: str, max_chars: int) -> list[str]:
    """Cut a too-long sentence at clause punctuation, else at a space, else hard."""
    out = []
    while len(sentence) > max_chars:
        window = sentence[:max_chars + 1]
        clauses = [m.end() for m in _CLAUSE.finditer(window) if m.end() > max_chars // 4]
        cut = clauses[-1] if clauses else window.rfind(" ")
        if cut <= 0:
            cut = max_chars
        out.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    if sentence:
        out.append(sentence)
    return out
