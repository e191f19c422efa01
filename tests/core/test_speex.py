"""Speex's linear canceller (the system's libspeexdsp): the DC notch that stands in for it while Jarvis is silent."""
from __future__ import annotations

import numpy as np

from jarvis.audio.speex import DcNotch, SpeexEcho

FRAME = 160


def _run(canceller: SpeexEcho, mic: np.ndarray, far: np.ndarray) -> np.ndarray:
    return np.concatenate([canceller.process(mic[i:i + FRAME], far[i:i + FRAME])
                           for i in range(0, len(mic), FRAME)])


def _room(seconds_quiet: float, seconds_talking: float, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A person (noise shaped like a voice, with a DC offset) throughout; Jarvis silent, then talking, its echo
    in the microphone 12 ms later through a short room response."""
    n_quiet, n_talk = int(seconds_quiet * 16000), int(seconds_talking * 16000)
    far = np.concatenate((np.zeros(n_quiet), rng.standard_normal(n_talk) * 4000))
    room = np.zeros(400)
    room[192], room[230], room[390] = 0.6, -0.25, 0.1
    echo = np.convolve(far, room)[:len(far)]
    person = np.convolve(rng.standard_normal(len(far)), np.ones(8) / 8, "same") * 900 + 300
    to_int16 = lambda x: np.clip(x, -32768, 32767).astype(np.int16)  # noqa: E731
    return to_int16(echo + person), to_int16(far), person


def test_the_notch_stands_in_for_the_library_while_jarvis_is_silent():
    mic, far, person = _room(3.0, 3.0, np.random.default_rng(0))
    with_notch, library = SpeexEcho(FRAME), SpeexEcho(FRAME)
    library._notch = None   # the library on every frame, as without scipy
    ours, theirs = _run(with_notch, mic, far), _run(library, mic, far)
    quiet = 3 * 16000
    skipped = with_notch.frames_without_library
    assert skipped == quiet // FRAME - with_notch._history_frames, "stands in once the tail holds only silence"
    assert np.abs(ours[:quiet].astype(np.int32) - theirs[:quiet]).max() <= 1   # Speex's own output, to rounding
    # Jarvis talks: the library runs again from where it stopped and cancels as well as one that never stopped.
    settled = slice(quiet + 2 * 16000, None)   # the filter has learned the room

    def echo_left_db(out: np.ndarray) -> float:   # what is left of Jarvis's voice (the notch takes the DC too)
        return 10 * np.log10(np.var(out[settled] - person[settled]))

    print(f"\necho left: {echo_left_db(ours):.2f} dB, library throughout {echo_left_db(theirs):.2f} dB, "
          f"echo {10 * np.log10(np.var(mic[settled] - person[settled])):.2f} dB")
    assert abs(echo_left_db(ours) - echo_left_db(theirs)) < 0.5


def test_the_notch_is_used_only_where_it_matches_the_library():
    assert DcNotch.matches(SpeexEcho(FRAME)._lib, FRAME, 256, 16000)
    notch = DcNotch(16000)
    step = notch(np.full(FRAME, 1000, np.int16))
    assert step[0] > 900 and abs(int(notch(np.full(FRAME * 20, 1000, np.int16))[-1])) <= 1   # DC goes, a step passes
