"""Test speech made on the fly with espeak-ng + sox (Debian packages; nothing downloads).

Voices that resemblyzer separates well: ``en-us+f2`` vs ``en-us+m3``, ``en-us+f3`` vs ``en-us+m7``.
Porcupine detects "Jarvis" from ``en-us+f3`` at every frame alignment (use it for wake-word tests).
"""
from __future__ import annotations

import subprocess
from pathlib import Path


def espeak_wav(text: str, out: Path, voice: str = "en-us+f3", rate: int = 16000,
               speed: int = 150, pad_s: float = 0.0) -> Path:
    """Speak ``text`` with espeak-ng into a mono 16-bit WAV at ``rate``; optional silence padding."""
    out = Path(out)
    raw = out.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text], check=True)
    cmd = ["sox", str(raw), "-r", str(rate), "-c", "1", "-b", "16", str(out)]
    if pad_s:
        cmd += ["pad", str(pad_s), str(pad_s)]
    subprocess.run(cmd, check=True)
    raw.unlink()
    return out


def concat_wavs(parts: list[Path], out: Path, gap_s: float = 0.3) -> Path:
    """Join WAVs (same format) with ``gap_s`` of silence after each part."""
    out = Path(out)
    padded = []
    for i, part in enumerate(parts):
        p = out.with_name(f"{out.stem}.part{i}.wav")
        subprocess.run(["sox", str(part), str(p), "pad", "0", str(gap_s)], check=True)
        padded.append(p)
    subprocess.run(["sox", *map(str, padded), str(out)], check=True)
    for p in padded:
        p.unlink()
    return out
