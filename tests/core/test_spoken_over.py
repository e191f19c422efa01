"""A person talking over Jarvis pauses the reply before the wake word has ended; Jarvis alone never pauses itself.

Real parts: Piper's voice as Jarvis, espeak-ng voices as people, WebRTC AEC3 and Speex in the simulated room of
tests/room_sim.py, RealtimeSTT's Silero VAD. Times are counted in samples of the simulated microphone, so nothing
here depends on this machine's speed.
"""
from __future__ import annotations

import numpy as np
import pytest

from jarvis.audio.echo import RATE, EchoCanceller
from jarvis.bench.false_wakes import normalise, pink_noise, speak
from jarvis.bench.pipeline import voiced_bounds
from jarvis.listen import spoken_over
from jarvis.listen.spoken_over import SpokenOver
from tests.room_sim import room_echo, run_room

REPLY = ("Once upon a time a dragon lived in a cave high in the mountains. Every morning he flew over the village "
         "to look at the people below. They were afraid of him, but he only wanted a friend.")
# Jarvis's own reply, its name and a question in it: its echo must not pause it either.
OWN = ("Good evening, I am Jarvis, your assistant. Tomorrow will be sunny and warm, with a light breeze in the "
       "afternoon. Jarvis here again: would you like to hear the forecast for the weekend?")


@pytest.fixture(scope="module")
def piper_say():
    from jarvis.audio.resample import resample
    from jarvis.speak.piper_engine import PiperEngine

    engine = PiperEngine()
    engine.load()

    def say(text: str) -> np.ndarray:
        audio = np.concatenate(list(engine.synthesize(text)))
        return resample(audio, engine.sample_rate, RATE).astype(np.float32)
    return say


def _person(voice: str) -> tuple[np.ndarray, float]:
    """ "Jarvis, what time is it" at -26 dBFS, and where the voiced "Jarvis" ends (s)."""
    head = speak("Jarvis", voice)
    head = head[: int(voiced_bounds(head)[1] * RATE) + 160]
    said = normalise(np.concatenate([head, np.zeros(int(0.3 * RATE), np.float32), speak("what time is it", voice)]))
    return said, voiced_bounds(said[: head.size])[1]


def _pauses(far: np.ndarray, mic: np.ndarray) -> list[float]:
    """Where (s into the microphone) the reply would have been paused, Jarvis talking throughout."""
    at: list[float] = []
    heard = [0]

    def tap(wake, clean, raw, far_active):
        guard.feed(clean, raw)
        heard[0] += len(clean)

    guard = SpokenOver(lambda: True, lambda: at.append(heard[0] / RATE), lambda: None)
    run_room(EchoCanceller(wake_tap=tap), far, mic)
    return at


@pytest.mark.parametrize("gain_db", [0.0, -18.0])
@pytest.mark.parametrize("voice", ["en-us+f3", "en-gb-x-rp+f2", "en-us-nyc+robosoft3"])
def test_a_person_talking_over_jarvis_pauses_it_before_the_end_of_the_wake_word(piper_say, voice, gain_db):
    far = piper_say(REPLY)
    mic = room_echo(far, 0.03, gain_db)
    said, wake_end = _person(voice)
    start = int(3.0 * RATE)
    mic[start:start + said.size] += said
    pauses = _pauses(far, mic)
    assert pauses, "the person was not heard over Jarvis"
    # The capture block holding the moment is 32 ms long: the pause lands within it.
    assert 3.0 <= pauses[0] <= 3.0 + wake_end + 0.032, (pauses, wake_end)


@pytest.mark.parametrize("snr_db", [None, 10.0, 5.0])
@pytest.mark.parametrize("gain_db", [0.0, -18.0])
def test_jarvis_alone_never_pauses_itself(piper_say, gain_db, snr_db):
    """Its own voice (saying "Jarvis" and asking a question) through the room, with a fan's noise or without."""
    far = piper_say(OWN)
    mic = room_echo(far, 0.03, gain_db)
    if snr_db is not None:  # against a person's speech at -26 dBFS
        mic += pink_noise(len(mic) / RATE + 1)[: len(mic)] * 10 ** ((-26 - snr_db) / 20)
    assert _pauses(far, mic) == []


class _Vad:
    """A stand-in for Silero in the state-machine test below (the tests above use the real one): speech where
    the block's samples are loud."""

    def __call__(self, block, rate):
        return 1.0 if np.abs(block).max() > 0.1 else 0.0


def _blocks(seconds: float) -> int:
    return round(seconds * RATE / spoken_over.BLOCK)


def test_without_a_wake_word_the_reply_resumes_after_the_voice_and_does_not_pause_again_at_once():
    log: list[str] = []
    speaking = [True]
    guard = SpokenOver(lambda: speaking[0], lambda: log.append("pause"), lambda: log.append("resume"), vad=_Vad())
    quiet, loud = np.full(512, 0.001, np.float32), np.full(512, 0.5, np.float32)

    def feed(block, n):
        for _ in range(n):
            guard.feed(block, block)

    feed(quiet, _blocks(3.0))                           # Jarvis talks, nobody else
    feed(loud, spoken_over.BLOCKS_TO_PAUSE - 1)
    assert log == [] and not guard.paused
    feed(loud, 1)
    assert log == ["pause"] and guard.paused
    feed(loud, _blocks(0.5))                            # still talking: still paused
    feed(quiet, _blocks(spoken_over.RESUME_AFTER_S) - 1)
    assert log == ["pause"]
    feed(quiet, 1)
    assert log == ["pause", "resume"] and not guard.paused
    feed(loud, _blocks(1.0))                            # someone goes on talking: no stutter
    assert log == ["pause", "resume"]
    feed(quiet, _blocks(spoken_over.QUIET_AFTER_RESUME_S + spoken_over.FLOOR_S))
    feed(loud, spoken_over.BLOCKS_TO_PAUSE)
    assert log[-1] == "pause"
    speaking[0] = False                                 # the wake word cut the reply: nothing to resume
    feed(quiet, _blocks(2.0))
    assert log[-1] == "pause" and not guard.paused


def test_a_voice_that_goes_on_is_given_at_most_max_pause_s():
    log: list[str] = []
    guard = SpokenOver(lambda: True, lambda: log.append("pause"), lambda: log.append("resume"), vad=_Vad())
    for block, n in ((np.full(512, 0.001, np.float32), _blocks(3.0)),
                     (np.full(512, 0.5, np.float32), _blocks(spoken_over.MAX_PAUSE_S) + 10)):
        for _ in range(n):
            guard.feed(block, block)
    assert log == ["pause", "resume"]
