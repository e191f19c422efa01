"""A simulated room for the echo canceller: Jarvis's playback reaches the microphone late, at a gain, with a short
tail; the far end is pushed as the player pushes it. No audio server: the canceller's maths on known signals."""
from __future__ import annotations

import numpy as np
import soxr

from jarvis.audio.echo import RATE, EchoCanceller


def run_room(canceller: EchoCanceller, far: np.ndarray, mic: np.ndarray, play_rate: int = 22050,
             t0: float = 100.0, block: int = 512, underflow: tuple[float, float, float] | None = None,
             late_every_s: float = 0.0, late_s: float = 0.045) -> np.ndarray:
    """Play ``far`` (pushed to the far end at ``play_rate`` as the player would: a little ahead of the device)
    while ``mic`` is captured in ``block``-sample buffers; returns the cleaned microphone.

    ``underflow`` = (at_s, gap_s, error_s): the device ran dry ``at_s`` (a multiple of 20 ms) into ``far`` and
    played ``gap_s`` of silence (build ``mic`` from ``with_gap(far, at_s, gap_s)``); the blocks after it are
    pushed at the time they were heard plus ``error_s`` (a device's reported time after it recovered is a few
    ms off), the first one flagged. ``late_every_s``: one block in every that many seconds of playback is pushed
    with its time ``late_s`` off and not flagged (the player's callback ran late on a busy machine)."""
    played = soxr.resample(far, RATE, play_rate).astype(np.float32)
    step = play_rate // 50  # the player's 20 ms device blocks
    fed, out = 0, []
    for i in range(0, len(mic) - block + 1, block):
        while fed < len(played):
            heard = t0 + fed / play_rate
            late = underflow is not None and fed / play_rate >= underflow[0]
            if late:
                heard += underflow[1]
            if heard >= t0 + i / RATE + 0.05:
                break
            first_late = late and (fed - step) / play_rate < underflow[0]
            if late_every_s and (fed // step) % round(late_every_s * 50) == 0:
                heard += late_s
            canceller.far_end.push(played[fed:fed + step], play_rate, heard + (underflow[2] if late else 0.0),
                                   underflow=first_late)
            fed += step
        out.append(canceller.process(mic[i:i + block], t0 + (i + block - 1) / RATE))
    return np.concatenate(out)


def with_gap(far: np.ndarray, at_s: float, gap_s: float) -> np.ndarray:
    """``far`` as the room heard it when the device ran dry ``at_s`` in for ``gap_s`` (see ``run_room``)."""
    at = int(at_s * RATE)
    return np.concatenate((far[:at], np.zeros(int(gap_s * RATE), np.float32), far[at:])).astype(np.float32)


def room_echo(far: np.ndarray, delay_s: float, gain_db: float, tail: float = 1.0) -> np.ndarray:
    """The far end as the microphone hears it: late by ``delay_s``, at ``gain_db``, with a short decaying tail."""
    rng = np.random.default_rng(1)
    taps = np.zeros(int(0.05 * RATE), np.float32)
    taps[0] = 1.0
    taps[1:] = rng.standard_normal(len(taps) - 1) * 0.05 * np.exp(-np.arange(1, len(taps)) / (0.01 * RATE))
    echo = np.convolve(far, taps)[: len(far)] * 10 ** (gain_db / 20)
    d = int(delay_s * RATE)
    return np.concatenate((np.zeros(d, np.float32), echo, np.zeros(int(tail * RATE), np.float32))).astype(np.float32)
