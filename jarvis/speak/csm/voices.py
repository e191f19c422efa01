"""Cloned voices: a reference clip + its transcript, encoded once into Mimi codes.

Settings keep ``tts.voices[name] = {"clip": path, "text": transcript}``. Encoding a clip is the
expensive part of a voice prompt, so its codes are cached in memory and on disk, keyed by the
SHA256 of the clip's bytes and the model id: editing or replacing the clip changes the key and the
codes are recomputed; the stale file for that voice is removed.
"""
from __future__ import annotations

import hashlib
import io
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from jarvis.errors import BadInput

log = logging.getLogger(__name__)

MIN_CLIP_S, MAX_CLIP_S = 1.0, 30.0


@dataclass(frozen=True)
class Voice:
    name: str
    clip: Path
    text: str


def find_voice(name: str, voices: dict) -> Voice:
    """The voice called ``name`` in ``tts.voices``; one clear line when it is unknown or incomplete."""
    entry = voices.get(name) if isinstance(voices, dict) else None
    if entry is None:
        known = ", ".join(sorted(voices)) if voices else "none yet"
        raise BadInput("unknown_voice", f"No voice named '{name}' (known: {known}). "
                                        f"Add one with: jarvis voices add {name} CLIP.wav --text \"what the clip says\"")
    if not isinstance(entry, dict) or not str(entry.get("clip", "")).strip() or not str(entry.get("text", "")).strip():
        raise BadInput("bad_voice", f"Voice '{name}' needs a clip and its transcript: "
                                    f"jarvis voices add {name} CLIP.wav --text \"what the clip says\"")
    return Voice(name, Path(str(entry["clip"])).expanduser(), str(entry["text"]).strip())


def read_clip(path: Path, rate: int) -> tuple[np.ndarray, bytes]:
    """(mono float32 audio at ``rate``, the file's bytes). Bad clips raise ``BadInput``."""
    import soundfile as sf

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BadInput("missing_clip", f"Voice clip {path} not found: record or pick the clip again.") from None
    except OSError as exc:
        raise BadInput("missing_clip", f"Voice clip {path} cannot be read ({exc.strerror}).") from None
    try:
        samples, clip_rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception:
        raise BadInput("bad_clip", f"Voice clip {path} is not a readable audio file: use a WAV or FLAC.") from None
    samples = samples.mean(axis=1)
    seconds = len(samples) / clip_rate
    if seconds < MIN_CLIP_S or seconds > MAX_CLIP_S:
        raise BadInput("bad_clip", f"Voice clip {path} is {seconds:.1f} s long: use {MIN_CLIP_S:.0f} to "
                                   f"{MAX_CLIP_S:.0f} s of clear speech.")
    if float(np.sqrt(np.mean(samples ** 2))) < 1e-4:
        raise BadInput("bad_clip", f"Voice clip {path} is silent: record it again.")
    if clip_rate != rate:
        from jarvis.audio.resample import resample
        samples = resample(samples, clip_rate, rate)
    return samples.astype(np.float32), data


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name)[:40] or "voice"


class VoiceCodes:
    """Mimi codes of voice clips, cached in memory and in ``folder`` (one ``.pt`` per voice)."""

    def __init__(self, folder: Path, model_id: str):
        self.folder = folder
        self.model_id = model_id
        self._memory: dict[str, object] = {}
        self.encodings = 0  # how many clips were actually encoded (the tests read this)

    def key(self, clip_bytes: bytes) -> str:
        clip_sha = hashlib.sha256(clip_bytes).hexdigest()
        return hashlib.sha256(f"{self.model_id}\0{clip_sha}".encode()).hexdigest()[:32]

    def codes(self, voice: Voice, rate: int, encode: Callable[[np.ndarray], object]):
        """``(key, codes)``: codes is a [frames, codebooks] long tensor on the CPU."""
        import torch

        from jarvis.storage import atomic_write_bytes

        audio, clip_bytes = read_clip(voice.clip, rate)
        key = self.key(clip_bytes)
        if key in self._memory:
            return key, self._memory[key]
        path = self.folder / f"{_safe(voice.name)}-{key}.pt"
        codes = None
        if path.exists():
            try:
                saved = torch.load(path, weights_only=True)
                codes = saved["codes"] if saved.get("key") == key else None
            except Exception:
                log.warning("voice cache %s unreadable; encoding the clip again", path, exc_info=True)
        if codes is None:
            codes = encode(audio).to("cpu", torch.long)
            self.encodings += 1
            buffer = io.BytesIO()
            torch.save({"key": key, "model": self.model_id, "voice": voice.name, "codes": codes}, buffer)
            atomic_write_bytes(path, buffer.getvalue())
            for stale in self.folder.glob(f"{_safe(voice.name)}-*.pt"):
                if stale != path:
                    stale.unlink(missing_ok=True)
        self._memory[key] = codes
        return key, codes
