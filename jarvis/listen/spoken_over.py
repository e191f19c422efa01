"""Spoken over: Jarvis pauses its reply the moment a person starts talking over it, before the wake word is known.

Porcupine says "jarvis" about 300 ms after the word ends (258-348 ms, median 299, from the end of the voiced word
to the end of the frame that heard it, on espeak-ng voices: benchmarks/porcupine_latency.py), so a reply cut on
the wake word alone goes on for a third of a second after the person stopped saying it. Instead, while Jarvis talks, a person's voice on the echo canceller's
output pauses the reply at once (``on_pause``): Jarvis is quiet while the word is still being said. The wake word
then cuts the reply for good (the loop's barge-in); when none comes, the reply goes on where it paused
(``on_resume``), ``RESUME_AFTER_S`` after the voice stopped, or after ``MAX_PAUSE_S`` of voice.

A person, not Jarvis's own voice: the canceller removes Jarvis's voice, but its residual suppressor leaves a faint
echo shaped by Jarvis's speech, which under a fan's noise can sound like speech to a voice detector. So a block
counts as a person's voice when Silero VAD hears speech in the cleaned audio *and* the raw microphone is
``ABOVE_FLOOR_DB`` above its recent floor, for ``BLOCKS_TO_PAUSE`` blocks in a row (128 ms). Chosen on a simulated
room (``tests/core/test_spoken_over.py`` has the cases; 3 Piper replies x 0 / -18 dB echo x no noise / 20 / 10 / 5
dB SNR, 8 espeak-ng voices saying "Jarvis, what time is it" over them): no pause in 11 minutes of Jarvis alone,
and 53 of 64 people heard before the end of "Jarvis" (7 not within 1.3 s: those are cut by the wake word as before).

A pause that ends without a wake word is followed by ``QUIET_AFTER_RESUME_S`` without pausing again, so a radio or
a conversation in the room does not make Jarvis stutter.

In the room benchmark (PulseAudio loopback with a reverberant room, benchmarks/results/room-cpu-pause-on.json)
it works where the echo is weak: with no echo and at -18 dB, a reply was silent 180-490 ms *before* the end of
"Jarvis" in 12 of 13 barge-ins that were heard. But the room's reverberant echo is not the simulation's short
tail: AEC3 leaves more of it, Silero hears Jarvis in it, and 39 of 54 pauses resumed (28 of 30 at 0 dB echo).
So it is off by default (``audio.pause_when_spoken_over``) until the detector tells that residual from a person.
What is known: 25 of the 32 false pauses whose reply start is in the log came 0.27-1.2 s into a reply (short skill
answers, mostly at 0 dB), so the residual is worst while the cancellers settle at a reply's start; a simulated
room with a 0.4 s reverberant tail did not reproduce them (no false pause in 2 min), so the next step is the real
loop's streams (``JARVIS_ECHO_DUMP``) at those moments.
"""
from __future__ import annotations

import collections
import logging
from typing import Callable

import numpy as np

log = logging.getLogger(__name__)

RATE = 16000
BLOCK = 512                     # Silero VAD's block at 16 kHz (32 ms)
SPEECH_PROB = 0.5
ABOVE_FLOOR_DB = 6.0
FLOOR_S = 3.0                   # the microphone's floor: its 10th percentile block energy over this long
BLOCKS_TO_PAUSE = 4
RESUME_AFTER_S = 0.6            # > Porcupine's latency after the word: the wake word comes before this
MAX_PAUSE_S = 3.0
QUIET_AFTER_RESUME_S = 2.0


def _blocks(seconds: float) -> int:
    return max(1, round(seconds * RATE / BLOCK))


class SpokenOver:
    """Fed the echo canceller's streams (``feed``) on the capture thread. ``speaking()`` says whether a reply is
    playing; ``on_pause`` / ``on_resume`` pause and resume it. ``vad(block, rate)`` returns a speech probability
    (RealtimeSTT's Silero VAD by default)."""

    def __init__(self, speaking: Callable[[], bool], on_pause: Callable[[], None], on_resume: Callable[[], None],
                 vad: Callable | None = None):
        self.speaking, self.on_pause, self.on_resume = speaking, on_pause, on_resume
        self._vad = vad if vad is not None else _silero()
        self._clean = np.zeros(0, np.float32)
        self._raw = np.zeros(0, np.float32)
        self._energies: collections.deque = collections.deque(maxlen=_blocks(FLOOR_S))
        self._run = 0                 # blocks in a row that sound like a person
        self._paused_for = 0          # blocks since the pause began (0: not paused)
        self._silent_for = 0          # blocks without voice during the pause
        self._quiet = 0               # blocks left without pausing again
        self._was_speaking = False
        self.pauses = 0
        self.resumes = 0

    @property
    def paused(self) -> bool:
        return self._paused_for > 0

    def feed(self, clean: np.ndarray, raw: np.ndarray) -> None:
        """The canceller's output and the raw microphone for the same samples (float32, 16 kHz)."""
        self._clean = np.concatenate((self._clean, np.asarray(clean, np.float32)))
        self._raw = np.concatenate((self._raw, np.asarray(raw, np.float32)))
        while len(self._clean) >= BLOCK:
            clean_block, self._clean = self._clean[:BLOCK], self._clean[BLOCK:]
            raw_block, self._raw = self._raw[:BLOCK], self._raw[BLOCK:]
            self._block(clean_block, raw_block)

    def _block(self, clean: np.ndarray, raw: np.ndarray) -> None:
        energy = float(np.mean(np.square(raw, dtype=np.float64))) + 1e-12
        self._energies.append(energy)
        self._quiet = max(0, self._quiet - 1)
        speaking = self.speaking()
        if not speaking and not self.paused:
            if self._was_speaking:
                self._reset_vad()
            self._was_speaking, self._run = False, 0
            return
        self._was_speaking = True
        voice = self._voice(clean, energy)
        if self.paused:
            self._paused_for += 1
            self._silent_for = 0 if voice else self._silent_for + 1
            if not speaking:                      # cut for good (the wake word) or ended: nothing to resume
                self._paused_for = 0
            elif self._silent_for >= _blocks(RESUME_AFTER_S) or self._paused_for >= _blocks(MAX_PAUSE_S):
                self._paused_for, self._quiet = 0, _blocks(QUIET_AFTER_RESUME_S)
                self.resumes += 1
                log.info("no wake word after a voice over the reply: resuming it")
                self.on_resume()
            return
        self._run = self._run + 1 if voice else 0
        if self._run >= BLOCKS_TO_PAUSE and not self._quiet:
            self._run, self._paused_for, self._silent_for = 0, 1, 0
            self.pauses += 1
            log.info("a voice over the reply: pausing it until the wake word (or %.1f s of quiet)", RESUME_AFTER_S)
            self.on_pause()

    def _voice(self, clean: np.ndarray, energy: float) -> bool:
        # The VAD hears every block while Jarvis talks (it carries state from block to block).
        speech = _probability(self._vad(clean, RATE)) > SPEECH_PROB
        if self.paused:
            return speech  # the echo is gone: the floor no longer tells a person from Jarvis, the VAD alone decides
        floor = float(np.percentile(np.asarray(self._energies), 10))
        return speech and 10 * np.log10(energy / floor) >= ABOVE_FLOOR_DB

    def _reset_vad(self) -> None:
        reset = getattr(self._vad, "reset_states", None)
        if reset is not None:
            reset()


def _probability(result) -> float:
    return float(result.item() if hasattr(result, "item") else result)


def _silero():
    from RealtimeSTT.core.silero_vad import create_silero_vad_model

    return create_silero_vad_model(backend="auto")
