"""Does the end-of-turn model (Smart Turn v3.2, jarvis.listen.end_of_turn) tell a finished command from a half
sentence, on the synthetic voices the benchmarks speak with? And how long does one decision take here?

Each sentence is spoken whole and cut mid-way at a word boundary (at 40 % and 60 % of its length: a person
stopping mid-sentence, with unfinished prosody), then 200 ms of silence (when the listener would ask). Voices:
Piper's bundled joe (natural prosody, with its sampling noise: 3 takes each) and three espeak-ng voices.
Correct = probability > 0.5 for the whole sentence, ≤ 0.5 for a cut one.

Run: .venv/bin/python benchmarks/smart_turn_probe.py [--out benchmarks/results/smart-turn-probe-cpu.json]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jarvis.bench.pipeline import cut_mid_sentence, espeak  # noqa: E402
from jarvis.bench.stats import date, hardware, stats_ms, versions, write_json  # noqa: E402
from jarvis.listen.end_of_turn import EndOfTurnModel  # noqa: E402

SENTENCES = ["What time is it?", "What is the weather like in Paris today?", "Tell me a story about a dragon.",
             "Set a timer for ten minutes.", "Turn off the kitchen lights please.",
             "Can you tell me about the history of Rome?", "I want to know the time in Tokyo.",
             "What is the date today?", "How far away is the moon from the earth?",
             "Remind me to call my sister tomorrow morning."]
VOICES = {"piper": ["piper:1.0"] * 3, "espeak-ng": ["en-us+f3", "en-us+m3", "en-gb-scotland+f3"]}
TAIL = np.zeros(3200, np.float32)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the result as JSON")
    args = parser.parse_args()
    model = EndOfTurnModel()
    model.load()
    rows, seconds = [], []
    for family, voices in VOICES.items():
        for voice in voices:
            for text in SENTENCES:
                whole = espeak(text, voice, None)
                for fraction in (1.0, 0.6, 0.4):
                    audio = whole if fraction == 1.0 else cut_mid_sentence(whole, fraction)
                    start = time.perf_counter()
                    p = model.probability(np.concatenate([audio, TAIL]))
                    seconds.append(time.perf_counter() - start)
                    rows.append({"voice": voice, "family": family, "text": text, "fraction": fraction,
                                 "probability": round(p, 4), "correct": (p > 0.5) == (fraction == 1.0)})
            print(voice, " ".join(f"{r['probability']:.2f}" for r in rows[-len(SENTENCES) * 3:]), flush=True)
    summary = {}
    for family in VOICES:
        mine = [r for r in rows if r["family"] == family]
        whole = [r for r in mine if r["fraction"] == 1.0]
        cut = [r for r in mine if r["fraction"] < 1.0]
        summary[family] = {"whole_heard_finished": f"{sum(r['correct'] for r in whole)}/{len(whole)}",
                           "cut_heard_unfinished": f"{sum(r['correct'] for r in cut)}/{len(cut)}",
                           "median_probability_whole": round(statistics.median(r["probability"] for r in whole), 3),
                           "median_probability_cut": round(statistics.median(r["probability"] for r in cut), 3)}
    result = {"benchmark": "smart_turn_probe", "hardware": hardware(), "date": date(),
              "command": "python benchmarks/smart_turn_probe.py" + (f" --out {args.out}" if args.out else ""),
              "model": "smart-turn-v3.2-cpu.onnx (pipecat-ai wheel), onnxruntime, 1 thread",
              "summary": summary, "decision_ms": stats_ms(seconds, digits=1), "rows": rows,
              "versions": versions(["pipecat-ai", "onnxruntime", "piper-tts"])}
    for family, s in summary.items():
        print(f"{family}: whole heard finished {s['whole_heard_finished']}, cut heard unfinished "
              f"{s['cut_heard_unfinished']} (median p {s['median_probability_whole']} / {s['median_probability_cut']})")
    print("decision ms:", result["decision_ms"])
    if args.out:
        write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
