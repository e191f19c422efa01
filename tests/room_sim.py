"""A simulated room for the echo canceller: Jarvis's playback reaches the microphone late, at a gain, with a short
tail; the far end is pushed as the player pushes it. No audio server: the canceller's maths on known signals."""
from __future__ import annotations

import numpy as np
import soxr

from jarvis.audio.echo import RATE, EchoCanceller


def run_room(canceller: EchoCanceller, far: np.ndarray, mic: np.ndarray, play_rate: int = 22050,
             t0: float = 100.0, block: int = 512) -> np.ndarray:
    """Play ``far`` (pushed to the far end at ``play_rate`` as the player would: a little ahead of the device)
    while ``mic`` is captured in ``block``-sample buffers; returns the cleaned microphone."""
    played = soxr.resample(far, RATE, play_rate).astype(np.float32)
    step = play_rate // 50  # the player's 20 ms device blocks
    fed, out = 0, []
    for i in range(0, len(mic) - block + 1, block):
        while fed < len(played) and t0 + fed / play_rate < t0 + i / RATE + 0.05:
            canceller.far_end.push(played[fed:fed + step], play_rate, t0 + fed / play_rate)
            fed += step
        out.append(canceller.process(mic[i:i + block], t0 + (i + block - 1) / RATE))
    return np.concatenate(out)


def room_echo(far: np.ndarray, delay_s: float, gain_db: float, tail: float = 1.0) -> np.ndarray:
    """The far end as the microphone hears it: late by ``delay_s``, at ``gain_db``, with a short decaying tail."""
    rng = np.random.default_rng(1)
    taps = np.zeros(int(0.05 * RATE), np.float32)
    taps[0] = 1.0
    taps[1:] = rng.standard_normal(len(taps) - 1) * 0.05 * np.exp(-np.arange(1, len(taps)) / (0.01 * RATE))
    echo = np.convolve(far, taps)[: len(far)] * 10 ** (gain_db / 20)
    d = int(delay_s * RATE)
    return np.concatenate((np.zeros(d, np.float32), echo, np.zeros(int(tail * RATE), np.float32))).astype(np.float32)
