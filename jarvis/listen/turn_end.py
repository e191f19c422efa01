"""Is the turn over? The end-of-turn model's probability together with what Whisper heard so far.

Smart Turn hears prosody; on synthetic voices (and on people who stop without trailing off) a half sentence can
sound finished (benchmarks/smart_turn_probe.py: 21 of 60 Piper sentences cut mid-way were heard unfinished). The
words say it plainly: English commands do not end on "the", "for", "about" or "um", on a verb still waiting for
what it asks ("Tell me…", "Remind us…"), or on a question word with no verb yet ("What time…", "Which…"). A turn
is over when the model says finished and the last words heard can end a sentence.

The listener asks Whisper at the start of each pause anyway (the transcript the reply is worked out from), so the
words cost no extra pass; the model hears the pause meanwhile. The words judged are those the audio itself holds
(``jarvis.listen.heard``), not the ones Whisper's prompt adds to finish a half command. ``PauseVerdict`` puts the two
together in whichever order they come: words that ask for more keep listening at once; finished needs both. Words
that are word for word a command Jarvis knows end the turn even when the model doubts them: on its usual verdict
between ``KNOWN_COMMAND_THRESHOLD`` and 0.5, below that after the end-of-speech silence Jarvis waits without a model.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Callable

THRESHOLD = 0.5
# A pause whose words are word for word a command Jarvis knows ("What time is it?", ``Brain.knows``) ends on weaker
# evidence from the voice: the model heard a third of such finished commands by natural voices below 0.5 (0.11-0.48,
# pipeline bench, 2026-12-05), while the first halves of paused commands, whose words ask for more anyway, scored
# 0.01-0.04 and Piper's whole sentences cut mid-way ~0.87 (benchmarks/results/smart-turn-probe-cpu.json).
# Below it the model may still be wrong (finished commands by Piper voices at 0.02-0.14 waited the whole
# unfinished cap, 2026-12-05): a known command it doubts that much ends after ``listen.post_speech_silence``, as it
# would without the model, if its words end as a sentence may, too: "what" alone is a known command (say that again)
# and also the start of "What… is the time?", so it waits the cap.
KNOWN_COMMAND_THRESHOLD = 0.2

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
# Verbs that ask for what to tell, show, give…: "Tell me" alone is the start of a request, not one.
ASKING_VERBS = frozenset("tell show give remind let send bring teach get find buy read lend pass".split())
OBJECTS = frozenset("me us him them".split())
# A question word with at most one more word and no verb yet: "What time…", "Which room…", "What day…".
QUESTION_WORDS = frozenset("what which whose".split())
SUBJECTS = frozenset("i you we they he she".split())
# "Who am I", "How are you", "Where were we": a short question may end on its subject.
ASKS_BY_INVERSION = frozenset("who what where when why how".split())
VERB_FORMS = frozenset("""
is are was were be been am do does did have has had can could will would shall should may might must
's 're 've 'd 'll
""".split()) | frozenset(w for w in UNFINISHED_LAST_WORDS if "'" in w)
MAX_VERBLESS_QUESTION_WORDS = 2
_WORD = re.compile(r"[a-z']+")
_CLAUSE_BREAK = re.compile(r"[,;:.!?]+(?=\s|$)")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("’", "'"))


def last_word(text: str) -> str:
    words = _words(text)
    return words[-1] if words else ""


def last_clause(text: str) -> str:
    """The words after the last clause break that has words after it ("Jarvis, tell me." -> "tell me")."""
    clauses = [c for c in _CLAUSE_BREAK.split(text) if _words(c)]
    return clauses[-1] if clauses else ""


def _question_without_verb(words: list[str]) -> bool:
    """ "What…", "What time…", "Which room…": a question word and at most one word that is no verb ("What
    happened", "What's up", "What causes…" have theirs)."""
    if not words or words[0] not in QUESTION_WORDS or len(words) > MAX_VERBLESS_QUESTION_WORDS:
        return False
    return not any(w in VERB_FORMS or "'" in w or w.endswith(("ed", "s")) for w in words[1:])


def _short_question_ending_on_its_subject(words: list[str]) -> bool:
    return (len(words) == 3 and words[0] in ASKS_BY_INVERSION and words[1] in VERB_FORMS
            and words[2] in SUBJECTS)


def sounds_unfinished(text: str) -> bool:
    """The transcript so far stops where no sentence ends (or trails off with "..." / "-")."""
    stripped = text.strip()
    if stripped.endswith(("...", "…", "-", "—", ",")):
        return True
    clause = _words(last_clause(stripped))
    if _short_question_ending_on_its_subject(clause):
        return False
    if last_word(stripped) in UNFINISHED_LAST_WORDS:
        return True
    if len(clause) >= 2 and clause[-1] in OBJECTS and clause[-2] in ASKING_VERBS:
        return True
    return _question_without_verb(clause)


def turn_over(probability: float, text: str, threshold: float = THRESHOLD) -> bool:
    """The end of the turn: the model hears a finished turn and the words heard so far can end a sentence."""
    return probability > threshold and not sounds_unfinished(text)


def is_known(text: str, known: Callable[[str], bool] | None) -> bool:
    """``known(text)`` (e.g. ``Brain.knows``), False when there is none or it fails, and for a question word alone:
    "What?" is a command (say that again) but far more often the start of "What… day is it?" (it ended a command in
    its pause in the pipeline bench, 2026-12-05)."""
    if _words(last_clause(text)) in ([w] for w in QUESTION_WORDS):
        return False
    try:
        return bool(known is not None and known(text))
    except Exception:  # noqa: BLE001 - as if the words were not a known request
        return False


def words_can_end(text: str, known: Callable[[str], bool] | None = None) -> bool:
    """Whisper's words for a pause can end a request: a whole request the assistant knows (``known``, e.g.
    ``Brain.knows``: "Who am I", "What was that"), or words a sentence may end on."""
    return is_known(text, known) or not sounds_unfinished(text)


@dataclass(frozen=True)
class Verdict:
    """A pause's verdict: ``finished`` ends the turn. ``probability``: the model's (None: the words alone said
    unfinished, the model was not asked); ``heard``: the words it was judged with (None: the model alone).
    ``doubted``: not finished, but the words are a command Jarvis knows: it ends after the usual end-of-speech
    silence rather than the unfinished cap."""
    finished: bool
    probability: float | None
    heard: str | None
    doubted: bool = False


class PauseVerdict:
    """The model's probability and Whisper's words for the pause a command is in, arriving in either order on
    different threads: ``model()`` / ``words()`` return the verdict once it can be given, only once per pause.
    With ``use_words`` off (no transcript comes during a pause) the model decides alone."""

    def __init__(self, use_words: bool = True, known: Callable[[str], bool] | None = None):
        self.use_words = use_words
        self.known = known
        self._lock = threading.Lock()
        self._pause = 0.0
        self._probability: float | None = None
        self._heard: str | None = None
        self._given = False

    def model(self, pause: float, probability: float) -> Verdict | None:
        with self._lock:
            self._for(pause)
            self._probability = probability
            return self._verdict()

    def words(self, pause: float, text: str) -> Verdict | None:
        with self._lock:
            self._for(pause)
            self._heard = text
            return self._verdict()

    def _for(self, pause: float) -> None:
        if pause != self._pause:
            self._pause, self._probability, self._heard, self._given = pause, None, None, False

    def _verdict(self) -> Verdict | None:
        if self._given:
            return None
        p, heard = self._probability, self._heard
        if heard is not None and not words_can_end(heard, self.known):
            verdict = Verdict(False, p, heard)          # the words ask for more: the model's answer is not needed
        elif p is None:
            return None
        elif not self.use_words:
            verdict = Verdict(p > THRESHOLD, p, None)   # the model decides alone
        elif p <= THRESHOLD:
            if heard is None:
                return None                             # unsure: a command Jarvis knows may end on it
            known = is_known(heard, self.known)
            if p > KNOWN_COMMAND_THRESHOLD:
                verdict = Verdict(known, p, heard)
            else:   # doubted: the words are a known command that does not end on a word asking for more either
                verdict = Verdict(False, p, heard, known and not sounds_unfinished(heard))
        elif heard is None:
            return None                                 # finished to the model: the words decide, once they come
        else:
            verdict = Verdict(True, p, heard)
        self._given = True
        return verdict
