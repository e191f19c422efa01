"""Playback of streamed float32 mono audio, stoppable from any thread within a few blocks (barge-in).

A feeder thread pulls the (possibly slow) chunk generator and queues samples; the PortAudio callback copies
~20 ms blocks from that queue and plays silence while the generator is behind, so the device never blocks
``stop()``. ``stop()`` marks the playback stopped (the next callback plays nothing) and returns; the generator
is closed by the feeder once its current chunk is done. ``pause()`` plays silence keeping the place (a person
talking over Jarvis, jarvis.listen.spoken_over) until ``resume()`` or ``stop()``.

The stream stays open and plays silence for ``KEEP_OPEN_S`` after a reply, so the next reply goes on the same
device clock: the echo canceller's reference (``on_output``) then runs on one unbroken timeline, and its
alignment with the microphone, learned on one reply, holds for the next (a stream started anew is placed by
the device's reported times, which differ by several ms from start to start).
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Callable, Iterable

import numpy as np

from jarvis.audio import devices
from jarvis.audio.stream_clock import StreamClock
from jarvis.errors import NotAvailable
from jarvis.events import in_turn_thread

log = logging.getLogger(__name__)

BLOCK_MS = 20
# What the device holds beyond the block being handed over: the callback may come this late (the GIL, a busy
# machine) before the device runs dry. With 10 ms blocks and PortAudio's "low" latency (two blocks: 10 ms spare)
# the speaker ran dry 2-3 times in every 24-turn pipeline bench on 2 cores; with 20 ms spare 0-2 times, as 20 ms
# blocks did (2026-12-06, README).
SPARE_S = 0.02
MAX_AHEAD_S = 30.0   # the feeder stops pulling the generator this far ahead of the device
STALL_SECONDS = 2.0  # no device callback for this long = the device is gone
KEEP_OPEN_S = 30.0   # the stream plays silence this long after a reply before it stops


class _Playback:
    """State shared by one play() call, its feeder thread and the device callback."""

    def __init__(self):
        self.chunks: collections.deque[np.ndarray] = collections.deque()
        self.head = np.zeros(0, np.float32)
        self.queued = 0               # samples in ``chunks`` (approximate; only for back-pressure)
        self.fed = threading.Event()  # the generator is exhausted (or failed)
        self.started = threading.Event()
        self.done = threading.Event()
        self.stopped = False
        self.paused = False           # plays silence, keeps its place (a person spoke over Jarvis)
        self.completed = False        # the callback reached the end (vs the stream dying under us)
        self.tail: int | None = None  # frames of trailing silence still to play
        self.error: BaseException | None = None

    def read(self, out: np.ndarray) -> int:
        """Copy up to ``len(out)`` samples into ``out``; returns how many."""
        n = 0
        while n < len(out):
            if not self.head.size:
                if not self.chunks:
                    break
                self.head = self.chunks.popleft()
                self.queued -= self.head.size
            take = min(len(out) - n, self.head.size)
            out[n:n + take] = self.head[:take]
            self.head = self.head[take:]
            n += take
        return n


class Player:
    """``play()`` blocks until the audio has been heard (True) or ``stop()`` ended it (False).

    ``device_rate`` forces the rate the device is opened at (else the audio's rate when supported, else the
    device default); audio at any other rate is resampled.
    """

    def __init__(self, device: str = "", block_ms: int = BLOCK_MS, device_rate: int | None = None,
                 on_output: Callable[[np.ndarray, int, float, bool], None] | None = None):
        self.device = device
        # Called on the device callback with every block handed to the device (float32 mono, its rate, the
        # monotonic time it starts to be heard, whether the device ran dry before it): the echo canceller's
        # far-end reference. Must only queue.
        self.on_output = on_output
        self.block_ms = block_ms
        self._forced_rate = device_rate
        self.device_name = ""
        self.device_rate = 0
        self.channels = 0
        self._opened_for: tuple[str, int] | None = None  # (device, audio rate) of the open stream
        self._stream = None
        self._lock = threading.RLock()
        self._current: _Playback | None = None
        self._last_callback = 0.0
        self._idle_since = 0.0        # when the open stream last finished playing something
        self.underflows = 0           # blocks the device ran dry before, while a reply played (heard as clicks)
        self._clock = StreamClock()

    @property
    def latency_s(self) -> float:
        """The output latency PortAudio reports for the open stream (0 when none is open)."""
        stream = self._stream
        return float(stream.latency) if stream is not None else 0.0

    @property
    def is_playing(self) -> bool:
        pb = self._current
        return pb is not None and not pb.stopped and not pb.done.is_set()

    def play_stream(self, stream: Iterable[tuple[int, np.ndarray]],
                    on_start: Callable[[], None] | None = None) -> bool:
        """Play (rate, chunk) pairs from a TTS chain; reopens at a new rate if the chain switches engine.

        ``on_start`` fires once, at the first audible block. True if it all played, False if stopped.
        """
        for rate, chunks in _runs_by_rate(stream):
            if not self.play(chunks, rate, on_start=on_start):
                return False
            on_start = None
        return True

    def play(self, chunks: Iterable[np.ndarray], rate: int,
             on_start: Callable[[], None] | None = None) -> bool:
        """Play float32 mono ``chunks`` at ``rate`` Hz; ``on_start`` fires when the first sound reaches the device."""
        pb = _Playback()
        with self._lock:
            if self._current is not None:
                self._stop_locked()
            stream = self._open(rate)
            self._idle_since = time.monotonic()  # the silence in between must not end the stream under us
            self._current = pb
            # The feed runs the reply's generator, whose events (first audio, the LLM's first token) are the turn's.
            threading.Thread(target=in_turn_thread(self._feed, pb, chunks, rate, self.device_rate),
                             name="jarvis-play-feed", daemon=True).start()
            try:
                if not stream.active:   # new, or stopped itself after KEEP_OPEN_S of silence
                    if not stream.stopped:
                        stream.stop()
                    self._last_callback = time.monotonic()
                    stream.start()
            except Exception as exc:
                pb.stopped = True
                self._current = None
                self._drop_stream()
                raise NotAvailable("device_unusable", f"Cannot play on '{self.device_name}' ({exc}). Check "
                                   "the speakers or pick another output device, then run: jarvis doctor") from exc
        lost = False
        while not pb.done.is_set():
            if on_start is not None and pb.started.wait(0.05):
                if not pb.stopped:
                    on_start()
                on_start = None
            elif on_start is None:
                pb.done.wait(0.05)
            if time.monotonic() - self._last_callback > STALL_SECONDS:
                lost = pb.stopped = True
                break
        if on_start is not None and pb.started.is_set() and not pb.stopped:
            on_start()
        lost = lost or not (pb.stopped or pb.completed)
        with self._lock:
            if self._current is pb:
                self._current = None   # the stream goes on with silence (KEEP_OPEN_S)
                self._idle_since = time.monotonic()
            if lost:
                self._drop_stream()
        if lost:
            raise NotAvailable("device_lost", f"The output device '{self.device_name}' stopped playing. Check "
                               "it is connected (or your audio server is running), then run: jarvis doctor")
        if pb.error is not None:
            raise pb.error
        return not pb.stopped

    def pause(self) -> None:
        """Play silence from the next block on, keeping the place: ``resume()`` goes on from there, ``stop()``
        ends it. The generator keeps being read meanwhile."""
        pb = self._current
        if pb is not None:
            pb.paused = True

    def resume(self) -> None:
        pb = self._current
        if pb is not None:
            pb.paused = False

    def stop(self) -> None:
        """End the current playback now (thread-safe, idempotent); queued audio is dropped."""
        with self._lock:
            self._stop_locked()

    def close(self) -> None:
        with self._lock:
            self._stop_locked()
            self._drop_stream()

    # -- internals --------------------------------------------------------------------------------
    def _stop_locked(self) -> None:
        pb = self._current
        if pb is None or pb.done.is_set():
            return
        pb.stopped = True   # the next callback plays silence; the device plays out the block it holds
        pb.done.set()

    def _open(self, rate: int):
        if self._stream is not None and self._opened_for == (self.device, rate) and not self._stream.closed:
            return self._stream
        self._drop_stream()
        sd = devices._sd()
        index = devices.resolve_output(self.device)
        info = devices.device_info(index, "output")
        self.device_name = info["name"]
        candidates = [self._forced_rate] if self._forced_rate else [rate, int(info["default_samplerate"])]
        for device_rate in dict.fromkeys(candidates):
            channels = devices.stream_channels(index, device_rate, "output")
            if channels:
                break
        else:
            rates = " or ".join(f"{r} Hz" for r in dict.fromkeys(candidates))
            raise NotAvailable("device_unusable", f"Cannot open the output device '{self.device_name}' at {rates}. "
                               "Check it is connected (or your audio server is running) or "
                               "pick another output device, then run: jarvis doctor")
        try:
            self._stream = sd.OutputStream(device=index, samplerate=device_rate, channels=channels, dtype="float32",
                                           blocksize=max(1, round(device_rate * self.block_ms / 1000)),
                                           latency=self.block_ms / 1000 + SPARE_S, callback=self._callback,
                                           finished_callback=self._finished)
        except sd.PortAudioError as exc:
            raise NotAvailable("device_unusable", f"Cannot open the output device '{self.device_name}' ({exc}). "
                               "Close other programs using it or pick another, then run: jarvis doctor") from exc
        self._opened_for, self.device_rate, self.channels = (self.device, rate), device_rate, channels
        log.info("player: %s at %d Hz, %d ch (audio at %d Hz)", self.device_name, device_rate, channels, rate)
        return self._stream

    def _drop_stream(self) -> None:
        stream, self._stream, self._opened_for = self._stream, None, None
        if stream is not None:
            devices.close_stream(stream, f"the speaker '{self.device_name}'")

    @staticmethod
    def _feed(pb: _Playback, chunks: Iterable[np.ndarray], rate: int, device_rate: int) -> None:
        """Pull the generator into ``pb.chunks`` (resampled to the device rate) until done or stopped."""
        resampler = None
        if device_rate != rate:
            import soxr
            resampler = soxr.ResampleStream(rate, device_rate, 1, dtype="float32")
        iterator = iter(chunks)
        ahead = int(MAX_AHEAD_S * device_rate)
        try:
            for chunk in iterator:
                if pb.stopped:
                    break
                data = _as_mono_float(chunk)
                if resampler is not None:
                    data = resampler.resample_chunk(data)
                if data.size:
                    pb.queued += data.size
                    pb.chunks.append(data)
                while pb.queued > ahead and not pb.stopped:
                    time.sleep(0.05)
            if resampler is not None and not pb.stopped:
                tail = resampler.resample_chunk(np.zeros(0, np.float32), last=True)
                if tail.size:
                    pb.queued += tail.size
                    pb.chunks.append(tail)
        except BaseException as exc:  # a failing TTS engine must not leave play() waiting forever
            log.exception("player: audio source failed")
            pb.error = exc
        finally:
            pb.fed.set()
            close = getattr(iterator, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    pass

    def _callback(self, outdata, frames, time_info, status) -> None:
        now = self._last_callback = time.monotonic()
        pb = self._current
        playing = pb is not None and not pb.stopped and not pb.done.is_set()
        mono = outdata[:, 0]
        n = pb.read(mono) if playing and not pb.paused else 0
        if n < frames:
            mono[n:] = 0
        if outdata.shape[1] > 1:
            outdata[:, 1:] = mono[:, None]
        if self.on_output is not None:
            # Heard once the device has played what it already holds: PortAudio's DAC time, exact whatever the
            # wait for the GIL (jarvis.audio.stream_clock); backends without stream times report 0.
            self.on_output(mono.copy(), self.device_rate, self._heard_at(time_info, now),
                           bool(status.output_underflow))
        if playing and status.output_underflow:
            self.underflows += 1
        if not playing:
            if now - self._idle_since > KEEP_OPEN_S:
                raise devices._sd().CallbackStop
            return
        if n and not pb.started.is_set():
            pb.started.set()
        if n < frames and not pb.paused and pb.fed.is_set() and not pb.chunks and not pb.head.size:
            # Count the device latency of silence after the last sample, so play() returns when the end is heard.
            if pb.tail is None:
                pb.tail = int(self._stream.latency * self.device_rate) + frames
            pb.tail -= frames - n
            if pb.tail <= 0:
                pb.completed = True
                self._idle_since = now
                pb.done.set()

    def _heard_at(self, time_info, now: float) -> float:
        """When the block handed over in this callback starts to be heard, on the monotonic clock."""
        dac = time_info.outputBufferDacTime
        if not dac:
            return now + self.latency_s   # a backend without stream times: what the device holds plays first
        heard = self._clock.to_monotonic(dac, time_info.currentTime)
        if heard < now:
            # The callback ran after its block was due (it waited for the GIL longer than the device's buffer
            # lasted): the device has run dry and plays the block as soon as it has it. Counting the latency
            # on top placed it ~40 ms late, and the next block, on time again, moved the echo canceller's
            # reference back: two re-alignments per slip, each leaving the wake word half-deaf (issue 12's e2e
            # loop under load).
            return now
        return heard if heard - now < 1.0 else now + self.latency_s

    def _finished(self) -> None:
        pb = self._current
        if pb is not None:
            pb.done.set()


def _as_mono_float(chunk) -> np.ndarray:
    data = np.asarray(chunk)
    if data.dtype == np.int16:
        data = data.astype(np.float32) / 32768.0
    data = data.astype(np.float32, copy=False)
    if data.ndim == 2:
        data = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    return np.ascontiguousarray(data.reshape(-1))


def _runs_by_rate(stream: Iterable[tuple[int, np.ndarray]]):
    """Group a (rate, chunk) stream into consecutive runs of one rate, each a lazy chunk iterator.

    A reply normally has one rate; it changes only when the fallback chain switches engine.
    """
    stream = iter(stream)
    head = next(stream, None)
    while head is not None:
        rate, box = head[0], [None]

        def run(first=head[1], rate=rate, box=box):
            yield first
            for chunk_rate, chunk in stream:
                if chunk_rate != rate:
                    box[0] = (chunk_rate, chunk)
                    return
                yield chunk

        yield rate, run()
        head = box[0]
