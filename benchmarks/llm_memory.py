"""The local LLM alone, four speakers' conversations question after question: RSS, the kept llama.cpp states, and
RSS less them ("rest"), with glibc's own counts (malloc's memory in use, free, in mappings of their own).

    python benchmarks/llm_memory.py [ROUNDS] [--trim-only]

After each question the process does what the voice loop does once a turn is over: ``jarvis.heap.release`` (the
cycle collector, then ``malloc_trim``), or with ``--trim-only`` the trim alone, as before 2026-12-06's seventh
session. The allocator is tuned as at start (``jarvis.heap.tune_allocator``). One line per question; the last
line gives the rest's change from the end of round 2. Needs the bundled GGUF model (scripts/setup.sh).
"""
from __future__ import annotations

import ctypes
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jarvis import heap  # noqa: E402

heap.tune_allocator()    # first thing, as jarvis.app does

from jarvis.brain import backends  # noqa: E402
from jarvis.brain.memory import ConversationMemory  # noqa: E402
from jarvis.config import BrainSettings  # noqa: E402

SPEAKERS = ("alice", "carol", "fiona", "joe")
QUESTIONS = ("Why is the sky blue?", "What is the capital of Italy?", "What causes rain?")


class _MallInfo(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]


def _rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20


def main() -> int:
    rounds = int(next((a for a in sys.argv[1:] if a.isdigit()), 12))
    after_turn = heap.trim if "--trim-only" in sys.argv else heap.release
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = _MallInfo
    settings = BrainSettings(backend="local", temperature=0.0)
    backend, failure = backends.load(settings)
    if backend is None:
        print(f"the local LLM did not load: {failure}")
        return 1
    memory = ConversationMemory(settings.memory_turns, idle_s=1e9)
    rests = []
    for round_ in range(rounds):
        for i, who in enumerate(SPEAKERS):
            question = QUESTIONS[(round_ + i) % len(QUESTIONS)]
            messages = [{"role": "system", "content": settings.system_prompt.replace("{speaker}", who)},
                        *memory.history(who), {"role": "user", "content": question}]
            answer = "".join(backend.stream(messages, lambda: False, max_tokens=48, temperature=0.0)).strip()
            memory.remember(who, question, answer)
            time.sleep(0.1)
            started = time.perf_counter()
            after_turn()
            took = (time.perf_counter() - started) * 1000
            rss, states, info = _rss_mb(), backend.kept_state_bytes / 2**20, libc.mallinfo2()
            rests.append(rss - states)
            print(f"round {round_ + 1:2} {who:5}: RSS {rss:6.1f} MB, kept states {states:4.1f}, "
                  f"rest {rss - states:6.1f} | malloc in use {info.uordblks / 2**20:5.1f}, "
                  f"free {info.fordblks / 2**20:5.1f}, mapped {info.hblkhd / 2**20:5.1f} in {info.hblks} "
                  f"| after the question {took:3.0f} ms", flush=True)
    if len(rests) > 8:
        change, spread = rests[-1] - rests[7], max(rests[7:]) - min(rests[7:])
        print(f"rest from round 2 to round {rounds}: {change:+.1f} MB ({change / (len(rests) - 8):+.3f} a question), "
              f"range {spread:.1f} MB")
    backend.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
