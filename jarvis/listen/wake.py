"""The wake-word detector: Porcupine ("jarvis"), run at several frame phases so no alignment misses it.

Porcupine reads 512-sample frames; where the word falls against those frame boundaries is chance (it depends on
when the microphone started), and on many voices a good share of alignments miss it: measured on espeak-ng
voices saying "Jarvis…" (27 utterances x 16 alignments), one detector heard 56 %, two phases 81 %, four phases
92 % (see tests/core/test_wake.py). So ``PHASES`` detectors each read the same stream, offset by
512 / PHASES samples; a detection by any of them counts, once per ``REFRACTORY_S``.

Cost: ~0.13 ms per detector per 32 ms frame on one core, called with a pointer to the frame: pvporcupine's own
``process`` copies the frame into a ctypes array one sample at a time, which made it ~0.19 ms (the four detectors were
a third of the capture thread's CPU while listening). The false-wake rate is measured with this same detector
(``jarvis bench false-wakes``).

While the room holds only its steady noise the detectors rest (``SoundGate``): a frame's 300-3400 Hz spectrum is
compared, band by band, with the noise learned while nothing was heard; from the first frame 3 dB above it the
detectors run again, first over the last second they skipped, and keep running for a second after the last such
frame. On espeak-ng voices saying "Jarvis…" after other speech in pink noise (8 voices x 4 alignments, one run) the
gated detectors heard as many as ungated ones from 30 down to 5 dB speech-to-noise (32 of 32 each), and at 2, 0 and
-3 dB 30, 27 and 7 against 31, 25 and 3 (Porcupine's own result flips where a detection is marginal, from one process
to the next); in steady white, pink or brown noise the gate stayed shut (tests/core/test_wake.py). Silence then
costs ~0.03 ms a frame instead of four detectors' ~0.4 ms.

Jarvis runs the detector itself, on the capture thread, on the wake-word stream of the echo canceller
(``jarvis.audio.echo``), and tells RealtimeSTT through ``ExternalWake``, which stands where its Porcupine was.
"""
from __future__ import annotations

import collections
import logging
import time

import numpy as np

log = logging.getLogger(__name__)

PHASES = 4
REFRACTORY_S = 1.0   # one utterance wakes Jarvis once, however many phases hear it

GATE_DB = 3.0              # a frame this far above the room's noise (mean over its bands) may hold a voice
GATE_BAND_HZ = (300, 3400)
GATE_HOLD_S = 1.0          # the detectors keep running this long after the last such frame
GATE_PREROLL_S = 1.0       # and start again this far back, so a word's quiet start is heard
GATE_LEARN_FRAMES = 16     # frames that make the first noise estimate (the detectors run meanwhile)
GATE_ADAPT = 0.05          # how fast the noise estimate follows quiet frames (per frame)
GATE_RISE_DB_S = 1.0       # and creeps up under sound, so a louder steady noise shuts the gate after a while


def frame_caller(detector):
    """``call(int16 frame) -> keyword index or -1`` for one Porcupine: its C function with a pointer to the frame's
    samples, or, where this pvporcupine's internals differ, its own ``process``."""
    from ctypes import POINTER, byref, c_int, c_short

    original = detector.process
    function, handle = getattr(detector, "process_func", None), getattr(detector, "_handle", None)
    success = getattr(getattr(detector, "PicovoiceStatuses", None), "SUCCESS", None)
    if function is None or handle is None or success is None:
        return original
    samples, length = POINTER(c_short), detector.frame_length

    def call(frame) -> int:
        frame = np.ascontiguousarray(frame, dtype=np.int16)
        if frame.size != length:   # the C function reads exactly one frame
            raise ValueError(f"Invalid frame length. expected {length} but received {frame.size}")
        result = c_int()
        status = function(handle, frame.ctypes.data_as(samples), byref(result))
        if status is not success:   # pvporcupine's own error for that status, as its ``process`` raises it
            raise getattr(detector, "_PICOVOICE_STATUS_TO_EXCEPTION", {}).get(status, RuntimeError)()
        return result.value

    return call


class SoundGate:
    """``open(frame)``: whether a frame, or one within ``GATE_HOLD_S`` before it, may hold a voice rather than the
    room's steady noise. Noise is learned per frequency band, so a fan's rumble counts as little as a hiss."""

    def __init__(self, frame_length: int, sample_rate: int):
        self._window = np.hanning(frame_length).astype(np.float32)
        hz = sample_rate / frame_length
        self._band = slice(int(GATE_BAND_HZ[0] / hz), int(GATE_BAND_HZ[1] / hz) + 1)
        self._threshold = 10 ** (GATE_DB / 10)
        self._rise = 10 ** (GATE_RISE_DB_S * frame_length / sample_rate / 10)
        self._hold_frames = max(1, round(GATE_HOLD_S * sample_rate / frame_length))
        self._noise: np.ndarray | None = None
        self._seen = 0
        self._hold = 0

    def open(self, frame: np.ndarray) -> bool:
        spectrum = np.fft.rfft(frame * self._window)[self._band]
        power = spectrum.real ** 2 + spectrum.imag ** 2 + 1.0   # + 1: digital silence is quiet, not undefined
        self._seen += 1
        if self._noise is None or self._seen <= GATE_LEARN_FRAMES:
            self._noise = power if self._noise is None else self._noise + (power - self._noise) / self._seen
            sound = True
        else:
            sound = float(np.mean(power / self._noise)) > self._threshold
            if sound:
                self._noise *= self._rise
            else:
                self._noise += GATE_ADAPT * (power - self._noise)
        if sound:
            self._hold = self._hold_frames
        elif self._hold > 0:
            self._hold -= 1
        return self._hold > 0


class PhasedPorcupine:
    """Drop-in for a ``pvporcupine.Porcupine``: ``process(frame)`` takes ``frame_length`` int16 samples and returns
    the keyword index heard, or -1. With ``gated`` the detectors rest while ``SoundGate`` hears only noise."""

    def __init__(self, keywords: list[str], sensitivities: list[float], phases: int = PHASES, gated: bool = True):
        import pvporcupine

        self._detectors = []
        try:
            for _ in range(phases):
                self._detectors.append(pvporcupine.create(keywords=keywords, sensitivities=sensitivities))
        except Exception:
            self.delete()
            raise
        self._calls = [frame_caller(detector) for detector in self._detectors]
        first = self._detectors[0]
        self.frame_length, self.sample_rate = first.frame_length, first.sample_rate
        step = self.frame_length // phases
        self._next = [k * step for k in range(phases)]  # where each detector's next frame starts in the buffer
        self._buffer = np.zeros(0, np.int16)
        self._quiet_frames = 0                        # frames left in the refractory period
        self._refractory = int(REFRACTORY_S * self.sample_rate / self.frame_length)
        self._gate = SoundGate(self.frame_length, self.sample_rate) if gated else None
        self._skipped: collections.deque = collections.deque(
            maxlen=max(1, round(GATE_PREROLL_S * self.sample_rate / self.frame_length)))
        self.frames = self.frames_run = 0   # frames given, and frames the detectors ran on

    def process(self, pcm) -> int:
        pcm = np.asarray(pcm, dtype=np.int16)
        self.frames += 1
        if self._gate is not None and pcm.size == self.frame_length and not self._gate.open(pcm):
            self._skipped.append(pcm)
            if self._quiet_frames > 0:
                self._quiet_frames -= 1
            return -1
        if self._skipped:   # start again a little before the sound, every phase from its own offset
            pcm = np.concatenate((*self._skipped, pcm))
            self._skipped.clear()
            self._buffer = np.zeros(0, np.int16)
            step = self.frame_length // len(self._calls)
            self._next = [k * step for k in range(len(self._calls))]
        self.frames_run += 1
        self._buffer = np.concatenate((self._buffer, pcm))
        heard = -1
        n = self.frame_length
        for k, call in enumerate(self._calls):
            while self._next[k] + n <= len(self._buffer):
                index = call(self._buffer[self._next[k]:self._next[k] + n])
                self._next[k] += n
                if index >= 0 and heard < 0:
                    heard = index
        done = min(self._next)
        self._buffer = self._buffer[done:]
        self._next = [i - done for i in self._next]
        if self._quiet_frames > 0:
            self._quiet_frames -= 1
            return -1
        if heard >= 0:
            self._quiet_frames = self._refractory
        return heard

    def delete(self) -> None:
        for detector in self._detectors:
            detector.delete()
        self._detectors, self._calls = [], []


OWN_VOICE_WINDOW_S = 0.8   # the stretch of audio the own-voice check looks at (about one "Jarvis")
OWN_VOICE_DB = -20.0       # while Jarvis talks, a wake counts only if the canceller kept more of the audio than this


class WakeDetector:
    """Hears the wake word on the wake stream and calls ``on_wake``.

    While Jarvis is talking, its own voice may say "Jarvis" too. The echo canceller removes Jarvis's voice almost
    entirely (30 dB and more) but keeps much of a person's: so a detection while the far end is active counts only
    when the canceller's output over the last ``OWN_VOICE_WINDOW_S`` holds more than ``OWN_VOICE_DB`` of the raw
    microphone's energy. Without a canceller (headphones) every detection counts.
    """

    def __init__(self, word: str, sensitivity: float, on_wake):
        self.detector = PhasedPorcupine([word], [sensitivity])
        self.on_wake = on_wake
        self.own_voice_rejected = 0
        self._pending = np.zeros(0, np.int16)
        window = int(OWN_VOICE_WINDOW_S * self.detector.sample_rate / self.detector.frame_length)
        self._energy: collections.deque = collections.deque(maxlen=window)  # (clean, raw) energy per frame
        self._far_frames = 0   # frames since the far end was last active

    def feed(self, wake: np.ndarray, clean: np.ndarray | None = None, raw: np.ndarray | None = None,
             far_active: bool = False) -> None:
        """``wake`` (float32 or int16, 16 kHz) and, with a canceller, the same stretch as ``clean`` and ``raw``."""
        pcm = wake if wake.dtype == np.int16 else np.clip(wake * 32768, -32768, 32767).astype(np.int16)
        self._pending = np.concatenate((self._pending, pcm))
        if far_active:
            self._far_frames = 0
        clean_energy = float(np.mean(np.square(clean, dtype=np.float64))) if clean is not None else 0.0
        raw_energy = float(np.mean(np.square(raw, dtype=np.float64))) if raw is not None else 0.0
        n = self.detector.frame_length
        while len(self._pending) >= n:
            frame, self._pending = self._pending[:n], self._pending[n:]
            self._energy.append((clean_energy, raw_energy))
            self._far_frames += 1
            if self.detector.process(frame) >= 0:
                if self._own_voice(raw is not None):
                    self.own_voice_rejected += 1
                    log.info("wake word in Jarvis's own voice ignored (echo canceller kept %.1f dB)",
                             self._kept_db())
                else:
                    self.on_wake()

    def _own_voice(self, cancelled: bool) -> bool:
        return cancelled and self._far_frames <= len(self._energy) and self._kept_db() < OWN_VOICE_DB

    def _kept_db(self) -> float:
        clean = sum(c for c, _ in self._energy)
        raw = sum(r for _, r in self._energy)
        return 10 * np.log10((clean + 1e-12) / (raw + 1e-12))

    def close(self) -> None:
        self.detector.delete()


class ExternalWake:
    """What RealtimeSTT calls as its Porcupine: it reports a wake word that ``WakeDetector`` heard (``trigger``),
    once, within ``EXPIRY_S``; RealtimeSTT then takes the command as after its own detection.

    RealtimeSTT asks only while it waits for a command, not while the last one is transcribed and answered; a wake
    word heard then (right after a command, or late under load) must still count when it asks next."""
    EXPIRY_S = 3.0

    def __init__(self, frame_length: int = 512, sample_rate: int = 16000):
        self.frame_length, self.sample_rate = frame_length, sample_rate
        self._until = 0.0

    def trigger(self) -> None:
        self._until = time.monotonic() + self.EXPIRY_S

    def process(self, pcm) -> int:
        if self._until and time.monotonic() <= self._until:
            self._until = 0.0
            return 0
        return -1

    def delete(self) -> None:
        pass


def install(recorder) -> ExternalWake:
    """Hand a RealtimeSTT recorder's wake-word decisions to Jarvis's own detector."""
    single = getattr(recorder, "porcupine", None)
    proxy = ExternalWake(getattr(single, "frame_length", 512), getattr(single, "sample_rate", 16000))
    recorder.porcupine = proxy
    if single is not None:
        single.delete()
    return proxy
