"""Replay a ``JARVIS_ECHO_DUMP`` session through the echo canceller and the wake word, offline.

The dump (jarvis.audio.echo) holds the raw microphone and the reference AEC3 was given; this feeds the reference
as the far end (one contiguous run) and the microphone as captured, then prints the linear canceller's echo
reduction on the wake-word stream per 4 s window while Jarvis talked, and where Porcupine heard "Jarvis" on it.
Use it to try a change to the alignment or the linear canceller on a session that went wrong, before a room run.

Run: JARVIS_ECHO_DUMP=/tmp/dump jarvis bench room --echo=0 ...   then   .venv/bin/python benchmarks/echo_dump_replay.py /tmp/dump
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jarvis.audio.echo import RATE, EchoCanceller  # noqa: E402
from jarvis.listen.wake import PhasedPorcupine  # noqa: E402

WINDOW_S = 4
ACTIVE_RMS = 0.01


def _db(x: np.ndarray) -> float:
    return 10 * np.log10(np.mean(np.square(x.astype(np.float64))) + 1e-12)


def replay(mic: np.ndarray, reference: np.ndarray, block: int = 512) -> np.ndarray:
    wake: list[np.ndarray] = []
    canceller = EchoCanceller(wake_tap=lambda w, clean, raw, active: wake.append(np.array(w, np.float32)))
    t0, fed, step = 100.0, 0, RATE // 50
    for i in range(0, len(mic) - block + 1, block):
        while fed < len(reference) and fed < i + RATE // 10:   # the player is ~0.1 s ahead of the microphone
            canceller.far_end.push(reference[fed:fed + step], RATE, t0 + fed / RATE)
            fed += step
        canceller.process(mic[i:i + block], t0 + (i + block - 1) / RATE)
    canceller.close()
    return np.concatenate(wake)


def detections(audio: np.ndarray) -> list[float]:
    pcm = np.clip(audio * 32768, -32768, 32767).astype(np.int16)
    porcupine = PhasedPorcupine(["jarvis"], [0.6])
    n, heard = porcupine.frame_length, []
    try:
        for i in range(0, len(pcm) - n, n):
            if porcupine.process(pcm[i:i + n]) >= 0:
                heard.append(round(i / RATE, 2))
    finally:
        porcupine.delete()
    return heard


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dump", type=Path, help="the JARVIS_ECHO_DUMP folder (mic.wav, reference.wav)")
    args = parser.parse_args()
    import soundfile

    missing = [name for name in ("mic.wav", "reference.wav") if not (args.dump / name).is_file()]
    if missing:
        print(f"error: {args.dump} has no {' or '.join(missing)}: point it at a JARVIS_ECHO_DUMP folder",
              file=sys.stderr)
        return 2
    mic, rate = soundfile.read(str(args.dump / "mic.wav"), dtype="float32")
    reference, _ = soundfile.read(str(args.dump / "reference.wav"), dtype="float32")
    if rate != RATE:
        print(f"error: {args.dump / 'mic.wav'} is {rate} Hz, not a Jarvis echo dump ({RATE} Hz)", file=sys.stderr)
        return 2
    wake = replay(mic, reference)
    print(f"wake word heard at (s): {detections(wake)}")
    print("echo reduction on the wake stream while Jarvis talks, per 4 s window (start s: dB):")
    w = WINDOW_S * RATE
    talking = [a for a in range(0, min(len(mic), len(wake)) - w, w)
               if np.sqrt(np.mean(np.square(reference[a:a + w]))) > ACTIVE_RMS]
    rows = [f"{a // RATE}: {_db(mic[a:a + w]) - _db(wake[a:a + w]):.0f}" for a in talking]
    print("  " + "  ".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
