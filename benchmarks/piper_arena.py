"""Piper's memory with and without onnxruntime's CPU memory arena: RSS after the warm-up and after speaking the
pipeline bench's 100 replies twice (each on a thread of its own, as the voice loop speaks), and how long a
short reply's synthesis takes.

Each mode runs in a process of its own (RSS is per process), ``REPEATS`` times, alternating. The replies are those
of the committed 100-turn bench (skill answers and SmolLM2's answers), so the run is repeatable.

Run: .venv/bin/python benchmarks/piper_arena.py [--out benchmarks/results/piper-arena-cpu.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REPLIES_FROM = ROOT / "benchmarks/results/pipeline-cpu-100-turns-trim.json"
MODES = ("arena", "no-arena")
ROUNDS = 2
REPEATS = 3   # the modes alternate: short-reply times vary by ~20 ms from run to run on a shared 2-core machine


def _rss_mb() -> float:
    import psutil
    return round(psutil.Process().memory_info().rss / 2**20, 1)


def _engine(mode: str):
    from piper import PiperVoice

    from jarvis.speak.piper_engine import PiperEngine, bundled_voice

    engine = PiperEngine()
    if mode == "no-arena":
        engine.load()   # Jarvis's own loader: the arena off
    else:
        model = bundled_voice()
        engine._voice = PiperVoice.load(model, config_path=f"{model}.json")   # piper-tts's: arena on
    return engine


def measure(mode: str) -> dict:
    from jarvis import heap

    replies = [t["reply"] for t in json.loads(REPLIES_FROM.read_text())["jarvis"]["turns"] if t.get("reply")]
    engine = _engine(mode)
    engine.warmup()
    heap.trim()
    row = {"mode": mode, "rss_after_warmup_mb": _rss_mb(), "rss_after_round_mb": [], "replies": len(replies)}
    short = []
    for _ in range(ROUNDS):
        for reply in replies:
            started = time.perf_counter()
            speak = threading.Thread(target=lambda text=reply: [None for _ in engine.synthesize(text)])
            speak.start()
            speak.join()
            if len(reply) <= 32:
                short.append(time.perf_counter() - started)
        heap.trim()
        row["rss_after_round_mb"].append(_rss_mb())
    row["short_reply_synthesis_ms_p50"] = round(statistics.median(short) * 1000, 1)
    row["short_replies_timed"] = len(short)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the result as JSON")
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)   # one mode, in this process
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(measure(args.mode)))
        return 0
    from jarvis.bench.stats import date, hardware, versions, write_json

    rows = []
    for mode in MODES * REPEATS:
        out = subprocess.run([sys.executable, __file__, "--mode", mode], check=True, capture_output=True, text=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(rows[-1])
    command = "python benchmarks/piper_arena.py " + " ".join(sys.argv[1:])
    result = {"benchmark": "piper_arena", "command": command, "date": date(), "hardware": hardware(),
              "versions": versions(("piper-tts", "onnxruntime")), "rounds": ROUNDS, "rows": rows}
    if args.out:
        write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
