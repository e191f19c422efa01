"""How long after the end of "Jarvis" Porcupine reports it: the floor under a barge-in cut on the wake word alone.

"Jarvis" (espeak-ng, trimmed to the voiced word), 0.3 s of silence and "what time is it", normalised to -26 dBFS,
is read by one Porcupine detector (sensitivity 0.6, as Jarvis sets it) in 512-sample frames, starting at 8 offsets
(0, 64, ... 448 samples) since where the word falls against the frames is chance. For each detection: the end of
the frame that heard it minus the end of the voiced word (10 ms windows above the bench's voiced threshold).

Run: .venv/bin/python benchmarks/porcupine_latency.py [--out benchmarks/results/porcupine-latency-cpu.json]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jarvis.bench.false_wakes import normalise, speak  # noqa: E402
from jarvis.bench.pipeline import voiced_bounds  # noqa: E402
from jarvis.bench.stats import date, hardware, versions, write_json  # noqa: E402

RATE = 16000
VOICES = ["en-us", "en-us+UniRobot", "en-us+m3", "en-us+f2", "en", "en-us+klatt", "en-us+m1", "en-us+Alex",
          "en-us+f4", "en-us+david", "en-us+f3", "en-us+f5", "en-gb-scotland+f3", "en-us+robosoft"]
OFFSETS = range(0, 512, 64)


def latencies(voice: str) -> list[float | None]:
    import pvporcupine

    head = speak("Jarvis", voice)
    head = head[: int(voiced_bounds(head)[1] * RATE) + 160]
    said = normalise(np.concatenate([np.zeros(RATE // 2, np.float32), head, np.zeros(int(0.3 * RATE), np.float32),
                                     speak("what time is it", voice), np.zeros(RATE, np.float32)]))
    word_end = 0.5 + voiced_bounds(head)[1]
    pcm = (np.clip(said, -1, 1) * 32767).astype(np.int16)
    out = []
    for offset in OFFSETS:
        detector = pvporcupine.create(keywords=["jarvis"], sensitivities=[0.6])
        x, heard = pcm[offset:], None
        try:
            for i in range(len(x) // 512):
                if detector.process(x[i * 512:(i + 1) * 512]) >= 0:
                    heard = (offset + (i + 1) * 512) / RATE
                    break
        finally:
            detector.delete()
        out.append(None if heard is None else round(float(heard - word_end) * 1000, 1))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the result as JSON")
    args = parser.parse_args()
    per_voice = {}
    for voice in VOICES:
        per_voice[voice] = latencies(voice)
        print(voice, per_voice[voice], flush=True)
    heard = [ms for v in per_voice.values() for ms in v if ms is not None]
    result = {"benchmark": "porcupine_latency", "hardware": hardware(), "date": date(),
              "command": "python benchmarks/porcupine_latency.py" + (f" --out {args.out}" if args.out else ""),
              "what": "ms from the end of the voiced 'Jarvis' to the end of the 512-sample frame Porcupine heard "
                      "it in; None = not heard at that offset",
              "ms": per_voice, "heard": len(heard), "tries": len(VOICES) * len(OFFSETS),
              "min_ms": min(heard) if heard else None, "median_ms": statistics.median(heard) if heard else None,
              "max_ms": max(heard) if heard else None, "versions": versions(["pvporcupine"])}
    print(f"heard {result['heard']} of {result['tries']}: {result['min_ms']} / {result['median_ms']} / "
          f"{result['max_ms']} ms after the word (min / median / max)")
    if args.out:
        write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
