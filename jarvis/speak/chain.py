"""The ordered TTS fallback chain: degrade loudly, recover quietly.

Text is cut into sentences; each sentence goes to the first healthy engine in order. An engine that
fails to load, or raises while speaking, is marked down with its reason and a ``Degraded`` event is
emitted; the next engine carries on from the failed sentence. If the failing engine had already
produced audio for that sentence, the next engine starts at the following sentence instead, so no
sentence is ever spoken twice. A down engine is loaded again once ``retry_after_s`` has passed, when a
sentence needs it, on a thread of its own (loading and warming CSM again takes seconds: the reply goes on
with the next engine meanwhile); a success marks it healthy again (logged) and the chain moves back to it.

``prepare`` synthesizes a reply's first sentence ahead of its turn (while the command's last pause is still being
heard): a reply that starts with that sentence, on that engine, plays it at once.
"""
from __future__ import annotations

import copy
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import numpy as np

from jarvis.errors import BadInput, JarvisError, NotAvailable, describe
from jarvis.events import Degraded, Error, EventBus, TtsFirstChunk
from jarvis.speak.base import TtsEngine
from jarvis.speak.normalize import normalize_for_speech
from jarvis.speak.sentences import split_sentences

log = logging.getLogger(__name__)


@dataclass
class _Slot:
    engine: TtsEngine
    healthy: bool = False
    reason: str = "not loaded"
    down_since: float | None = None  # monotonic time it went down; None = never failed
    retrying: bool = False           # being loaded again in the background


PREPARED_TTL_S = 30.0    # a prepared sentence no reply took is dropped after this


@dataclass
class _Prepared:
    engine: str
    sentence: str
    made: float                                    # monotonic time it was started
    chunks: list = field(default_factory=list)     # as they are made (the reply may play the first meanwhile)
    done: threading.Event = field(default_factory=threading.Event)
    failed: bool = False
    cancel: threading.Event = field(default_factory=threading.Event)
    made_more: threading.Condition = field(default_factory=threading.Condition)   # a chunk was added, or done

    def add(self, chunk: np.ndarray) -> None:
        with self.made_more:
            self.chunks.append(chunk)
            self.made_more.notify_all()

    def finish(self, failed: bool) -> None:
        with self.made_more:
            self.failed = failed
            self.done.set()
            self.made_more.notify_all()


class _EngineFailed(Exception):
    def __init__(self, spoke: bool):
        self.spoke = spoke


class TtsChain:
    def __init__(self, engines: list[TtsEngine], bus: EventBus, retry_after_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._slots = [_Slot(engine) for engine in engines]
        self.bus = bus
        self.retry_after_s = retry_after_s
        self._clock = clock
        self._lock = threading.Lock()  # guards slot state; never held while synthesising
        self.closed = False           # closed: its engines are released
        self.settings = None          # the TtsSettings it was built from (from_settings)
        self._prepared: _Prepared | None = None  # the one sentence synthesized ahead (prepare)

    @classmethod
    def from_settings(cls, settings, bus: EventBus, retry_after_s: float = 60.0) -> "TtsChain":
        """Build the chain named by ``settings.engines`` (a ``TtsSettings``); unknown names raise BadInput."""
        from jarvis.speak import registry
        chain = cls([registry.create(name, settings) for name in settings.engines], bus, retry_after_s)
        chain.settings = copy.deepcopy(settings)
        return chain

    def engine_state(self, name: str) -> tuple[TtsEngine, bool, str] | None:
        """``(engine, healthy, reason)`` of the engine called ``name``, or None when the chain has none."""
        with self._lock:
            return next(((s.engine, s.healthy, s.reason) for s in self._slots if s.engine.name == name), None)

    def adopt_state(self, engine: TtsEngine, healthy: bool, reason: str = "") -> None:
        """Start ``engine`` (borrowed, loaded and warmed by another chain) as healthy, or as down for ``reason``
        (not loaded again before ``retry_after_s``)."""
        with self._lock:
            for slot in self._slots:
                if slot.engine is engine:
                    slot.healthy, slot.reason = healthy, reason
                    slot.down_since = None if healthy else self._clock()

    # -- loading and health -------------------------------------------------------------------

    def load(self, progress: Callable[[str, str], None] | None = None) -> None:
        """Load and warm every engine; raise ``NotAvailable`` only when none can run.

        ``progress(engine name, state)`` hears "loading", "ready", "failed: reason", and whatever an
        engine with a ``progress`` attribute reports meanwhile (CSM: download percentages).
        """
        if not self._slots:
            raise NotAvailable("tts_unavailable", "No TTS engine is configured: set tts.engines, "
                                                  "for example [\"piper\", \"system\"].")
        for slot in self._slots:
            if slot.healthy:
                continue
            name = slot.engine.name
            if progress is not None:
                progress(name, "loading")
                if hasattr(slot.engine, "progress"):
                    slot.engine.progress = lambda line, name=name: progress(name, line)
            ok = self._try_load(slot)
            if progress is not None:
                progress(name, "ready" if ok else f"failed: {slot.reason}")
        if not any(slot.healthy for slot in self._slots):
            raise NotAvailable("tts_unavailable", f"No TTS engine could start ({self._reasons()}). "
                                                  f"Run `jarvis doctor` for the fix.")

    def status(self) -> list[dict]:
        with self._lock:
            return [{"name": s.engine.name, "healthy": s.healthy, "reason": "" if s.healthy else s.reason}
                    for s in self._slots]

    @property
    def active_engine(self) -> str | None:
        """Name of the engine the next sentence goes to (first healthy one), or None."""
        with self._lock:
            return next((s.engine.name for s in self._slots if s.healthy), None)

    def close(self) -> None:
        self.closed = True  # an engine a retry brings back after this is closed by the retry
        prepared, self._prepared = self._prepared, None
        if prepared is not None:
            prepared.cancel.set()
        for slot in self._slots:
            try:
                slot.engine.close()
            except Exception:
                log.exception("closing TTS engine %s failed", slot.engine.name)

    # -- speaking ------------------------------------------------------------------------------

    def speak(self, text: str, cancel: threading.Event | None = None,
              progress: Callable[[int, int], None] | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(sample_rate, float32 chunk)`` sentence by sentence until done or ``cancel`` is set;
        ``progress(n, total)`` hears when sentence n (from 1) starts."""
        sentences = split_sentences(normalize_for_speech(text)) if isinstance(text, str) else []
        if not sentences:
            raise BadInput("empty_text", "Nothing to say: give some text.")
        if progress is not None:
            sentences = _counted(sentences, progress)
        return _unnamed(self._speak(sentences, cancel))

    def speak_naming(self, text: str, cancel: threading.Event | None = None, first: str | None = None
                     ) -> Iterator[tuple[str, int, np.ndarray]]:
        """Like ``speak``, yielding ``(engine name, sample_rate, chunk)``; ``first`` names the engine tried first
        (the others stay its fallbacks, in their order). An unknown name is BadInput."""
        sentences = split_sentences(normalize_for_speech(text)) if isinstance(text, str) else []
        if not sentences:
            raise BadInput("empty_text", "Nothing to say: give some text.")
        order = self._slots
        if first is not None:
            chosen = [s for s in self._slots if s.engine.name == first]
            if not chosen:
                raise BadInput("unknown_engine", f"No TTS engine named {first!r} here; these speak: "
                                                 f"{', '.join(s.engine.name for s in self._slots)}.")
            order = chosen + [s for s in self._slots if s.engine.name != first]
        return self._speak(sentences, cancel, order)

    def speak_stream(self, chunks: Iterable[str], cancel: threading.Event | None = None
                     ) -> Iterator[tuple[int, np.ndarray]]:
        """Like ``speak`` for text that is still being produced (an LLM's sentences): each chunk is
        spoken as soon as it arrives. An empty stream says nothing."""
        def sentences() -> Iterator[str]:
            for chunk in chunks:
                if cancel is not None and cancel.is_set():
                    return
                yield from split_sentences(normalize_for_speech(chunk))
        return _unnamed(self._speak(sentences(), cancel))

    def prepare(self, text: str) -> bool:
        """Synthesize the first sentence of ``text`` now, on a thread of its own, with the engine a reply would
        start with; a reply (or any request) whose first sentence it is then plays it without waiting. Only an
        engine that synthesizes beside another reply (``concurrent``: Piper) prepares, and only the last prepared
        sentence is kept. False when nothing was started."""
        sentences = split_sentences(normalize_for_speech(text)) if isinstance(text, str) else []
        with self._lock:
            slot = next((s for s in self._slots if s.healthy), None)
            if not sentences or slot is None or not slot.engine.concurrent or self.closed:
                return False
            prepared = _Prepared(slot.engine.name, sentences[0], self._clock())
            replaced, self._prepared = self._prepared, prepared
        if replaced is not None:
            replaced.cancel.set()
        threading.Thread(target=self._synthesize_ahead, args=(slot.engine, prepared), name="tts-prepare",
                         daemon=True).start()
        return True

    def _synthesize_ahead(self, engine: TtsEngine, prepared: _Prepared) -> None:
        failed = False
        try:
            for chunk in engine.synthesize(prepared.sentence, prepared.cancel):
                prepared.add(np.asarray(chunk, dtype=np.float32).reshape(-1))
        except Exception:  # noqa: BLE001 - the reply then synthesizes the sentence itself, and reports a failure
            log.info("preparing %r on %s failed; the reply synthesizes it", prepared.sentence, engine.name,
                     exc_info=True)
            failed = True
        finally:
            prepared.finish(failed)

    def _take_prepared(self, slot: _Slot, sentence: str) -> _Prepared | None:
        """The preparation of ``sentence`` on this slot's engine (done or still running: it is ahead of a fresh
        synthesis), taken for this reply, or None."""
        with self._lock:
            prepared = self._prepared
            if prepared is None or prepared.engine != slot.engine.name or prepared.sentence != sentence:
                return None
            self._prepared = None
        return prepared if self._clock() - prepared.made <= PREPARED_TTL_S else None

    def _from_prepared(self, slot: _Slot, prepared: _Prepared, cancel: threading.Event | None
                       ) -> Iterator[tuple[int, np.ndarray]]:
        """A prepared sentence's chunks as they are made (the first plays while Piper makes the rest). A preparation
        that failed or made nothing before any of it was played is synthesized afresh; one that failed after that
        ends the sentence there (``_EngineFailed``: its start was heard)."""
        rate, played = int(slot.engine.sample_rate), 0
        while True:
            with prepared.made_more:
                while played == len(prepared.chunks) and not prepared.done.is_set():
                    if cancel is not None and cancel.is_set():
                        prepared.cancel.set()   # stops the synthesis
                        return
                    prepared.made_more.wait(0.01)
                chunk = prepared.chunks[played] if played < len(prepared.chunks) else None
            if chunk is not None:
                played += 1
                yield rate, chunk
                continue
            if not prepared.failed and not prepared.cancel.is_set() and played:
                return
            if played:
                raise _EngineFailed(spoke=True)
            yield from self._from_engine(slot, prepared.sentence, cancel)
            return

    def _speak(self, sentences: Iterable[str], cancel: threading.Event | None, order: list[_Slot] | None = None
               ) -> Iterator[tuple[str, int, np.ndarray]]:
        first_sent = False
        for sentence in sentences:
            for slot in order or self._slots:
                if cancel is not None and cancel.is_set():
                    return
                if not self._usable(slot):
                    continue
                prepared = self._take_prepared(slot, sentence) if not first_sent else None
                source = self._from_prepared(slot, prepared, cancel) if prepared is not None else \
                    self._from_engine(slot, sentence, cancel)
                try:
                    for rate, chunk in source:
                        if not first_sent:
                            first_sent = True
                            self.bus.emit(TtsFirstChunk(engine=slot.engine.name, prepared=prepared is not None))
                        yield slot.engine.name, rate, chunk
                except _EngineFailed as failed:
                    if failed.spoke:
                        break  # part of this sentence was heard: the next engine takes the next one
                    continue
                break  # sentence done
            else:
                if cancel is not None and cancel.is_set():
                    return
                message = (f"Speech failed: no TTS engine could say it ({self._reasons()}). "
                           f"Run `jarvis doctor`, or add \"system\" to tts.engines.")
                log.error("%s Sentence: %r", message, sentence)
                self.bus.emit(Error("tts_failed", message))
                return

    def _from_engine(self, slot: _Slot, sentence: str, cancel) -> Iterator[tuple[int, np.ndarray]]:
        """Chunks of one sentence from one engine; an engine error becomes ``_EngineFailed``."""
        engine, spoke, chunks = slot.engine, False, None
        try:
            while True:
                try:
                    if chunks is None:
                        chunks = iter(engine.synthesize(sentence, cancel))
                    chunk = next(chunks)
                    chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
                except StopIteration:
                    return
                except Exception as exc:
                    self._mark_down(slot, exc, f"failed while speaking: {_reason(exc)}")
                    raise _EngineFailed(spoke) from exc
                if chunk.size:
                    spoke = True
                    yield int(engine.sample_rate), chunk
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # stop the engine's generator when our consumer stops early

    def _usable(self, slot: _Slot) -> bool:
        """Healthy, or never loaded (load now). A down engine is not usable; once ``retry_after_s`` has passed
        it is loaded again in the background (recovery), and used from the sentence after it is back."""
        with self._lock:
            if slot.healthy:
                return True
            if slot.down_since is not None:
                if not slot.retrying and self._clock() - slot.down_since >= self.retry_after_s:
                    slot.retrying = True
                    threading.Thread(target=self._retry, args=(slot,), name=f"tts-retry-{slot.engine.name}",
                                     daemon=True).start()
                return False
        return self._try_load(slot)

    def _retry(self, slot: _Slot) -> None:
        try:
            if self._try_load(slot, quiet=True):
                if self.closed:
                    slot.engine.close()
                    return
                log.info("TTS engine %s recovered; using it again", slot.engine.name)
        finally:
            with self._lock:
                slot.retrying = False

    def wait_for_retries(self, timeout: float = 30.0) -> bool:
        """Block until no engine is being loaded again; False on timeout."""
        deadline = time.monotonic() + timeout
        while any(slot.retrying for slot in self._slots):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def _try_load(self, slot: _Slot, quiet: bool = False) -> bool:
        """load() + warmup(); warm-up is a real synthesis, so a recovered engine is proven to work."""
        try:
            slot.engine.load()
            slot.engine.warmup()
        except Exception as exc:
            self._mark_down(slot, exc, _reason(exc), emit=not quiet)
            return False
        with self._lock:
            slot.healthy, slot.reason, slot.down_since = True, "", None
        return True

    def _mark_down(self, slot: _Slot, exc: Exception, reason: str, emit: bool = True) -> None:
        with self._lock:
            slot.healthy, slot.reason, slot.down_since = False, reason, self._clock()
        log.warning("TTS engine %s is down: %s", slot.engine.name, reason,
                    exc_info=not isinstance(exc, JarvisError))
        if emit:  # a failed recovery attempt is only logged: the user already saw this engine go down
            self.bus.emit(Degraded(engine=slot.engine.name, reason=reason))

    def _reasons(self) -> str:
        with self._lock:
            return "; ".join(f"{s.engine.name}: {s.reason}" for s in self._slots if not s.healthy) or "none"


def _reason(exc: Exception) -> str:
    """One line for the user: a JarvisError's own message, else the exception type and first line."""
    return describe(exc)


def _unnamed(named: Iterator[tuple[str, int, np.ndarray]]) -> Iterator[tuple[int, np.ndarray]]:
    """``(rate, chunk)`` of ``(engine, rate, chunk)``; closing it stops the engines at once."""
    try:
        for _, rate, chunk in named:
            yield rate, chunk
    finally:
        named.close()


def _counted(sentences: list[str], progress: Callable[[int, int], None]) -> Iterator[str]:
    for n, sentence in enumerate(sentences, 1):
        progress(n, len(sentences))
        yield sentence
