"""Uploaded audio (any format FFmpeg reads: wav, mp3, flac, ogg/opus, m4a, webm) to float32 mono 16 kHz for Whisper."""
from __future__ import annotations

import io

import numpy as np

from jarvis.errors import BadInput

RATE = 16000
MAX_SECONDS = 600.0


def decode(data: bytes, name: str = "the upload") -> np.ndarray:
    """The audio in ``data``; BadInput with what to do when it is empty, not audio, too short or too long."""
    if not data:
        raise BadInput("empty_audio", f"{name} is empty: send an audio file (wav, mp3, flac, ogg, m4a, webm).")
    import av

    parts: list[np.ndarray] = []
    rate = None
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise BadInput("not_audio", f"{name} has no audio track: send an audio file.")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
            for frame in container.decode(audio=0):
                rate = frame.sample_rate
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray().reshape(-1))
                if sum(len(p) for p in parts) > MAX_SECONDS * RATE:
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
    if rate is None or samples.size < RATE // 10:
        raise BadInput("audio_too_short", f"{name} holds less than 0.1 s of audio: nothing to transcribe.")
    return samples
