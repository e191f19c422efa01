"""The silence Piper's replies begin with, as made and as Jarvis plays them (``jarvis.loop.speaking.without_lead_in``).

Each reply the pipeline benchmark hears most is synthesized ``--times`` times by Jarvis's Piper engine (its voice
samples noise, so each take differs), in ``--processes`` fresh processes (each sets the voice's gain from its own
warm-up sentences). Lead-in = the start of the first 10 ms window above -50 dBFS, in ms.

Run: .venv/bin/python benchmarks/reply_lead_in.py [--out benchmarks/results/reply-lead-in-cpu.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REPLIES = ["It's 9:08 AM.", "Today is Monday, December 7.", "The capital of Italy is Rome.",
           "The sky looks blue because air scatters blue light more than red."]


def _takes(times: int) -> dict[str, list[list[float]]]:
    """In this process: {reply: [[lead-in made, lead-in played] per take]} in ms."""
    import numpy as np

    from jarvis.audio.wav import first_sound
    from jarvis.loop.speaking import LEAD_IN_RMS, without_lead_in
    from jarvis.speak.piper_engine import PiperEngine

    engine = PiperEngine()
    engine.load()
    engine.warmup()
    rate, out = engine.sample_rate, {}
    for reply in REPLIES:
        out[reply] = []
        for _ in range(times):
            chunks = list(engine.synthesize(reply))
            played = np.concatenate([c for _, c in without_lead_in((rate, c) for c in chunks)])
            out[reply].append([first_sound(np.concatenate(chunks), rate, LEAD_IN_RMS) * 1000 / rate,
                               first_sound(played, rate, LEAD_IN_RMS) * 1000 / rate])
    engine.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--times", type=int, default=10)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--out", help="write the result as JSON")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_takes(args.times)))
        return 0
    from jarvis.bench.stats import date, hardware, versions, write_json

    takes: dict[str, list[list[float]]] = {reply: [] for reply in REPLIES}
    for _ in range(args.processes):
        child = subprocess.run([sys.executable, __file__, "--child", "--times", str(args.times)], check=True,
                               capture_output=True, text=True)
        for reply, pairs in json.loads(child.stdout.strip().splitlines()[-1]).items():
            takes[reply].extend(pairs)
    replies = {}
    for reply, pairs in takes.items():
        made, played = [p[0] for p in pairs], [p[1] for p in pairs]
        replies[reply] = {"takes": len(pairs), "made_ms": {"min": min(made), "p50": statistics.median(made),
                                                           "max": max(made)},
                          "played_ms": {"min": min(played), "p50": statistics.median(played), "max": max(played)}}
        print(f"{reply[:40]:42s} made: {min(made):3.0f}-{max(made):3.0f} ms (P50 {statistics.median(made):3.0f}); "
              f"played: {min(played):3.0f}-{max(played):3.0f} ms")
    if args.out:
        write_json(args.out, {"benchmark": "reply_lead_in", "date": date(), "hardware": hardware(),
                              "versions": versions(["piper-tts", "onnxruntime"]), "processes": args.processes,
                              "times": args.times, "replies": replies})
    return 0


if __name__ == "__main__":
    sys.exit(main())
