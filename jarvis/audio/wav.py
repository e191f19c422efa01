"""Reading and writing WAV files with clear answers to bad input."""
from __future__ import annotations

from pathlib import Path

import logging
import os
from typing import Callable

import numpy as np
import soundfile as sf

from jarvis.errors import BadInput, first_line

log = logging.getLogger(__name__)

SPEECH_RATE = 16000


def read_speech_wav(path: str | Path, rate: int = SPEECH_RATE,
                    warn: Callable[[str], None] | None = None) -> np.ndarray:
    """Load a mono 16-bit-or-float WAV at ``rate`` as float32 in [-1, 1].

    Wrong rate, stereo, empty, missing or corrupt files raise ``BadInput`` with the fix. A file cut short
    (less audio than its header says) is read as far as it goes and ``warn`` (else the log) hears one line.
    """
    path = Path(path)
    if not path.exists():
        raise BadInput("missing_file", f"{path}: no such file. Give the path to a WAV recording.")
    if path.is_dir():
        raise BadInput("not_a_file", f"{path} is a folder. Give the path to a WAV recording.")
    try:
        info = sf.info(str(path))
        if info.format != "WAV":
            raise BadInput("not_wav", f"{path} is {info.format}, not WAV. Convert it: "
                                      f"sox '{path}' -r {rate} -c 1 -b 16 out.wav")
        data, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except BadInput:
        raise
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError / TypeError
        raise BadInput("corrupt_wav",
                       f"{path} is not a readable WAV file ({_short(exc)}). "
                       f"Record it again or convert it: sox IN -r {rate} -c 1 -b 16 '{path}'") from exc
    channels = data.shape[1]
    if channels != 1 or file_rate != rate:
        found = f"{file_rate} Hz, {channels} channel{'s' if channels != 1 else ''}"
        raise BadInput("wrong_format",
                       f"{path} is {found}; Jarvis needs {rate} Hz mono. "
                       f"Convert it: sox '{path}' -r {rate} -c 1 -b 16 converted.wav")
    samples = data[:, 0]
    declared = _declared_frames(path)
    if declared is not None and declared > samples.size:
        short = (f"{path} is cut short: its header says {declared / rate:.2f} s of audio, "
                 f"the file holds {samples.size / rate:.2f} s")
        if samples.size == 0:
            raise BadInput("truncated_wav", f"{short}. Copy or record it again.")
        (warn or log.warning)(f"{short}; using what is there (copy or record it again for the rest).")
    if samples.size == 0:
        raise BadInput("empty_wav", f"{path} holds no audio. Record at least a second of speech.")
    return samples


def _declared_frames(path: Path) -> int | None:
    """Frames the RIFF header promises in its data chunk; None when it cannot tell (not RIFF, streamed)."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            align = 0
            while len(chunk := f.read(8)) == 8:
                size = int.from_bytes(chunk[4:], "little")
                if chunk[:4] == b"data":
                    return size // align if align and size not in (0, 0xFFFFFFFF) else None
                body = f.read(size + (size & 1))  # chunks are padded to an even size
                if chunk[:4] == b"fmt " and len(body) >= 14:
                    align = int.from_bytes(body[12:14], "little")
    except OSError:
        return None
    return None


def write_wav(path: str | Path, samples: np.ndarray, rate: int) -> None:
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise BadInput("bad_output", f"cannot write {path}: folder {path.parent} does not exist.")
    try:
        sf.write(str(path), np.asarray(samples, dtype=np.float32), rate, subtype="PCM_16")
    except Exception as exc:
        raise BadInput("bad_output", f"cannot write {path} ({_short(exc)}).") from exc


def check_writable(path: str | Path) -> None:
    """Refuse an output WAV that cannot be written, before any work is done: a folder, a missing folder,
    a read-only file or folder. Probes by opening (an existing file is not changed; a new one is removed)."""
    path = Path(path)
    if path.is_dir():
        raise BadInput("bad_output", f"Cannot write {path}: it is a folder. Give a file name, e.g. {path / 'out.wav'}")
    if path.suffix.lower() != ".wav":
        raise BadInput("bad_output", f"Cannot write {path}: the output must be a .wav file.")
    folder = path.absolute().parent
    if not folder.is_dir():
        raise BadInput("bad_output", f"Cannot write {path}: folder {folder} does not exist. "
                                     f"Create it (mkdir -p '{folder}') or choose another path.")
    existed = path.exists()
    try:
        flags = os.O_WRONLY | (os.O_APPEND if existed else os.O_CREAT | os.O_EXCL)
        fd = os.open(path, flags, 0o644)
        os.close(fd)
        if not existed:
            os.unlink(path)
    except OSError as exc:
        what, fix = ((f"{path} is read-only", f"make it writable (chmod u+w '{path}') or choose another name")
                     if existed else (f"folder {folder} is not writable", "choose a folder you can write to"))
        raise BadInput("bad_output", f"Cannot write {path}: {what} ({exc.strerror}); {fix}.") from exc


def is_silence(samples: np.ndarray, threshold_dbfs: float = -45.0) -> bool:
    """True when the loudest 30 ms window is quieter than ``threshold_dbfs``."""
    if samples.size == 0:
        return True
    win = 480
    n = samples.size // win
    if n == 0:
        rms = float(np.sqrt(np.mean(samples ** 2)))
    else:
        frames = samples[: n * win].reshape(n, win)
        rms = float(np.sqrt(np.mean(frames ** 2, axis=1)).max())
    return 20 * np.log10(max(rms, 1e-10)) < threshold_dbfs


def first_sound(samples: np.ndarray, rate: int, rms: float) -> int | None:
    """Index of the first 10 ms window (from the start, at ``rate`` Hz) whose RMS is above ``rms``; None if none."""
    samples = np.asarray(samples, dtype=np.float32).reshape(-1)
    win = max(1, rate // 100)
    n = samples.size // win
    if n:
        loud = np.flatnonzero(np.sqrt(np.mean(samples[: n * win].reshape(n, win) ** 2, axis=1)) > rms)
        if loud.size:
            return int(loud[0]) * win
    rest = samples[n * win:]
    return n * win if rest.size and float(np.sqrt(np.mean(rest ** 2))) > rms else None


def _short(exc: Exception) -> str:
    return first_line(exc) or type(exc).__name__
