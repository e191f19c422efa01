"""The LLM responder: open questions (no skill matched) answered by a backend, sentence by sentence.

Tokens are generated on their own thread and cut into sentences as they arrive, so the first
sentence can be spoken while the rest is still being generated. Setting the turn's cancel event
(barge-in, "stop", shutdown) stops both the speech and the generation. A failure becomes a short
spoken apology plus an ``Error`` event with the fix; skills are unaffected.
"""
from __future__ import annotations

import logging
import queue
from collections import deque
import threading
import time
from typing import Callable, Iterator

from jarvis import events
from jarvis.brain.backends import ChatBackend, LlmFailure, Messages
from jarvis.brain.memory import AnswerCache, ConversationMemory
from jarvis.brain.skills import Context, clean, honest_fallback
from jarvis.brain.types import Response, Turn
from jarvis.speak.sentences import SentenceSplitter, split_sentences

log = logging.getLogger(__name__)

NO_ANSWER = "Sorry, I have no answer to that."
LOOP_TOKENS = 12
# After its first sentence the generation waits (at most this long) until the reader asks for the next one: that
# sentence is being synthesized meanwhile, and the two on 2 cores slowed Piper's first phrase from ~100 to ~270 ms
# (2026-12-05 traces). The reader asks as soon as the first sentence's audio is made (it goes to the player).
FIRST_AUDIO_WAIT_S = 1.0
UNKNOWN_LISTENER = "someone whose name you do not know"


class LlmResponder:
    """``(turn, context) -> Response`` for the brain's fallback slot.

    ``backend`` is set by whoever loads it (the model host); until then, or when loading failed
    (``unavailable`` holds why), the turn gets an apology, or the skills-only answer when the brain
    is off.
    """

    def __init__(self, settings, bus: events.EventBus | None = None, backend: ChatBackend | None = None):
        self.settings = settings
        self.bus = bus
        self.backend = backend
        self.unavailable: LlmFailure | None = None
        self.memory = ConversationMemory(settings.memory_turns, settings.memory_idle_s)
        self.cache = AnswerCache(settings.cache_size, settings.cache_ttl_s)

    def apply_settings(self, settings) -> None:
        """Limits apply from the next turn; the conversations and cached answers are kept."""
        self.settings = settings
        self.memory.max_turns, self.memory.idle_s = max(0, settings.memory_turns), settings.memory_idle_s
        self.cache.size, self.cache.ttl_s = max(0, settings.cache_size), settings.cache_ttl_s

    def system_prompt(self, speaker: str) -> str:
        name = speaker if speaker and speaker != "unknown" else UNKNOWN_LISTENER
        return self.settings.system_prompt.replace("{speaker}", name)

    def messages(self, turn: Turn) -> Messages:
        """System prompt, the speaker's remembered turns, then the question."""
        return [{"role": "system", "content": self.system_prompt(turn.speaker)},
                *self.memory.history(turn.memory_key),
                {"role": "user", "content": turn.text.strip()}]

    def __call__(self, turn: Turn, context: Context) -> Response:
        backend = self.backend
        if backend is None:
            if self.unavailable is None:
                return honest_fallback(turn, context)  # brain.backend is "off"
            self._report(self.unavailable)
            return Response([self.unavailable.apology], source="llm")
        question = turn.text.strip()
        fresh = not self.memory.history(turn.memory_key)
        key = (backend.label, turn.speaker, clean(question))
        cached = self.cache.get(key) if fresh else None
        held = _Held(context.ahead)
        if cached is not None:
            held.done(lambda: self.memory.remember(turn.memory_key, question, cached))
            return Response(split_sentences(cached), source="llm-cache", on_adopt=held.release)
        cancel = context.cancel or threading.Event()
        chunks = self._sentences(backend, self.messages(turn), turn, key if fresh else None, cancel, held)
        return Response(chunks, source="llm", on_adopt=held.release)

    @property
    def answers_ahead(self) -> bool:
        """Whether an answer may be started before its turn is over (``Brain.ahead``): a backend is loaded."""
        return self.backend is not None

    def _sentences(self, backend: ChatBackend, messages: Messages, turn: Turn, cache_key,
                   cancel: threading.Event, held: "_Held") -> Iterator[str]:
        """Sentences as the backend generates them (on a thread of its own); stops on ``cancel``."""
        out: queue.Queue = queue.Queue()
        abandoned = threading.Event()  # the consumer stopped reading: stop generating too

        # Small models loop: a sentence said again, or the same one or two tokens over and over
        # ("no no no no ..."), ends the answer; the looping text is not spoken.
        looping = threading.Event()

        def stopped() -> bool:
            return cancel.is_set() or abandoned.is_set() or looping.is_set()

        more_wanted = threading.Event()   # the reader asked for the sentence after the first

        def wait_for_the_first_audio() -> None:
            deadline = time.monotonic() + FIRST_AUDIO_WAIT_S
            while not more_wanted.wait(0.01) and not stopped() and time.monotonic() < deadline:
                pass

        def produce() -> None:
            # The first clause goes to speech as soon as it is complete: the voice starts sooner.
            splitter, said, started, first = SentenceSplitter(eager_first=True), [], time.monotonic(), True
            recent: deque[str] = deque(maxlen=LOOP_TOKENS)

            def emit(sentences: list[str]) -> None:
                for sentence in sentences:
                    if looping.is_set() or sentence.lower() in {s.lower() for s in said}:
                        looping.set()
                        return
                    said.append(sentence)
                    out.put(("sentence", sentence))

            pieces = backend.stream(messages, stopped, self.settings.max_tokens, self.settings.temperature)
            try:
                for piece in pieces:
                    if first and self.bus is not None:   # its time is now, even when told at the adoption
                        token = events.LlmFirstToken(backend=backend.label, seconds=round(time.monotonic() - started, 4))
                        held.done(lambda: self.bus.emit(token))
                    first = False
                    recent.append(piece.strip().lower())
                    if len(recent) == LOOP_TOKENS and len(set(recent)) <= 2:
                        looping.set()
                        break
                    sentences = splitter.feed(piece)
                    emit(sentences)
                    if sentences and not said[1:] and not more_wanted.is_set():
                        wait_for_the_first_audio()
                if not (cancel.is_set() or abandoned.is_set()):
                    emit(splitter.flush())
                    answer = " ".join(said)
                    held.done(lambda: self._remember(turn, answer, cache_key))
                out.put(("end", None))
            except LlmFailure as exc:
                out.put(("failed", exc))
            except Exception as exc:  # a bug or an odd backend error: still apologise, never hang
                log.exception("LLM generation failed")
                out.put(("failed", LlmFailure("llm_failed", f"The LLM failed ({type(exc).__name__}: {exc}).",
                                              "Sorry, something went wrong while I was thinking.")))
            finally:
                pieces.close()  # ends the request (and frees the local model) even after a break

        threading.Thread(target=events.in_turn_thread(produce), name="llm", daemon=True).start()
        spoke = False
        try:
            while True:
                try:
                    kind, value = out.get(timeout=0.05)
                except queue.Empty:
                    if cancel.is_set():
                        return
                    continue
                if kind == "sentence":
                    if cancel.is_set():  # generated before the cancel but not yet read: not to be said
                        return
                    spoke = True
                    yield value
                    more_wanted.set()
                    continue
                if kind == "failed":
                    self._report(value)
                    if not cancel.is_set():
                        yield value.apology
                elif not spoke and not cancel.is_set():
                    yield NO_ANSWER
                return
        finally:
            abandoned.set()

    def _remember(self, turn: Turn, answer: str, cache_key) -> None:
        self.memory.remember(turn.memory_key, turn.text.strip(), answer)
        if cache_key is not None:
            self.cache.put(cache_key, answer)

    def _report(self, failure: LlmFailure) -> None:
        log.warning("LLM: %s", failure.message)
        if self.bus is not None:
            self.bus.emit(events.Error(code=failure.code, message=failure.message))


class _Held:
    """What an answer does besides answering (remember the exchange, cache it, report its first token), done as it
    happens; for an answer worked out ahead of its turn, not before that answer is adopted (``release``), in order:
    a turn that went otherwise leaves no trace."""

    def __init__(self, held: bool):
        self._held = held
        self._pending: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def done(self, effect: Callable[[], None]) -> None:
        with self._lock:
            if self._held:
                self._pending.append(effect)
                return
        effect()

    def release(self) -> None:
        with self._lock:
            self._held, pending, self._pending = False, self._pending, []
        for effect in pending:
            effect()
