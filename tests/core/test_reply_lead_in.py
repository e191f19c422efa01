"""A reply starts with its first sound: the silence a voice begins with is left out (jarvis.loop.speaking)."""
from __future__ import annotations

import numpy as np
import pytest

from jarvis.audio.wav import first_sound
from jarvis.loop.speaking import LEAD_IN_KEPT_S, LEAD_IN_MAX_S, LEAD_IN_RMS, without_lead_in

RATE = 22050


def _tone(seconds: float) -> np.ndarray:
    return (0.3 * np.sin(np.arange(int(seconds * RATE)) * 0.3)).astype(np.float32)


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.float32)


def _played(stream) -> np.ndarray:
    return np.concatenate([chunk for _, chunk in without_lead_in(stream)])


def test_the_silence_before_the_first_sound_is_left_out_but_for_its_onset():
    voice = _tone(0.5)
    played = _played([(RATE, np.concatenate([_silence(0.05), voice[:1000]])), (RATE, voice[1000:])])
    lead_in = len(played) - len(voice)
    kept = int(LEAD_IN_KEPT_S * RATE)
    assert kept <= lead_in < kept + RATE // 100   # 10 ms kept before the 10 ms window the sound starts in
    np.testing.assert_array_equal(played[lead_in:], voice)


def test_silent_chunks_before_the_voice_are_dropped_and_a_loud_start_is_untouched():
    voice = _tone(0.2)
    played = _played([(RATE, _silence(0.1)), (RATE, _silence(0.02)), (RATE, voice)])
    assert len(played) == len(voice)
    np.testing.assert_array_equal(_played([(RATE, voice), (RATE, _silence(0.1))]),
                                  np.concatenate([voice, _silence(0.1)]))
    assert list(without_lead_in([])) == []


def test_no_more_than_the_cap_is_left_out():
    """A voice that starts quieter than -50 dBFS for longer than the cap keeps all but the cap."""
    long_quiet = _silence(1.0)
    played = _played([(RATE, long_quiet), (RATE, _tone(0.1))])
    assert len(played) == len(long_quiet) - int(LEAD_IN_MAX_S * RATE) + int(0.1 * RATE)


def test_closing_the_reply_closes_its_synthesis():
    closed = []

    def synthesis():
        try:
            yield RATE, _silence(0.05)
            yield RATE, _tone(0.1)
            yield RATE, _tone(0.1)
        finally:
            closed.append(True)

    reply = without_lead_in(synthesis())
    next(reply)
    reply.close()
    assert closed == [True]


@pytest.mark.slow
def test_piper_replies_start_with_their_voice():
    """Piper's real voice begins "It's 9:08 AM." with silence; played, the reply starts with its first sound."""
    from jarvis.speak.piper_engine import PiperEngine

    engine = PiperEngine()
    engine.load()
    try:
        rate = engine.sample_rate
        chunks = list(engine.synthesize("It's 9:08 AM."))
    finally:
        engine.close()
    made = np.concatenate(chunks)
    lead_in, kept = first_sound(made, rate, LEAD_IN_RMS), int(LEAD_IN_KEPT_S * rate)
    assert lead_in > kept   # Piper's silence first: 30-50 ms in 90 syntheses, 9 processes (2026-12-07)
    played = np.concatenate([chunk for _, chunk in without_lead_in((rate, chunk) for chunk in chunks)])
    assert len(made) - len(played) == lead_in - kept
    np.testing.assert_array_equal(played, made[len(made) - len(played):])
