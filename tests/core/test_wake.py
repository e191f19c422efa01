"""The phased wake-word detector with the real Porcupine on espeak-ng speech at every frame alignment."""
from __future__ import annotations

import numpy as np
import pvporcupine
import pytest
import soundfile

from jarvis.listen.wake import PHASES, PhasedPorcupine, frame_caller
from tests.speech import espeak_wav

# Voices where a single Porcupine misses "Jarvis" at some alignments (f3 is heard at all of them).
VOICES = ["en-us+f5", "en-us+f1", "en-us+m3", "en-us+m1", "en"]
ALIGNMENTS = range(0, 512, 64)


def _pcm(path) -> np.ndarray:
    samples, _ = soundfile.read(str(path), dtype="int16")
    return np.concatenate((np.zeros(8000, np.int16), samples, np.zeros(8000, np.int16)))


def _heard(detector, pcm: np.ndarray) -> int:
    n = detector.frame_length
    return sum(detector.process(pcm[i:i + n]) >= 0 for i in range(0, len(pcm) - n + 1, n))


@pytest.fixture(scope="module")
def utterances(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wake")
    return {v: _pcm(espeak_wav("Jarvis, what time is it", folder / f"{v}.wav", v)) for v in VOICES}


def test_phases_hear_the_wake_word_where_one_detector_misses_it(utterances):
    single = phased = 0
    for pcm in utterances.values():
        for offset in ALIGNMENTS:
            one = pvporcupine.create(keywords=["jarvis"], sensitivities=[0.6])
            single += _heard(one, pcm[offset:]) > 0
            one.delete()
            many = PhasedPorcupine(["jarvis"], [0.6])
            hits = _heard(many, pcm[offset:])
            many.delete()
            assert hits <= 1, "one utterance wakes Jarvis once"
            phased += hits
    total = len(utterances) * len(ALIGNMENTS)
    print(f"\nheard: one detector {single}/{total}, {PHASES} phases {phased}/{total}")
    assert phased > single
    assert phased >= 0.95 * total


def test_no_wake_without_the_word(tmp_path):
    pcm = _pcm(espeak_wav("The quick brown fox jumps over the lazy dog, twice a day.", tmp_path / "x.wav", "en-us+f3"))
    detector = PhasedPorcupine(["jarvis"], [0.6])
    try:
        assert _heard(detector, pcm) == 0
        assert detector.process(np.zeros(detector.frame_length, np.int16)) == -1
    finally:
        detector.delete()


def test_the_pointer_call_hears_exactly_what_porcupines_own_process_hears(utterances):
    """``frame_caller`` hands Porcupine a pointer to the frame instead of a ctypes copy: frame for frame the same
    results (a detection included), and a frame of the wrong length is refused, not read past its end."""
    pcm = utterances["en-us+f5"]
    own, pointer = (pvporcupine.create(keywords=["jarvis"], sensitivities=[0.6]) for _ in range(2))
    call = frame_caller(pointer)
    try:
        n = own.frame_length
        for offset in (0, 192):
            frames = [pcm[i:i + n] for i in range(offset, len(pcm) - n + 1, n)]
            expected = [own.process(frame) for frame in frames]
            assert [call(frame) for frame in frames] == expected and 0 in expected
        with pytest.raises(ValueError, match="frame length"):
            call(pcm[:n - 1])
    finally:
        own.delete()
        pointer.delete()
