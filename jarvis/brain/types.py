"""What goes into the brain (a Turn) and what comes out (a Response)."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

SPEAK, STOP, REPEAT = "speak", "stop", "repeat"


@dataclass(frozen=True)
class Turn:
    """One user utterance: the transcript and who said it (``"unknown"`` if not recognised).

    ``conversation`` keys the LLM's memory; empty means the speaker's name. Unrecognised voices get a key of
    their own voice (see ``jarvis.speakers.voices``), so two strangers never share a conversation."""
    text: str
    speaker: str = "unknown"
    speaker_score: float = 0.0
    conversation: str = ""

    @property
    def memory_key(self) -> str:
        return self.conversation or self.speaker


@dataclass
class Response:
    """What to do about a turn.

    ``text_chunks`` are the pieces to speak, in order. For skills it is a list; for an LLM it
    will be a lazy generator of sentences, so the first can be spoken while the rest is made.
    Iterate the response (not ``text_chunks``) so the spoken text is recorded; ``text`` then
    gives the whole reply.

    ``action``: ``"speak"`` (say the chunks), ``"stop"`` (cancel speech and work; nothing to
    say) or ``"repeat"`` (the chunks are the previous reply, said again).
    ``source``: the skill name, ``"llm"`` or ``"brain"`` (the brain's own prompts).
    """
    text_chunks: Iterable[str]
    action: str = SPEAK
    source: str = "brain"
    # An answer worked out ahead of its turn (Brain.ahead): called when it becomes the turn's answer (Brain.adopt).
    on_adopt: Callable[[], None] | None = field(default=None, repr=False, compare=False)
    _read: list[str] = field(default_factory=list, init=False, repr=False, compare=False)
    _rest: Iterator[str] | None = field(default=None, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def __iter__(self) -> Iterator[str]:
        """Yield each chunk once as it is produced; later iterations replay what was read. Several threads may
        iterate at once (an answer worked out ahead is read by the one preparing it and by the reply): each chunk
        is produced once, in order."""
        i = 0
        while True:
            with self._lock:
                if i == len(self._read):
                    if self._rest is None:
                        self._rest = iter(self.text_chunks)
                    chunk = next(self._rest, None)
                    if chunk is None:
                        return
                    self._read.append(chunk)
                chunk = self._read[i]
            i += 1
            yield chunk

    @property
    def text_so_far(self) -> str:
        """The reply as far as it has been read, without generating more."""
        return " ".join(c.strip() for c in self._read if c.strip())

    @property
    def text(self) -> str:
        """The whole reply. Reads any chunks not yet consumed (for an LLM: generates them)."""
        for _ in self:
            pass
        return self.text_so_far
