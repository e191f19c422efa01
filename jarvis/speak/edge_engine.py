"""Microsoft Edge's online voices through ``edge-tts``: free, no API key, MP3 decoded as it streams.

Runs only when the user lists "edge" in ``tts.engines``: the text leaves the machine.

edge-tts is asyncio; our engines are plain iterators called from any thread. Each engine owns one
private event loop in a daemon thread (started by ``load``, stopped by ``close``); ``synthesize``
submits the download there and receives MP3 bytes through a queue, decoding each piece with PyAV
as it arrives (24 kHz mono MP3 from the service, float32 24 kHz out). ``cancel`` is checked every
50 ms while waiting, and stopping early cancels the download.

Warm-up says one short word for real. The service is free and key-less, so this costs no money, and
it is the only check that proves the whole path (network, the service's current handshake, which
changes now and then and needs a newer edge-tts, and the voice name). The chain calls warm-up once
at start and, while the engine is down, at most once per retry interval (60 s): never per sentence.

``edge_tts`` and ``av`` are imported lazily, so importing this module costs nothing.
"""
from __future__ import annotations

import asyncio
import logging
import queue
import threading
from typing import AsyncIterator, Iterator

import numpy as np

from jarvis.errors import JarvisError, NotAvailable
from jarvis.speak.base import TtsEngine

log = logging.getLogger(__name__)

SAMPLE_RATE = 24000
SERVICE = "speech.platform.bing.com"
_DONE = object()
_POLL_S = 0.05


class Mp3Decoder:
    """MP3 bytes in arbitrary pieces → float32 mono chunks at ``rate``; call ``flush`` at the end."""

    def __init__(self, rate: int = SAMPLE_RATE) -> None:
        import av

        self.rate = rate
        self._codec = av.CodecContext.create("mp3", "r")
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        self._head = b""          # bytes held until we know whether an ID3v2 tag leads the stream
        self._skip = None         # bytes of the ID3v2 tag still to drop (None = not decided yet)
        self.bad_packets = 0
        self.samples = 0

    def feed(self, data: bytes) -> np.ndarray:
        data = self._strip_tag(bytes(data))
        return self._decode(self._codec.parse(data)) if data else np.zeros(0, dtype=np.float32)

    def flush(self) -> np.ndarray:
        out = []
        if self._head:  # a stream shorter than an ID3 header
            data, self._head, self._skip = self._head, b"", 0
            out.append(self._decode(self._codec.parse(data)))
        out.append(self._decode(self._codec.parse(b"")))
        out.append(self._decode([None]))
        out.append(self._frames_out(self._resampler.resample(None)))
        return np.concatenate(out)

    def _strip_tag(self, data: bytes) -> bytes:
        """Drop a leading ID3v2 tag (files have one; the raw parser chokes on it)."""
        if self._skip is None:
            data, self._head = self._head + data, b""
            if len(data) < 10 and b"ID3".startswith(data[:3]):
                self._head = data
                return b""
            if data[:3] == b"ID3":
                size = (data[6] & 0x7F) << 21 | (data[7] & 0x7F) << 14 | (data[8] & 0x7F) << 7 | (data[9] & 0x7F)
                self._skip = 10 + size + (10 if data[5] & 0x10 else 0)  # header + tag (+ footer)
            else:
                self._skip = 0
        if self._skip:
            dropped = min(self._skip, len(data))
            self._skip -= dropped
            data = data[dropped:]
        return data

    def _decode(self, packets) -> np.ndarray:
        import av

        out = []
        for packet in packets:
            try:
                frames = self._codec.decode(packet)
            except av.error.InvalidDataError:  # a damaged frame: skip it, keep the stream
                self.bad_packets += 1
                continue
            except av.error.EOFError:
                break
            for frame in frames:
                out.append(self._frames_out(self._resampler.resample(frame)))
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    def _frames_out(self, frames) -> np.ndarray:
        parts = [np.asarray(f.to_ndarray(), dtype=np.float32).reshape(-1) for f in frames]
        chunk = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        self.samples += chunk.size
        return chunk


class EdgeEngine(TtsEngine):
    """Edge voice ``voice`` (e.g. ``en-US-GuyNeural``; list them with ``edge-tts --list-voices``)."""

    placement = "a server (network)"
    name = "edge"
    sample_rate = SAMPLE_RATE

    def __init__(self, voice: str = "en-US-GuyNeural", connect_timeout_s: int = 5,
                 receive_timeout_s: int = 15) -> None:
        self.voice = (voice or "").strip()
        self.connect_timeout_s = int(connect_timeout_s)
        self.receive_timeout_s = int(receive_timeout_s)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._loop is not None:
                return
            try:
                import av  # noqa: F401  the MP3 decoder
                import edge_tts
            except ImportError as exc:
                raise NotAvailable("tts_engine_missing", f"The Edge voice needs edge-tts and PyAV: "
                                                         f"pip install edge-tts av ({exc.name} is missing)") from exc
            try:
                edge_tts.Communicate("x", self.voice)  # checks the voice name's form offline
            except (ValueError, TypeError) as exc:
                raise NotAvailable("unknown_voice", f"'{self.voice}' is not an Edge voice name: set "
                                                    f"tts.cloud.edge_voice to one like en-US-GuyNeural "
                                                    f"(edge-tts --list-voices lists them).") from exc
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=_run_loop, args=(loop,), name="edge-tts", daemon=True)
            thread.start()
            self._loop, self._thread = loop, thread

    def warmup(self) -> None:
        """One short real synthesis (free, no key); see the module docstring."""
        for _ in self.synthesize("Hi."):
            pass

    def synthesize(self, text: str, cancel: threading.Event | None = None) -> Iterator[np.ndarray]:
        if self._loop is None:
            self.load()
        if not text or not text.strip():
            return
        decoder = Mp3Decoder(SAMPLE_RATE)
        for data in self._mp3(text, cancel):
            chunk = decoder.feed(data)
            if cancel is not None and cancel.is_set():
                return
            if chunk.size:
                yield chunk
        if cancel is not None and cancel.is_set():
            return
        tail = decoder.flush()
        if tail.size:
            yield tail
        if decoder.samples == 0:
            raise NotAvailable("cloud_bad_audio", f"Edge sent audio that could not be decoded "
                                                  f"({decoder.bad_packets} bad MP3 frames).")

    def _mp3(self, text: str, cancel: threading.Event | None) -> Iterator[bytes]:
        """MP3 bytes from the service as they arrive; errors come out as one actionable line."""
        chunks: queue.Queue = queue.Queue()
        future = asyncio.run_coroutine_threadsafe(self._download(text, chunks), self._loop)
        try:
            while True:
                if cancel is not None and cancel.is_set():
                    return
                try:
                    item = chunks.get(timeout=_POLL_S)
                except queue.Empty:
                    continue
                if item is _DONE:
                    break
                yield item
            try:
                future.result(timeout=5)
            except JarvisError:
                raise
            except Exception as exc:
                raise self._explain(exc) from exc
        finally:
            future.cancel()  # stops the download when we stopped early; harmless when it is done

    async def _download(self, text: str, chunks: queue.Queue) -> None:
        try:
            async for data in self._messages(text):
                chunks.put(data)
        finally:
            chunks.put(_DONE)

    async def _messages(self, text: str) -> AsyncIterator[bytes]:
        import edge_tts

        communicate = edge_tts.Communicate(text, self.voice, connect_timeout=self.connect_timeout_s,
                                           receive_timeout=self.receive_timeout_s)
        async for message in communicate.stream():
            if message.get("type") == "audio" and message.get("data"):
                yield message["data"]

    def _explain(self, exc: Exception) -> Exception:
        """Network and service errors as one actionable line; anything else unchanged."""
        import aiohttp
        from edge_tts import exceptions as edge_errors

        status = getattr(exc, "status", None)
        if isinstance(exc, aiohttp.ClientResponseError) and status is not None:
            return NotAvailable("cloud_refused", f"Edge's speech service refused the connection (HTTP {status}); "
                                                 f"a newer edge-tts usually fixes this: pip install -U edge-tts.")
        if isinstance(exc, (aiohttp.ClientError, OSError, asyncio.TimeoutError, TimeoutError)):
            return NotAvailable("cloud_unreachable", f"Cannot reach Edge's speech service ({SERVICE}): check the "
                                                     f"internet connection ({_one_line(exc)}).")
        if isinstance(exc, edge_errors.NoAudioReceived):
            return NotAvailable("cloud_no_audio", f"Edge sent no audio for voice '{self.voice}': check "
                                                  f"tts.cloud.edge_voice (edge-tts --list-voices lists them).")
        if isinstance(exc, edge_errors.EdgeTTSException):
            return NotAvailable("cloud_error", f"Edge's speech service failed ({_one_line(exc)}); "
                                               f"try pip install -U edge-tts.")
        return exc

    def close(self) -> None:
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=2)
            if not thread.is_alive():
                loop.close()


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    loop.run_forever()


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:160]}" if lines else type(exc).__name__
