"""What keeps a turn honest: Jarvis's own words are not commands; strangers never share a conversation."""
from __future__ import annotations

import numpy as np

from jarvis.brain.memory import ConversationMemory
from jarvis.brain.types import Response, Turn
from jarvis.listen.own_voice import HOLD_S, OwnVoice
from jarvis.speakers.strangers import UnknownVoices


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_own_words_are_recognised_while_spoken_and_for_a_while_after():
    clock = Clock()
    own = OwnVoice(clock)
    story = Response(iter(["Once upon a time, Jarvis met a dragon.", "What do you think happened next?"]))
    own.speaking(story)
    assert not own.heard("once upon a time jarvis met a dragon"), "nothing of it has been generated yet"
    next(iter(story))
    assert own.heard("Once upon a time, Jarvis met a dragon")
    assert own.heard("jarvis met a dragon"), "a stretch of it"
    assert not own.heard("What time is it?"), "a real command"
    own.done(story)
    clock.t += HOLD_S - 1
    assert own.heard("once upon a time jarvis met a dragon")
    clock.t += 2
    assert not own.heard("once upon a time jarvis met a dragon"), "long after, the same words are the user's"


def test_short_commands_are_not_mistaken_for_a_reply():
    own = OwnVoice(Clock())
    reply = Response(["It's 3:15 PM. Today is Wednesday, December 2."])
    own.speaking(reply)
    iter(reply).__next__()
    own.done(reply)
    for command in ("what time is it", "what is the date today", "who am I", "stop", "tell me more"):
        assert not own.heard(command), command
    assert own.heard("Today is Wednesday, December 2")
    assert not own.heard("")


def _voice(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(256).astype(np.float32)
    return v / np.linalg.norm(v)


def test_each_unknown_voice_keeps_its_own_conversation():
    clock = Clock()
    strangers = UnknownVoices(threshold=0.75, idle_s=300, clock=clock)
    a, b = _voice(1), _voice(2)
    key_a = strangers.key_for(a)
    key_b = strangers.key_for(b)
    assert key_a != key_b and key_a.startswith("unknown-")
    near_a = a + 0.2 * _voice(3)
    assert strangers.key_for(near_a) == key_a, "the same voice again continues its conversation"
    assert strangers.key_for(None) not in (key_a, key_b), "no voice print: a fresh conversation"
    clock.t += 301
    assert strangers.key_for(a) != key_a, "forgotten after the idle time, like the conversation itself"


def test_memory_follows_the_voice_not_the_word_unknown():
    memory = ConversationMemory()
    first = Turn(text="my name is Ann", speaker="unknown", conversation="unknown-1")
    other = Turn(text="what is my name", speaker="unknown", conversation="unknown-2")
    memory.remember(first.memory_key, first.text, "Hello Ann.")
    assert memory.history(other.memory_key) == []
    assert memory.history(Turn(text="again", speaker="unknown", conversation="unknown-1").memory_key)
    assert Turn(text="hi", speaker="alice").memory_key == "alice"


def test_the_loop_replies_to_commands_only():
    from jarvis import events
    from jarvis.config import Settings
    from jarvis.pipeline import VoiceLoop

    loop = VoiceLoop(Settings(), events.EventBus())
    reply = Response(["Once upon a time, a dragon lived in a cave above the village."])
    loop.own_voice.speaking(reply)
    next(iter(reply))
    assert loop.turns.no_reply_reason("") == "empty"
    assert loop.turns.no_reply_reason(" . ") == "empty"
    assert loop.turns.no_reply_reason("Thank you.") == "hallucination"
    assert loop.turns.no_reply_reason("a dragon lived in a cave above the village") == "own_voice"
    assert loop.turns.no_reply_reason("What time is it?") == ""
    assert loop.turns.no_reply_reason("Stop.") == ""
