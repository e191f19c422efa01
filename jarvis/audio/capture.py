"""The one microphone stream: 16 kHz mono int16 blocks for wake word, STT and speaker ID.

The PortAudio callback only copies each buffer into a queue; a worker thread downmixes, resamples (when the
device does not take 16 kHz) and hands fixed-size blocks to ``on_block``. A slow consumer therefore never
makes the device overflow; it only grows the queue (and, once ~10 s behind, drops new audio, counted).
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Callable

import numpy as np

from jarvis.audio import devices
from jarvis.audio.stream_clock import StreamClock
from jarvis.errors import JarvisError, NotAvailable

log = logging.getLogger(__name__)

QUEUE_SECONDS = 10.0
STALL_SECONDS = 2.0  # no buffer from a running stream for this long = the device is gone
# While nothing waits on the next block (``relaxed``: Jarvis waits for its wake word, not recording or talking) the
# worker takes this much audio at a time (two 32 ms blocks, six or seven 10 ms ones): the echo canceller's, the
# wake word's and its own fixed cost per call is paid that much less often. The wake word is heard up to this much
# later (Porcupine itself reports it ~300 ms after the word); a command's end and a voice over Jarvis are not.
RELAXED_S = 0.064


class MicCapture:
    """Open with ``start()`` (or ``with``); ``stop()`` is idempotent and quick.

    ``on_block(int16 array of block_ms at rate)`` runs on the capture worker thread.
    ``on_error(JarvisError)`` runs there too when the device is lost; capture has stopped by then.
    ``device_rate`` forces the rate the device is opened at (else ``rate`` when supported, else its default).
    ``processor(float32 samples at rate, t_end)`` cleans the audio before it is cut into blocks (the echo
    canceller); ``t_end`` is the monotonic time the last sample was captured. It may return fewer samples.
    ``relaxed()``, asked before each piece of work, says nothing waits on the next block: up to ``RELAXED_S`` of
    audio is then gathered and handled at once.
    """

    def __init__(self, on_block: Callable[[np.ndarray], None], device: str = "", rate: int = 16000,
                 block_ms: int = 32, device_rate: int | None = None,
                 on_error: Callable[[JarvisError], None] | None = None,
                 processor: Callable[[np.ndarray, float], np.ndarray] | None = None):
        self.on_block = on_block
        self.on_error = on_error
        self.processor = processor
        self.relaxed: Callable[[], bool] | None = None
        self.device = device
        self.rate = rate
        self.block_ms = block_ms
        self.block_size = int(rate * block_ms / 1000)
        self.device_name = ""
        self.device_rate = device_rate or 0
        self._forced_rate = device_rate
        self.channels = 0
        self.overflows = 0          # buffers the device dropped (reported by PortAudio)
        self.dropped = 0            # buffers we dropped because the consumer fell ~10 s behind
        self.blocks = 0
        self._lock = threading.Lock()
        self._stream = None
        self._worker: threading.Thread | None = None
        self._queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._finished = threading.Event()
        self._last_buffer = 0.0
        self._clock = StreamClock()

    @property
    def running(self) -> bool:
        return self._stream is not None

    # -- life cycle -------------------------------------------------------------------------------
    @property
    def latency_s(self) -> float:
        """The input latency PortAudio reports for the open stream (0 when closed)."""
        stream = self._stream
        return float(stream.latency) if stream is not None else 0.0

    def start(self) -> "MicCapture":
        sd = devices._sd()
        with self._lock:
            if self._stream is not None:
                return self
            index = devices.resolve_input(self.device)
            info = devices.device_info(index, "input")
            self.device_name = info["name"]
            self.device_rate, self.channels = self._pick_format(index, int(info["default_samplerate"]))
            blocksize = max(1, round(self.device_rate * self.block_ms / 1000))
            self._queue = queue.Queue(maxsize=max(4, int(QUEUE_SECONDS * 1000 / self.block_ms)))
            self._stop = threading.Event()  # per run: a worker left over from the last run stays stopped
            self._finished = threading.Event()
            stream = None
            try:
                stream = sd.InputStream(device=index, samplerate=self.device_rate, channels=self.channels,
                                        dtype="float32", blocksize=blocksize, latency="low",
                                        callback=self._callback, finished_callback=self._finished.set)
                self._last_buffer = time.monotonic()
                stream.start()
            except sd.PortAudioError as exc:
                if stream is not None:
                    stream.close()
                raise NotAvailable("device_unusable", f"Cannot open the microphone '{self.device_name}' "
                                   f"({exc}). Close other programs using it or pick another input device, "
                                   "then run: jarvis doctor") from exc
            self._stream = stream
            self._worker = threading.Thread(target=self._work, args=(self._queue, self._stop, self._finished),
                                            name="jarvis-capture", daemon=True)
            self._worker.start()
        log.info("capture: %s at %d Hz, %d ch -> %d Hz mono, %d ms blocks", self.device_name,
                 self.device_rate, self.channels, self.rate, self.block_ms)
        return self

    def stop(self) -> None:
        with self._lock:
            stream, self._stream = self._stream, None
            worker, self._worker = self._worker, None
            self._stop.set()
        if stream is not None:
            devices.close_stream(stream, f"the microphone '{self.device_name}'")
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout=1.0)

    def __enter__(self) -> "MicCapture":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- internals --------------------------------------------------------------------------------
    def _pick_format(self, index: int | None, default_rate: int) -> tuple[int, int]:
        candidates = [self._forced_rate] if self._forced_rate else [self.rate, default_rate]
        for rate in candidates:
            channels = devices.stream_channels(index, rate, "input")
            if channels:
                return rate, channels
        rates = " or ".join(f"{r} Hz" for r in dict.fromkeys(candidates))
        raise NotAvailable("device_unusable", f"Cannot open the microphone '{self.device_name}' at {rates}. Check "
                           "it is connected (or your audio server is running) or pick another input device, "
                           "then run: jarvis doctor")

    def _callback(self, indata, frames, time_info, status) -> None:
        # PortAudio's thread: copy and go. Never block, never call user code here.
        now = self._last_buffer = time.monotonic()
        if status.input_overflow:
            self.overflows += 1
        # When the last sample of this buffer was captured, on the monotonic clock (the echo canceller aligns
        # the microphone with what was played by it): PortAudio's ADC time, exact whatever the wait for the GIL
        # (jarvis.audio.stream_clock). Backends without stream times report 0.
        adc = time_info.inputBufferAdcTime
        t_first = self._clock.to_monotonic(adc, time_info.currentTime) if adc else 0.0
        if not 0.0 <= now - t_first < 1.0:
            t_first = now - self.latency_s
        t_end = t_first + frames / self.device_rate
        try:
            self._queue.put_nowait((indata.copy(), t_end))
        except queue.Full:
            self.dropped += 1

    def _work(self, q: queue.Queue, stop: threading.Event, finished: threading.Event) -> None:
        resampler = None
        if self.device_rate != self.rate:
            import soxr
            resampler = soxr.ResampleStream(self.device_rate, self.rate, 1, dtype="float32")
        pending = np.zeros(0, np.float32)
        reported = (0, 0)
        heard_in = handed_out = 0  # device samples in, resampled samples out (their counts per block vary)
        while not stop.is_set():
            try:
                buf, t_end = q.get(timeout=0.05)
            except queue.Empty:
                if self._lost(stop, finished):
                    return
                continue
            relaxed = self.relaxed
            if relaxed is not None and relaxed():
                buf, t_end = self._gather(q, buf, t_end, stop)
            mono = buf[:, 0] if buf.shape[1] == 1 else buf.mean(axis=1, dtype=np.float32)
            if resampler is not None:
                heard_in += len(mono)
                mono = resampler.resample_chunk(mono)
                handed_out += len(mono)
                # The resampler hands back a varying count per block, lagging the input; its output is aligned
                # with the input's time, so its last sample was captured this much before the block's end.
                t_end -= heard_in / self.device_rate - handed_out / self.rate
            if self.processor is not None:
                mono = self.processor(mono, t_end)
            pending = np.concatenate((pending, mono)) if pending.size else mono
            while pending.size >= self.block_size and not stop.is_set():
                block, pending = pending[: self.block_size], pending[self.block_size:]
                self.blocks += 1
                try:
                    self.on_block(np.clip(block * 32768.0, -32768, 32767).astype(np.int16))
                except Exception:
                    log.exception("capture consumer failed on a block")
            if (self.overflows, self.dropped) != reported:
                reported = (self.overflows, self.dropped)
                log.warning("capture: %d input overflows, %d blocks dropped (consumer too slow)", *reported)

    def _gather(self, q: queue.Queue, buf: np.ndarray, t_end: float, stop: threading.Event
                ) -> tuple[np.ndarray, float]:
        """``buf`` and the buffers that come within ``RELAXED_S`` of it (a sleep, not a wake-up per buffer)."""
        missing = RELAXED_S - len(buf) / self.device_rate
        if missing > 0:
            stop.wait(missing)
        buffers = [buf]
        while True:
            try:
                more, t_end = q.get_nowait()
            except queue.Empty:
                break
            buffers.append(more)
        return (np.concatenate(buffers) if len(buffers) > 1 else buf), t_end

    def _lost(self, stop: threading.Event, finished: threading.Event) -> bool:
        """True (after stopping and reporting) when the stream ended or stalled without stop()."""
        stalled = time.monotonic() - self._last_buffer > STALL_SECONDS
        if stop.is_set() or not (finished.is_set() or stalled):
            return False
        error = NotAvailable("device_lost", f"The microphone '{self.device_name}' stopped delivering audio. "
                             "Check it is connected (or your audio server is running), then run: jarvis doctor")
        log.error("capture: %s", error)
        self.stop()
        if self.on_error is not None:
            try:
                self.on_error(error)
            except Exception:
                log.exception("capture on_error handler failed")
        return True


def record(seconds: float, device: str = "", on_open: Callable[[], None] | None = None) -> np.ndarray:
    """Record ``seconds`` from the microphone: float32 16 kHz mono in [-1, 1] (for enrollment). ``on_open()`` runs
    once the microphone is open (prompt the person then: opening it can take a moment on a busy machine, and what
    is said before is lost)."""
    need = int(round(seconds * 16000))
    blocks: list[np.ndarray] = []
    got = [0]
    done = threading.Event()
    failure: list[JarvisError] = []

    def on_block(block: np.ndarray) -> None:
        if got[0] < need:
            blocks.append(block)
            got[0] += block.size
        if got[0] >= need:
            done.set()

    def on_error(error: JarvisError) -> None:
        failure.append(error)
        done.set()

    with MicCapture(on_block, device=device, on_error=on_error):
        if on_open is not None:
            on_open()
        if not done.wait(seconds + STALL_SECONDS + 3.0) and not failure:
            raise NotAvailable("device_lost", "The microphone delivered no audio. Check it is connected "
                                              "(or your audio server is running), then run: jarvis doctor")
    if failure:
        raise failure[0]
    audio = np.concatenate(blocks)[:need] if blocks else np.zeros(0, np.int16)
    return audio.astype(np.float32) / 32768.0
