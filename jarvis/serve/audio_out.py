"""Speech as the OpenAI speech API returns it: 24 kHz mono in wav, pcm (16-bit little-endian, no header), mp3,
opus (in Ogg), flac or aac, encoded chunk by chunk as the TTS chain makes them (the response streams).

The engines' rates differ (Piper 22050 Hz, CSM 24000 Hz) and a fallback can change it mid-reply: everything is
resampled to 24 kHz first. WAV streams with its sizes set to 0xFFFFFFFF (unknown), as OpenAI's does; the
compressed formats go through PyAV (FFmpeg's encoders, in the ``av`` wheel).
"""
from __future__ import annotations

import struct
from typing import Iterable, Iterator

import numpy as np

RATE = 24000
MEDIA_TYPES = {"wav": "audio/wav", "pcm": "audio/pcm", "mp3": "audio/mpeg", "opus": "audio/ogg",
               "flac": "audio/flac", "aac": "audio/aac"}
_AV = {"mp3": ("mp3", "libmp3lame"), "opus": ("ogg", "libopus"), "flac": ("flac", "flac"), "aac": ("adts", "aac")}
MIN_SPEED, MAX_SPEED = 0.25, 4.0


def encode(chunks: Iterable[tuple[int, np.ndarray]], fmt: str, speed: float = 1.0) -> Iterator[bytes]:
    """Bytes of ``fmt`` for ``(rate, float32 chunk)`` pairs, as they come."""
    pcm = _int16(_at_rate(chunks), speed)
    if fmt == "pcm":
        yield from pcm
    elif fmt == "wav":
        yield _wav_header(RATE)
        yield from pcm
    else:
        yield from _av_encode(pcm, *_AV[fmt])


def _at_rate(chunks: Iterable[tuple[int, np.ndarray]]) -> Iterator[np.ndarray]:
    import soxr

    resampler, rate = None, None
    for chunk_rate, chunk in chunks:
        if chunk_rate != rate:
            if resampler is not None:
                yield resampler.resample_chunk(np.zeros(0, np.float32), last=True)
            rate = chunk_rate
            resampler = soxr.ResampleStream(rate, RATE, 1, dtype="float32") if rate != RATE else None
        data = np.asarray(chunk, np.float32).reshape(-1)
        yield resampler.resample_chunk(data) if resampler is not None else data
    if resampler is not None:
        yield resampler.resample_chunk(np.zeros(0, np.float32), last=True)


def _int16(chunks: Iterator[np.ndarray], speed: float) -> Iterator[bytes]:
    if speed != 1.0:
        chunks = _tempo(chunks, speed)
    for chunk in chunks:
        if chunk.size:
            yield (np.clip(chunk, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def _tempo(chunks: Iterator[np.ndarray], speed: float) -> Iterator[np.ndarray]:
    """Faster or slower at the same pitch: FFmpeg's ``atempo`` (0.5-2 per stage, chained beyond)."""
    import av
    from av.filter import Graph

    graph = Graph()
    previous = graph.add_abuffer(format="flt", sample_rate=RATE, layout="mono", time_base=f"1/{RATE}")
    stages, left = [], speed
    while left > 2.0:
        stages, left = stages + [2.0], left / 2.0
    while left < 0.5:
        stages, left = stages + [0.5], left / 0.5
    for factor in stages + [left]:
        stage = graph.add("atempo", f"{factor:.6f}")
        previous.link_to(stage)
        previous = stage
    sink = graph.add("abuffersink")
    previous.link_to(sink)
    graph.configure()

    def pulled() -> Iterator[np.ndarray]:
        while True:
            try:
                yield graph.pull().to_ndarray().reshape(-1)
            except (av.BlockingIOError, av.EOFError):
                return

    pts = 0
    for chunk in chunks:
        if not chunk.size:
            continue
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk, np.float32).reshape(1, -1), format="flt",
                                           layout="mono")
        frame.sample_rate, frame.pts = RATE, pts
        pts += chunk.size
        graph.push(frame)
        yield from pulled()
    graph.push(None)
    yield from pulled()


def _wav_header(rate: int) -> bytes:
    unknown = 0xFFFFFFFF
    return (b"RIFF" + struct.pack("<I", unknown) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2,
                                                                            2, 16)
            + b"data" + struct.pack("<I", unknown))


def _av_encode(pcm: Iterator[bytes], container_format: str, codec: str) -> Iterator[bytes]:
    import av

    out = _Sink()
    container = av.open(out, mode="w", format=container_format)
    stream = container.add_stream(codec, rate=RATE, layout="mono")
    pts = 0
    drained = out.drained

    for block in pcm:
        samples = np.frombuffer(block, dtype="<i2").reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate, frame.pts = RATE, pts
        pts += samples.shape[1]
        for packet in stream.encode(frame):
            container.mux(packet)
        data = drained()
        if data:
            yield data
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    data = drained()
    if data:
        yield data


class _Sink:
    """Where the muxer writes; it cannot seek, so the muxer never goes back to patch a header (which was already
    sent)."""

    def __init__(self):
        self._parts: list[bytes] = []

    def write(self, data) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def drained(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data
