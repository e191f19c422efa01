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


def piper_16k(text: str) -> "np.ndarray":
    """``text`` in Piper's bundled voice (joe), float32 16 kHz, the same samples every time (no sampling noise): a
    natural voice's prosody, which espeak-ng lacks (an end-of-turn model hears espeak-ng's half sentences as done)."""
    import numpy as np
    from piper import PiperVoice, SynthesisConfig

    from jarvis.audio.resample import resample
    from jarvis.speak.piper_engine import bundled_voice

    model = bundled_voice()
    if model not in _piper_voices:
        _piper_voices[model] = PiperVoice.load(model, config_path=f"{model}.json")
    voice = _piper_voices[model]
    steady = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    audio = np.concatenate([c.audio_float_array for c in voice.synthesize(text, syn_config=steady)])
    return resample(audio.astype(np.float32), voice.config.sample_rate, 16000)


def cut_mid_sentence(audio: "np.ndarray", fraction: float) -> "np.ndarray":
    """``audio`` (16 kHz) cut at the quietest 20 ms (a word boundary) near ``fraction`` of its length: a person
    stopping mid-sentence, with the sentence's unfinished prosody."""
    import numpy as np

    win = 16000 // 50
    n = len(audio) // win
    rms = np.sqrt((audio[: n * win].reshape(n, win).astype(np.float64) ** 2).mean(axis=1))
    centre = int(n * fraction)
    lo, hi = max(1, centre - 8), min(n - 1, centre + 8)
    return audio[: (lo + int(np.argmin(rms[lo:hi]))) * win]


def piper_cut_at_word(text: str, words: int) -> "tuple[np.ndarray, np.ndarray]":
    """``text`` in Piper's joe (no sampling noise), 16 kHz: all of it, and cut after its first ``words`` words at
    the word break Piper's phoneme times give (the sentence's prosody, as a person stopping mid-sentence leaves it)."""
    import numpy as np
    from piper import SynthesisConfig

    from jarvis.audio.resample import resample
    from jarvis.bench.pipeline import _aligned_piper, word_breaks

    voice = _aligned_piper()
    (chunk,) = voice.synthesize(text, syn_config=SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0),
                                include_alignments=True)
    cut = word_breaks(chunk)[words - 1][0]
    audio = np.asarray(chunk.audio_float_array, np.float32)
    return (resample(audio, chunk.sample_rate, 16000), resample(audio[:cut], chunk.sample_rate, 16000))


_piper_voices: dict = {}
