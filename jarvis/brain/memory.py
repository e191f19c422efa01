"""What the LLM remembers: the recent conversation per identified speaker, and answers to repeated questions.

Each speaker has their own conversation (alice never sees bob's); it keeps up to the last ``max_turns``
question/answer pairs (the oldest half forgotten together, see ``kept_when_full``) and is forgotten after
``idle_s`` without a turn. ``AnswerCache`` answers a question asked again (same speaker name, same words)
within ``ttl_s``, but only at the start of a conversation: later, the same words can mean something else.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

Clock = Callable[[], float]


@dataclass
class _Conversation:
    turns: list[tuple[str, str]] = field(default_factory=list)
    last: float = 0.0


class ConversationMemory:
    def __init__(self, max_turns: int = 6, idle_s: float = 300.0, clock: Clock = time.monotonic):
        self.max_turns = max(0, int(max_turns))
        self.idle_s = idle_s
        self._clock = clock
        self._conversations: dict[str, _Conversation] = {}
        self._lock = threading.Lock()

    def history(self, speaker: str) -> list[dict]:
        """The speaker's remembered turns as chat messages (oldest first); [] after the idle timeout."""
        with self._lock:
            conversation = self._live(speaker)
            if conversation is None:
                return []
            return [m for user, reply in conversation.turns
                    for m in ({"role": "user", "content": user}, {"role": "assistant", "content": reply})]

    def remember(self, speaker: str, question: str, answer: str) -> None:
        if self.max_turns == 0 or not answer.strip():
            return
        with self._lock:
            conversation = self._live(speaker) or self._conversations.setdefault(speaker, _Conversation())
            conversation.turns.append((question, answer))
            if len(conversation.turns) > self.max_turns:
                del conversation.turns[:-self.kept_when_full]
            conversation.last = self._clock()

    @property
    def kept_when_full(self) -> int:
        """The newest pairs kept when one more than ``max_turns`` is remembered: the oldest half goes at once. Dropping
        one pair at a time changed the prompt's start at every question, and the local model evaluated the whole
        conversation again each time (~1.5 s to the first token on 2 cores, not ~0.5 s); now once in a few."""
        return (self.max_turns + 1) // 2

    def forget(self, speaker: str | None = None) -> None:
        """Forget one speaker's conversation, or everyone's."""
        with self._lock:
            if speaker is None:
                self._conversations.clear()
            else:
                self._conversations.pop(speaker, None)

    def _live(self, speaker: str) -> _Conversation | None:
        conversation = self._conversations.get(speaker)
        if conversation is not None and self._clock() - conversation.last > self.idle_s:
            del self._conversations[speaker]
            return None
        return conversation


class AnswerCache:
    """LRU cache of answers with a time to live; ``size`` 0 turns it off."""

    def __init__(self, size: int = 64, ttl_s: float = 600.0, clock: Clock = time.monotonic):
        self.size = max(0, int(size))
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[tuple, tuple[float, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> str | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            stored, answer = entry
            if self._clock() - stored > self.ttl_s:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return answer

    def put(self, key: tuple, answer: str) -> None:
        if self.size == 0 or not answer.strip():
            return
        with self._lock:
            self._entries[key] = (self._clock(), answer)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
