"""The model host's shared microphone: the windows' level meter and enrollment when the voice loop is not listening
on that device (first run, another device picked, a listener restart). On the private PulseAudio's virtual mic."""
from __future__ import annotations

import time

import numpy as np
import pytest

from jarvis.audio.wav import read_speech_wav
from tests.audio_server import MIC
from tests.e2e.test_audio_io import best_match
from tests.speech import espeak_wav


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    wav = espeak_wav("Jarvis, what time is it?", tmp_path_factory.mktemp("speech") / "speech.wav")
    return wav, read_speech_wav(wav)


def test_taps_on_one_device_share_one_capture_that_closes_with_the_last(virtual_audio, speech):
    from jarvis.audio.shared_mic import SharedMic

    wav, source = speech
    mic = SharedMic()
    meter, take = [], []
    try:
        mic.add(meter.append, MIC)
        mic.add(take.append, MIC)
        deadline = time.monotonic() + 5
        while not (meter and take) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(mic._captures) == 1, "two taps on one device opened it twice"
        virtual_audio.play_into_mic(wav)
        time.sleep(0.3)
        corr, _ = best_match(np.concatenate(take).astype(np.float32) / 32768.0, source)
        assert corr > 0.9 and abs(len(meter) - len(take)) <= 1  # both taps got every block
        capture = mic._captures[MIC]
        mic.remove(meter.append)
        mic.remove(take.append)
        deadline = time.monotonic() + 5
        while capture.running and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not capture.running and not mic._captures
    finally:
        mic.close()


def test_a_microphone_that_cannot_open_tells_its_taps_in_one_line(virtual_audio):
    from jarvis.audio.shared_mic import SharedMic

    mic, heard = SharedMic(), []
    try:
        mic.add(lambda block: None, "no such microphone", heard.append)
        deadline = time.monotonic() + 5
        while not heard and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(heard) == 1 and "\n" not in heard[0] and "no such microphone" in heard[0], heard
        assert not mic.taps() and not mic._captures
    finally:
        mic.close()
