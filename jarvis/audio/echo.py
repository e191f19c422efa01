"""Acoustic echo cancellation on the one microphone stream: WebRTC's audio processing (AEC3) through livekit.

On open speakers the microphone hears Jarvis's own voice. The canceller subtracts it, using as the far-end
reference exactly what the player hands the output device (``FarEnd.push``, called from the player's device
callback with the time those samples will be heard). Everything that listens (wake word, VAD, Whisper, speaker
ID, enrollment through a tap) gets the cleaned audio.

Time alignment: far-end samples are laid on a 16 kHz timeline by the time they are heard, microphone samples by
the time they were captured (both from PortAudio's stream clocks). What is left between the two — the acoustic
path, the audio server's buffers, clock errors — is *estimated* from the signals themselves (a GCC-PHAT cross-
correlation of microphone and reference, repeated while Jarvis talks) and *tracked*: the reference handed to
AEC3 is shifted by that delay, less a small margin that AEC3's own delay estimator takes up. Whenever a timeline
is placed anew (the output ran dry and the device's reported time after it is a few ms off, a new output stream,
the capture clock jumped), the delay is confirmed from the first 0.4 s of Jarvis's speech after it, searched
only near the last one, and the linear canceller below is realigned to it to the sample.

Why livekit's binding (see benchmarks/results/aec-compare-cpu.json for the comparison): it is maintained,
ships manylinux/macOS/Windows wheels with WebRTC's current AEC3, and costs ~0.2 ms per 10 ms frame here.

The wake word gets a second, gentler stream. AEC3's residual-echo suppressor gates away much of a person's voice
while Jarvis talks (double talk), and Porcupine then misses "Jarvis". So the same frames, with the same aligned
reference, also go through Speex's linear canceller (``jarvis.audio.speex``), which removes less echo but keeps
the person whole; ``wake_tap(wake, clean, raw, far_active)`` gets that stream along with AEC3's output and the
raw microphone, so the wake-word detector can tell a person from Jarvis's own voice (``jarvis.listen.wake``).
Without libspeexdsp the wake stream is AEC3's output.

While the alignment is being confirmed, the wake word's frames wait for it (up to ``DEFER_MAX_S``) and then go
through the realigned linear canceller: the wake word hears them late rather than through AEC3's gate.

Speex's filter learns the room slowly (4 dB in its first second of Jarvis's speech, 10 dB after 3 s), and
until it has, a person under a loud echo is not heard. So while it is young (the first ``LEARN_S`` of Jarvis's
speech, and again after its alignment moved) it replays the last ``LEARN_S`` of (microphone, reference)
frames ``LEARN_PASSES`` more times every ``LEARN_EVERY_S``: with a person at -5 dB under the echo 1 to 3 s into
Jarvis's first reply, "Jarvis" was heard 23 of 24 times instead of 12 (6 starts x 4 moments, a recorded room).

For a bug report, ``JARVIS_ECHO_DUMP=<folder>`` keeps the last ``DUMP_S`` seconds of the raw microphone, the
aligned reference, AEC3's output and the wake stream, written there as WAVs when the canceller closes.
"""
from __future__ import annotations

import collections
import logging
import os
import threading
import time
from typing import Callable

import numpy as np

from jarvis.audio.aec3 import Aec3
from jarvis.errors import NotAvailable

log = logging.getLogger(__name__)

RATE = 16000
FRAME = RATE // 100                 # AEC3 works on 10 ms frames
TIMELINE_S = 4.0                    # far-end history kept (must cover the longest echo delay + estimation window)
MAX_DELAY_S = 0.5                   # echo delays searched by the estimator
ESTIMATE_WINDOW_S = 1.0             # signal used per estimate
ESTIMATE_EVERY_S = 0.5
EDGE = RATE // 200                  # 5 ms
# The reference is handed over this much before the estimated echo: AEC3 loses nothing with a reference up to
# ~300 ms early, but a reference 10 ms late drops it to ~5 dB (benchmarks/results/aec-compare-cpu.json), so an
# estimate a little off must err early.
MARGIN_S = 0.06
# A stream whose device times stray this far from its running sample count is re-anchored to them (PortAudio's
# DAC/ADC times wander by ~3 ms, jarvis.audio.stream_clock; an underflow re-anchors at once; the far end
# re-anchors when two blocks in a row stray alike, FarEnd._placed_anew).
RESYNC_S = 0.02
STRAY_MAX_S = 0.5                   # a block this far off starts a new run at once (a new reply, a new stream)
MIC_RESYNC_S = 0.02
# The linear canceller gets the reference this much before the estimated echo. Unlike AEC3 it has no delay
# estimator of its own: it must see the room at the same alignment from reply to reply, while the playback
# timeline, anchored anew by the device's times after an underflow or a stream restart, moves by up to ~10 ms.
LINEAR_MARGIN_S = 0.005
# A timeline placed a few ms late (the device's reported times are that far off) makes the echo *lead* the
# reference: no canceller removes an echo that comes before its reference, and the whole run of playback went
# uncancelled (the room benchmark at 0 dB echo: delays of -5 ms confirmed, both cancellers ~1 dB). So the
# reference may be read up to this far ahead of the microphone: the player hands audio to the device ~40 ms
# before it is heard, and a microphone block reaches the canceller after its own input latency.
AHEAD_MAX_S = 0.03
LINEAR_MOVE_S = 0.02                # within a run of playback, realign only for a change this large
LEARN_S = 3.0
LEARN_EVERY_S = 0.5
LEARN_PASSES = 2
DUMP_S = 120.0
REFERENCE_RMS = 1e-3                # below this the far end is silence: nothing to estimate from
PEAK_STRENGTH = 8.0                 # a correlation peak this many times its median is an echo
# After the timeline was placed anew (an underflow, a new output stream, the microphone re-anchored) the
# alignment is confirmed from this much of Jarvis's speech, searched this far around the last delay. Until then
# the wake word's canceller adapts to a reference a few ms off and loses what it learned: an underflow in a reply
# left Jarvis unable to hear "Jarvis" for 1.5 to 5 s (issue 12).
CONFIRM_WINDOW_S = 0.4
CONFIRM_SPREAD_S = 0.05
CONFIRM_EVERY_S = 0.1
# Meanwhile the wake word's frames wait, up to this long, and go through the linear canceller once it is
# realigned: "Jarvis" said just after an underflow is heard ~0.4 s late instead of not at all (run 7 of issue 12's
# e2e loop: an underflow and a microphone re-anchor 0.5 s apart left the wake word deaf for 0.9 s). Past it they
# go on with AEC3's output, as the rest of that placement does.
DEFER_MAX_S = 1.0

StateListener = Callable[[str, str], None]  # (state, one-line message)
WakeTap = Callable[[np.ndarray, np.ndarray, np.ndarray, bool], None]  # (wake, clean, raw, far end active)


def load_processor(noise_suppression: bool = False):
    """WebRTC's audio processing module (livekit); ``NotAvailable`` with one line when it cannot run here."""
    try:
        from livekit import rtc
    except Exception as exc:  # ImportError, or the native library failing to load
        raise NotAvailable("aec_missing", "Echo cancellation is unavailable (the livekit package is missing or "
                                          f"broken: {exc}); Jarvis listens without it. Run: scripts/setup.sh") from exc
    try:
        apm = rtc.AudioProcessingModule(echo_cancellation=True, noise_suppression=noise_suppression,
                                        high_pass_filter=True, auto_gain_control=False)
    except Exception as exc:
        raise NotAvailable("aec_failed", f"Echo cancellation failed to start ({exc}); Jarvis listens without it.") \
            from exc
    return rtc, apm


class FarEnd:
    """What Jarvis played, on a 16 kHz timeline indexed by the monotonic time each sample was heard.

    ``push`` runs on the player's device callback: it only queues. The canceller drains the queue (resampling
    to 16 kHz) on its own thread.
    """

    def __init__(self, seconds: float = TIMELINE_S):
        self._pending: collections.deque = collections.deque()
        self._ring = np.zeros(int(seconds * RATE), np.float32)
        self._written_to = 0        # absolute index (monotonic seconds * RATE) the ring holds audio up to
        # The current run of playback: where it started on the timeline, how much the device has played of it
        # (in 16 kHz samples, from the blocks' own lengths) and how much the resampler has handed back. The
        # resampler returns a varying count per block (none for the first, then a few more than the block's
        # length), so the run's position is counted on its input and its output is written from the start.
        self._run_start: int | None = None
        self._run_in = 0.0
        self._run_out = 0
        self._resampler = None
        self._rate = 0
        self.blocks = 0             # blocks pushed since start (for the "no reference" check)
        self.runs = 0               # runs of playback placed anew by their own device time
        self._stray: int | None = None  # how far off the last block's time was, when off by more than RESYNC_S
        self._last_push = float("-inf")  # monotonic time of the last push

    def push(self, block: np.ndarray, rate: int, t_heard: float, underflow: bool = False) -> None:
        """Device callback: ``block`` (float32 mono at ``rate``) starts to be heard at monotonic ``t_heard``.
        ``underflow``: the device ran dry before this block (what it held may have been dropped), so the block
        is placed by its own time, not after the previous one."""
        self._pending.append((block, rate, t_heard, underflow))
        self.blocks += 1
        self._last_push = time.monotonic()

    def quiet_for(self, seconds: float) -> bool:
        """Nothing was pushed for ``seconds`` (the player is not playing)."""
        return time.monotonic() - self._last_push >= seconds

    @property
    def run_start(self) -> int | None:
        """Where the current run of playback starts on the timeline (None before any)."""
        return self._run_start

    def drain(self) -> None:
        while self._pending:
            block, rate, t_heard, underflow = self._pending.popleft()
            if rate != self._rate:
                self._resampler, self._rate, self._run_start = None, rate, None
                if rate != RATE:
                    import soxr
                    # Low quality has one block of latency (high quality ~3): the reference must be there
                    # before the echo is; the canceller does not need more than the speech band.
                    self._resampler = soxr.ResampleStream(rate, RATE, 1, dtype="float32", quality="LQ")
            start = round(t_heard * RATE)
            expected = None if self._run_start is None else self._run_start + round(self._run_in)
            if self._placed_anew(start, expected, underflow):
                self.runs += 1
                if expected is not None:
                    log.debug("far end re-anchored by %+.1f ms%s", (start - expected) / RATE * 1000,
                              " (underflow)" if underflow else "")
                if self._resampler is not None:
                    self._resampler.clear()  # a new run starts at its own time, without the last one's tail
                self._run_start, self._run_in, self._run_out = start, 0.0, 0
            # else: the same run of playback, contiguous (the device's times wander by a few ms)
            data = self._resampler.resample_chunk(block) if self._resampler is not None else block
            self._write(self._run_start + self._run_out, np.asarray(data, np.float32))
            self._run_in += len(block) * RATE / rate
            self._run_out += len(data)

    def _placed_anew(self, start: int, expected: int | None, underflow: bool) -> bool:
        """Whether a block heard from ``start`` begins a new run rather than following the last block
        (``expected``): the first block, one after an underflow, or a time far off; a time a little off only when
        the next block is off by as much. One late callback's time is not a slip of the device: re-anchoring on it
        and back on the next block moved the echo canceller's reference twice (issue 12's e2e loop, under load)."""
        if expected is None or underflow or abs(start - expected) > STRAY_MAX_S * RATE:
            self._stray = None
            return True
        stray = start - expected
        if abs(stray) <= RESYNC_S * RATE:
            self._stray = None
            return False
        lasting = self._stray is not None and abs(stray - self._stray) <= RESYNC_S * RATE
        self._stray = None if lasting else stray
        return lasting

    def read(self, start: int, n: int) -> np.ndarray:
        """``n`` samples heard from absolute index ``start`` (zeros where nothing played or history is gone)."""
        out = np.zeros(n, np.float32)
        size = len(self._ring)
        lo, hi = max(start, self._written_to - size), min(start + n, self._written_to)
        if hi > lo:
            idx = np.arange(lo, hi) % size
            out[lo - start:hi - start] = self._ring[idx]
        return out

    def _write(self, start: int, data: np.ndarray) -> None:
        size = len(self._ring)
        end = start + len(data)
        if end <= self._written_to - size:
            return  # older than the history
        if start > self._written_to:  # silence between the last write and this block
            gap = min(start - self._written_to, size)
            self._ring[np.arange(start - gap, start) % size] = 0.0
        self._ring[np.arange(start, end) % size] = data
        self._written_to = max(self._written_to, end)


class DelayEstimator:
    """Echo delay between the reference timeline and the microphone, by GCC-PHAT over ``MAX_DELAY_S``.

    ``update`` gets matching windows (microphone, and the reference for the same capture times) and returns the
    delay in samples once two windows in a row agree on a clear correlation peak (within ``AGREE_S``), else None:
    one window fooled by speech that repeats itself, or by the audio server catching up, never moves the
    alignment.
    """
    AGREE_S = 0.008

    def __init__(self, max_delay_s: float = MAX_DELAY_S, ahead_s: float = 0.0):
        self.max_lag = int(max_delay_s * RATE)
        self.ahead = int(ahead_s * RATE)   # also search echoes up to this far *before* the reference
        self.delay: int | None = None
        self._last_peak: int | None = None

    def update(self, mic: np.ndarray, reference: np.ndarray) -> int | None:
        """``reference`` covers the same capture times as ``mic`` plus ``max_lag`` samples before them, all moved
        ``ahead`` samples later: an echo ``d`` samples late makes ``mic[j]`` follow
        ``reference[j + max_lag - ahead - d]`` (``d`` may be negative, down to ``-ahead``: a timeline placed late)."""
        found = _correlation_peak(mic, reference, self.max_lag)
        if found is None or found[1] < PEAK_STRENGTH or found[0] >= self.max_lag - EDGE or \
                (self.ahead and found[0] <= EDGE):
            self._last_peak = None
            return None  # no clear echo, or one at an end of the search range (a reference out of step)
        peak = found[0] - self.ahead
        previous, self._last_peak = self._last_peak, peak
        if previous is None or abs(peak - previous) > self.AGREE_S * RATE:
            return None
        self.delay = (peak + previous) // 2
        return self.delay

    def confirm(self, mic: np.ndarray, reference: np.ndarray, spread: int) -> int | None:
        """The delay, searched only within ``spread`` samples of the last one: after the timeline was placed anew
        (an underflow, a new stream, the microphone re-anchored) the room is the same and the error is that of
        the device's reported times, a few ms. ``reference`` starts ``delay + spread`` samples before ``mic``'s
        and is ``2 * spread`` samples longer. One clear window is enough: the search is too narrow for speech that
        repeats itself to fool it."""
        if self.delay is None:
            return None
        found = _correlation_peak(mic, reference, 2 * spread)
        if found is None or found[1] < PEAK_STRENGTH or not EDGE <= found[0] <= 2 * spread - EDGE:
            return None
        self.delay = self._last_peak = self.delay - spread + found[0]
        return self.delay

    def forget_last(self) -> None:
        """The next estimate must be confirmed by another (its window is on a timeline placed anew)."""
        self._last_peak = None


def _correlation_peak(mic: np.ndarray, reference: np.ndarray, max_lag: int) -> tuple[int, float] | None:
    """GCC-PHAT of ``mic`` against ``reference`` (``len(mic) + max_lag`` samples): (d, strength) where ``mic``
    follows ``reference`` ``d`` samples later than aligned at ``max_lag``, strength = peak / median; None while
    either is silence."""
    if np.sqrt(np.mean(reference ** 2)) < REFERENCE_RMS or np.sqrt(np.mean(mic ** 2)) < REFERENCE_RMS / 4:
        return None
    n = 1 << int(np.ceil(np.log2(len(reference) + len(mic))))
    spec = np.fft.rfft(reference, n) * np.conj(np.fft.rfft(mic, n))
    cc = np.fft.irfft(spec / (np.abs(spec) + 1e-9), n)  # cc[s] = sum reference[j + s] * mic[j], whitened
    shifts = cc[: max_lag + 1][::-1]  # the peak sits at s = max_lag - d: index by d
    peak = int(np.argmax(shifts))
    return peak, float(shifts[peak] / (np.median(np.abs(shifts)) + 1e-9))


class EchoCanceller:
    """Cleans 16 kHz mono microphone audio of what ``far_end`` recorded as played.

    ``process(samples, t_end)`` takes any number of samples (``t_end`` = monotonic capture time of the last one)
    and returns the cleaned samples processed so far: up to one 10 ms frame is held back until complete.
    A library failure while running switches to pass-through and tells ``on_state`` once.
    """

    def __init__(self, noise_suppression: bool = False, on_state: StateListener | None = None,
                 wake_tap: WakeTap | None = None):
        rtc, apm = load_processor(noise_suppression)
        self._aec3 = Aec3(rtc, apm, RATE, FRAME, delay_ms=int(MARGIN_S * 1000))
        self.noise_suppression = noise_suppression
        self.wake_tap = wake_tap
        self._linear = _linear_canceller()
        self.far_end = FarEnd()
        self.estimator = DelayEstimator(ahead_s=AHEAD_MAX_S)
        self.on_state = on_state or (lambda state, message: None)
        self.state = "on"
        self._held = np.zeros(0, np.float32)
        self._next_mic: int | None = None       # absolute index of the next microphone sample
        self._mic_history = np.zeros(int((ESTIMATE_WINDOW_S + 0.1) * RATE), np.float32)
        self._history_end = 0
        self._last_estimate = 0
        self._lag = 0                            # samples the reference is shifted by (estimated delay - margin)
        self._linear_lag = 0                     # the same for the linear canceller (delay - LINEAR_MARGIN_S)
        # The timelines were last placed anew (far end or microphone re-anchored) for the microphone from
        # ``_epoch``: estimates use windows after it. ``_unconfirmed``: the alignment has to be confirmed from
        # there (at first: found at all).
        self._epoch = 0
        self._unconfirmed = True
        self._far_runs = 0
        self._last_confirm = 0
        self._cpu = collections.deque(maxlen=3000)  # seconds per 10 ms frame (far + near), last 30 s
        self.frames = 0
        self._lock = threading.Lock()
        self._recent: collections.deque = collections.deque(maxlen=int(LEARN_S * RATE / FRAME))  # (index, mic pcm)
        self._learned = 0                        # frames of Jarvis's speech the linear canceller has learned from
        self.learning_s = 0.0                    # CPU seconds spent replaying
        # The wake word's frames, in order: ``_ready`` for the tap at the end of this ``process`` call,
        # ``_deferred`` waiting for the alignment to be confirmed (index, mic pcm, AEC3's output, raw, far active).
        self._ready: list[tuple[np.ndarray, np.ndarray, np.ndarray, bool]] = []
        self._deferred: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, bool]] = []
        self._defer_over = False                 # this placement waited ``DEFER_MAX_S``: AEC3's output from here
        self.deferred_frames = 0                 # frames the wake word got late, through the realigned canceller
        self._dump = _Dump(os.environ["JARVIS_ECHO_DUMP"]) if os.environ.get("JARVIS_ECHO_DUMP") else None

    # -- the microphone path -----------------------------------------------------------------------
    def process(self, samples: np.ndarray, t_end: float) -> np.ndarray:
        samples = np.asarray(samples, np.float32)
        if self.state == "unavailable":
            return self._passed_through(samples)
        end = round(t_end * RATE) + 1
        if self._next_mic is None or abs(end - (self._next_mic + len(samples))) > MIC_RESYNC_S * RATE:
            if self._next_mic is not None:
                log.debug("microphone re-anchored by %+.1f ms", (end - self._next_mic - len(samples)) / RATE * 1000)
                self._placed_anew(end - len(samples))
            self._next_mic = end - len(samples)  # first block, or the capture clock jumped: re-anchor
        with self._lock:
            self.far_end.drain()
        if self.far_end.runs != self._far_runs and self.far_end.run_start is not None:
            self._far_runs = self.far_end.runs
            # the new run's echo reaches the microphone a delay later
            self._placed_anew(self.far_end.run_start + (self.estimator.delay or 0))
        data = np.concatenate((self._held, samples)) if self._held.size else samples
        whole = len(data) // FRAME * FRAME
        self._held = data[whole:].copy()
        start = self._next_mic - (len(data) - len(samples))   # index of data[0]
        self._next_mic += len(samples)
        out = np.empty(whole, np.float32)
        try:
            for i in range(0, whole, FRAME):
                raw = data[i:i + FRAME]
                out[i:i + FRAME], linear, active = self._frame(raw, start + i)
                self._to_wake(start + i, raw, out[i:i + FRAME], linear, active)
        except Exception as exc:
            log.exception("echo canceller failed; listening without it")
            self.state = "unavailable"
            self.on_state("unavailable", f"Echo cancellation failed ({exc}); Jarvis listens without it.")
            self._ready, self._deferred = [], []
            return self._passed_through(data)
        self._remember(data[:whole], start + whole)
        self._tap_ready()
        return out

    # -- the wake word's stream --------------------------------------------------------------------
    def _to_wake(self, index: int, raw: np.ndarray, cleaned: np.ndarray, linear: np.ndarray | None,
                 active: bool) -> None:
        """One frame for the wake word: now, or (linear canceller held still, Jarvis's voice in it) once the
        alignment is confirmed."""
        held = linear is None and self._linear is not None and self._held_still(index)
        if held and not self._defer_over and (active or self._deferred):
            self._deferred.append((index, _pcm(raw), cleaned, raw, active))
            if len(self._deferred) * FRAME >= DEFER_MAX_S * RATE:
                log.debug("echo alignment not confirmed within %.1f s: the wake word hears AEC3's output",
                          DEFER_MAX_S)
                self._defer_over = True
                self._flush_deferred()
            return
        self._flush_deferred()
        self._ready.append((cleaned if linear is None else linear, cleaned, raw, active))

    def _flush_deferred(self) -> None:
        """The waiting frames go on as AEC3 cleaned them (their alignment will not be confirmed)."""
        self._ready.extend((cleaned, cleaned, raw, active) for _, _, cleaned, raw, active in self._deferred)
        self._deferred = []

    def _release_deferred(self) -> None:
        """The alignment is confirmed: the waiting frames go through the realigned linear canceller."""
        for index, mic_pcm, cleaned, raw, active in self._deferred:
            linear = self._linear.process(mic_pcm, self._linear_reference(index)).astype(np.float32) / 32768.0
            self._ready.append((linear, cleaned, raw, active))
        self.deferred_frames += len(self._deferred)
        self._deferred = []

    def _tap_ready(self) -> None:
        ready, self._ready = self._ready, []
        if self.wake_tap is not None and ready:
            self.wake_tap(*(np.concatenate([frame[k] for frame in ready]) for k in range(3)),
                          any(frame[3] for frame in ready))

    def _passed_through(self, samples: np.ndarray) -> np.ndarray:
        """Without a working canceller the microphone goes on as it is, to the wake word too."""
        if self.wake_tap is not None and samples.size:
            self.wake_tap(samples, samples, samples, False)
        return samples

    def _frame(self, mic: np.ndarray, index: int) -> tuple[np.ndarray, np.ndarray | None, bool]:
        """One 10 ms frame: (AEC3's output, the linear canceller's output or None (none here, or held still),
        whether Jarvis was heard)."""
        reference = self.far_end.read(index - self._lag, FRAME)
        t0 = time.perf_counter()
        far_pcm, mic_pcm = _pcm(reference), _pcm(mic)
        cleaned = self._aec3.process(mic_pcm, far_pcm).astype(np.float32) / 32768.0
        linear = None
        if self._linear is not None and self._held_still(index):
            # The timelines were placed anew and the alignment is not confirmed yet: the linear filter is left
            # as it learned the room (realigned to the sample once confirmed, it cancels at once), not adapting
            # to a reference a few ms off; the frame waits for it (``_to_wake``).
            self._recent.append((index, mic_pcm))
        elif self._linear is not None:
            linear_far = far_pcm if self._linear_lag == self._lag else self._linear_reference(index)
            linear = self._linear.process(mic_pcm, linear_far).astype(np.float32) / 32768.0
            self._recent.append((index, mic_pcm))
            if far_pcm.any() and self._learned < self._recent.maxlen:
                self._learned += 1
                if self._learned % int(LEARN_EVERY_S * RATE / FRAME) == 0:
                    self._replay()
        self._cpu.append(time.perf_counter() - t0)
        self.frames += 1
        if self._dump is not None:
            self._dump.add(mic, reference, cleaned, linear if linear is not None else cleaned)
        return cleaned, linear, bool(far_pcm.any())

    def _held_still(self, index: int) -> bool:
        return self._unconfirmed and self.estimator.delay is not None and index >= self._epoch

    def _linear_reference(self, index: int) -> np.ndarray:
        return _pcm(self.far_end.read(index - self._linear_lag, FRAME))

    def _replay(self) -> None:
        """While the linear canceller is young, replay the recent frames to it (see the module's docstring), with
        the reference at today's alignment. The replay ends on the frame just processed, so the canceller's
        far-end history stays that of now."""
        t0 = time.perf_counter()
        recent = [(index, mic) for index, mic in self._recent if index >= self._epoch]  # today's timelines only
        for _ in range(LEARN_PASSES):
            for index, mic in recent:
                self._linear.process(mic, self._linear_reference(index))
        self.learning_s += time.perf_counter() - t0

    # -- delay tracking ----------------------------------------------------------------------------
    def _placed_anew(self, index: int) -> None:
        """A timeline was placed anew for the microphone from ``index`` on: confirm the alignment from there."""
        if self.estimator.delay is None:
            return  # nothing aligned yet: the first estimate aligns
        self._epoch = max(self._epoch, index)
        self._unconfirmed = True
        self.estimator.forget_last()
        self._flush_deferred()  # frames of the last placement, whose alignment is now unknown
        self._defer_over = False

    def _remember(self, mic: np.ndarray, end: int) -> None:
        """Keep the raw microphone history; re-estimate the echo delay every ``ESTIMATE_EVERY_S`` while Jarvis
        talks, and confirm it soon after the timelines were placed anew."""
        hist = self._mic_history
        n = min(len(mic), len(hist))
        if n == 0:
            return
        hist[:-n] = hist[n:]
        hist[-n:] = mic[-n:]
        self._history_end = end
        if self._unconfirmed and self.estimator.delay is not None:
            self._confirm(end)
        if end - self._last_estimate < ESTIMATE_EVERY_S * RATE:
            return
        window = int(ESTIMATE_WINDOW_S * RATE)
        if end - window < self._epoch:
            return  # the window would straddle two placements of the timelines
        self._last_estimate = end
        mic_window = hist[-window:]
        est = self.estimator
        reference = self.far_end.read(end - window - est.max_lag + est.ahead, window + est.max_lag)
        delay = est.update(mic_window, reference)
        if delay is not None:
            self._aligned(delay)

    def _confirm(self, end: int) -> None:
        window = int(CONFIRM_WINDOW_S * RATE)
        if end - window < self._epoch or end - self._last_confirm < CONFIRM_EVERY_S * RATE:
            return
        self._last_confirm = end
        spread = int(CONFIRM_SPREAD_S * RATE)
        reference = self.far_end.read(end - window - self.estimator.delay - spread, window + 2 * spread)
        delay = self.estimator.confirm(self._mic_history[-window:], reference, spread)
        if delay is not None:
            log.debug("echo delay confirmed: %.1f ms", delay / RATE * 1000)
            self._aligned(delay)

    def _aligned(self, delay: int) -> None:
        """A delay estimate: move the references if it differs (the linear canceller's by more than
        ``LINEAR_MOVE_S``, or at all when it confirms the alignment after the timelines were placed anew)."""
        # read ahead only when the echo leads the timeline, and only as far as the linear canceller needs
        floor = max(-int(AHEAD_MAX_S * RATE), min(0, delay - int(LINEAR_MARGIN_S * RATE)))
        lag = max(floor, delay - int(MARGIN_S * RATE))
        if abs(lag - self._lag) > 0.008 * RATE:  # move only for a real change: AEC3 reconverges after a jump
            log.info("echo delay %.0f ms (reference shifted %.0f -> %.0f ms)", delay / RATE * 1000,
                     self._lag / RATE * 1000, lag / RATE * 1000)
            self._lag = lag
        # Within one placement of the timelines they are contiguous: a different estimate there is the reverb's
        # reflections competing for the peak, not a move, unless it is large.
        linear_lag = max(floor, delay - int(LINEAR_MARGIN_S * RATE))
        confirming, self._unconfirmed = self._unconfirmed, False
        if self._linear is None:
            return
        moved = abs(linear_lag - self._linear_lag)
        if moved > (0 if confirming else LINEAR_MOVE_S * RATE):
            # The room did not move, the timeline did: realign.
            log.debug("linear canceller realigned: %.1f -> %.1f ms", self._linear_lag / RATE * 1000,
                      linear_lag / RATE * 1000)
            self._linear_lag = linear_lag
        elif not confirming:
            return
        # Relearn from what was heard since the timelines were placed anew (the filter adapted to the wrong
        # alignment meanwhile).
        self._learned = 0
        self._replay()
        if confirming:
            self._release_deferred()

    # -- figures -----------------------------------------------------------------------------------
    @property
    def delay_ms(self) -> float | None:
        d = self.estimator.delay
        return None if d is None else d / RATE * 1000

    def close(self) -> None:
        if self._linear is not None:
            self._linear.close()
        if self._dump is not None:
            self._dump.write()

    def stats(self) -> dict:
        cpu = np.asarray(self._cpu) * 1000 if self._cpu else np.zeros(1)
        return {"state": self.state, "frames": self.frames, "noise_suppression": self.noise_suppression,
                "cpu_ms_p50": round(float(np.percentile(cpu, 50)), 4),
                "cpu_ms_p95": round(float(np.percentile(cpu, 95)), 4),
                "delay_ms": None if self.delay_ms is None else round(self.delay_ms, 1),
                # samples wait for a whole 10 ms frame (5 ms on average), then the frame's processing time
                "added_latency_ms": round(FRAME / 2 / RATE * 1000 + float(np.percentile(cpu, 50)), 2),
                "reference_blocks": self.far_end.blocks, "wake_stream": "speex" if self._linear else "aec3",
                "wake_stream_learning_cpu_s": round(self.learning_s, 3)}


def _pcm(samples: np.ndarray) -> np.ndarray:
    return np.clip(samples * 32768.0, -32768, 32767).astype(np.int16)


def _linear_canceller():
    """Speex's linear canceller for the wake-word stream, or None without libspeexdsp (said once in the log)."""
    from jarvis.audio.speex import SpeexEcho
    from jarvis.errors import JarvisError

    try:
        return SpeexEcho(FRAME, tail_ms=256, rate=RATE)
    except JarvisError as exc:
        log.warning("%s The wake word listens to WebRTC's output instead.", exc.message)
        return None


class _Dump:
    """The canceller's streams, last ``DUMP_S`` seconds, for ``JARVIS_ECHO_DUMP``."""
    NAMES = ("mic", "reference", "aec3", "wake")

    def __init__(self, folder: str):
        self.folder = folder
        self.frames = collections.deque(maxlen=int(DUMP_S * RATE / FRAME))

    def add(self, *streams: np.ndarray) -> None:
        self.frames.append(tuple(np.array(s, np.float32) for s in streams))

    def write(self) -> None:
        import soundfile

        os.makedirs(self.folder, exist_ok=True)
        for k, name in enumerate(self.NAMES):
            data = np.concatenate([f[k] for f in self.frames]) if self.frames else np.zeros(0, np.float32)
            soundfile.write(os.path.join(self.folder, f"{name}.wav"), data, RATE, subtype="FLOAT")
        log.info("echo canceller streams written to %s", self.folder)
