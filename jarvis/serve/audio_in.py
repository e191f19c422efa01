"""Uploaded audio (any format FFmpeg reads: wav, mp3, flac, ogg/opus, m4a, webm) to float32 mono 16 kHz for Whisper."""
from __future__ import annotations

import io

import numpy as np

from jarvis.errors import BadInput

RATE = 16000
MAX_SECONDS = 600.0


def decode(data: bytes, name: str = "the upload", rate: int = RATE) -> np.ndarray:
    """The audio in ``data`` at ``rate``; BadInput with what to do when it is empty, not audio, too short or too
    long."""
    return decode_with_rate(data, name, rate)[0]


def decode_with_rate(data: bytes, name: str = "the upload", rate: int = RATE) -> tuple[np.ndarray, int]:
    """(the audio in ``data`` as float32 mono at ``rate``, the rate it was recorded at)."""
    if not data:
        raise BadInput("empty_audio", f"{name} is empty: send an audio file (wav, mp3, flac, ogg, m4a, webm).")
    import av

    parts: list[np.ndarray] = []
    source_rate = None
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise BadInput("not_audio", f"{name} has no audio track: send an audio file.")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            for frame in container.decode(audio=0):
                source_rate = frame.sample_rate
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray().reshape(-1))
                if sum(len(p) for p in parts) > MAX_SECONDS * rate:
                    raise BadInput("audio_too_long", f"{name} is longer than {MAX_SECONDS:g} s: send a shorter "
                                                     "clip.")
            for out in resampler.resample(None):
                parts.append(out.to_ndarray().reshape(-1))
    except BadInput:
        raise
    except Exception as exc:  # av.error.InvalidDataError and friends: not something FFmpeg can read
        raise BadInput("bad_audio", f"{name} is not audio FFmpeg can read ({type(exc).__name__}): send wav, mp3, "
                                    "flac, ogg, m4a or webm.") from exc
    samples = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
    if source_rate is None or samples.size < rate // 10:
        raise BadInput("audio_too_short", f"{name} holds less than 0.1 s of audio: nothing to transcribe.")
    return samples, source_rate


def multipart(fields: dict, file_name: str, data: bytes, content_type: str = "application/octet-stream"
              ) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body with ``fields`` and one ``file``, and its Content-Type (what
    ``/v1/audio/transcriptions`` and ``/v1/audio/voices`` take)."""
    import uuid

    boundary = uuid.uuid4().hex
    body = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n".encode()
                    for k, v in fields.items())
    body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n"
             f"Content-Type: {content_type}\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"
