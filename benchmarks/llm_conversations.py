"""The local LLM's first token as four speakers' conversations grow, taking turns (as in a home, and in
``jarvis bench pipeline``): with llama.cpp's state after each answer kept (``CONVERSATION_CACHE_MB``) and without.

Each speaker asks ``--rounds`` questions in turn (each remembers up to six exchanges, as ``brain.memory_turns``, in
the assistant's ``ConversationMemory``; past 7 rounds it forgets);
the answers are greedy (temperature 0) and at most 48 tokens (the low-latency preset's ``brain.max_tokens``). The
process's RSS after each round shows what the kept states cost.

Run: .venv/bin/python benchmarks/llm_conversations.py [--rounds 6] [--out benchmarks/results/llm-conversations-cpu.json]
(about 2 minutes on 2 cores for 6 rounds, 5 for 16).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jarvis.brain import backends  # noqa: E402
from jarvis.brain.memory import ConversationMemory  # noqa: E402
from jarvis.config import BrainSettings  # noqa: E402

SPEAKERS = ("alice", "carol", "fiona", "joe")
QUESTIONS = ("Why is the sky blue?", "What is the capital of Italy?", "What causes rain?")
ROUNDS, MEMORY_TURNS, MAX_TOKENS = 6, 6, 48


def rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def run(cached: bool, rounds_asked: int = ROUNDS) -> dict:
    settings = BrainSettings(backend="local", temperature=0.0)
    backend, failure = backends.load(settings)
    if failure is not None:
        raise SystemExit(failure.message)
    if not cached:
        backend._llm.set_cache(None)
    memory = ConversationMemory(MEMORY_TURNS, idle_s=1e9)   # as the assistant forgets: the oldest half at once
    rounds = []
    try:
        for rnd in range(rounds_asked):
            firsts = []
            for i, who in enumerate(SPEAKERS):
                question = QUESTIONS[(rnd + i) % len(QUESTIONS)]
                messages = [{"role": "system", "content": settings.system_prompt.replace("{speaker}", who)},
                            *memory.history(who), {"role": "user", "content": question}]
                started, first, pieces = time.perf_counter(), None, []
                for piece in backend.stream(messages, lambda: False, max_tokens=MAX_TOKENS, temperature=0.0):
                    first = first if first is not None else time.perf_counter() - started
                    pieces.append(piece)
                firsts.append((first or 0.0) * 1000)
                memory.remember(who, question, "".join(pieces).strip())
            rounds.append({"round": rnd + 1, "first_token_ms": [round(t, 1) for t in firsts],
                           "p50_ms": round(float(np.median(firsts)), 1), "rss_mb": round(rss_mb(), 1)})
            print(f"{'kept' if cached else 'not kept'}: round {rnd + 1} first token P50 {rounds[-1]['p50_ms']} ms, "
                  f"RSS {rounds[-1]['rss_mb']} MB", flush=True)
    finally:
        backend.close()
    return {"rounds": rounds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the JSON results here")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"questions per speaker (default {ROUNDS})")
    args = parser.parse_args()
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
              "date": time.strftime("%Y-%m-%d"), "model": backends.BUNDLED_MODEL,
              "cache_mb": backends.CONVERSATION_CACHE_MB, "speakers": len(SPEAKERS), "rounds": args.rounds,
              "max_tokens": MAX_TOKENS, "command": "python benchmarks/llm_conversations.py " + " ".join(sys.argv[1:]),
              "states not kept": run(False, args.rounds),
              "states kept": run(True, args.rounds)}
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
