"""Speaker ID's network on one or on all of torch's intra-op threads: time, CPU and the embeddings.

Speaker ID runs at a command's pause beside Whisper and the end-of-turn model; on 2 cores its CPU is what counts.
Each round embeds the same Piper commands ("Jarvis, …", as the voice loop hears them) three ways, interleaved:
torch's default threads, one thread set for the whole process, and Jarvis's own path (``SpeakerEncoder.embed``:
one thread around the network, then back). numpy's BLAS on one thread, as in the assistant (``jarvis.blas``).
CPU = the process's CPU time over the call (torch's worker threads included). Median over the rounds.

Run: .venv/bin/python benchmarks/speaker_threads.py [--rounds 30] [--out benchmarks/results/speaker-threads-cpu.json]
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jarvis import blas  # noqa: E402

blas.limit_threads()   # before numpy loads, as jarvis.app does

import numpy as np  # noqa: E402

from jarvis.bench.stats import date, hardware, versions, write_json  # noqa: E402
from jarvis.speakers import encoder as encoder_module  # noqa: E402
from jarvis.speakers.encoder import SpeakerEncoder  # noqa: E402
from tests.speech import piper_16k  # noqa: E402

COMMANDS = ["Jarvis, what time is it?", "Jarvis, tell me the time.", "Jarvis, why is the sky blue?",
            "Jarvis, what is the capital of Italy?"]


def _timed(embed, clips) -> tuple[float, float, list[np.ndarray]]:
    """(wall ms, process CPU ms, embeddings) of embedding every clip once."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = [embed(clip) for clip in clips]
    return (time.perf_counter() - wall) * 1000 / len(clips), (time.process_time() - cpu) * 1000 / len(clips), out


def main() -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--out", help="write the result as JSON")
    args = parser.parse_args()
    clips = [piper_16k(text) for text in COMMANDS]
    encoder = SpeakerEncoder()
    encoder.warmup()
    default_threads = torch.get_num_threads()
    shipped = encoder_module._intra_op_threads

    def with_process_threads(n):
        def embed(clip):
            torch.set_num_threads(n)
            encoder_module._intra_op_threads = lambda torch_, threads: contextlib.nullcontext()
            try:
                return encoder.embed(clip)
            finally:
                encoder_module._intra_op_threads = shipped
                torch.set_num_threads(default_threads)
        return embed

    ways = {f"torch's default ({default_threads} threads)": with_process_threads(default_threads),
            "one thread for the process": with_process_threads(1),
            "Jarvis: one thread around the network": encoder.embed}
    times = {name: ([], []) for name in ways}
    embeddings = {}
    for _ in range(args.rounds):
        for name, embed in ways.items():
            wall, cpu, embeddings[name] = _timed(embed, clips)
            times[name][0].append(wall)
            times[name][1].append(cpu)
    reference = embeddings[next(iter(ways))]
    result = {"benchmark": "speaker_threads", "date": date(), "hardware": hardware(),
              "versions": versions(["torch", "numpy", "resemblyzer"]),
              "clips": COMMANDS, "rounds": args.rounds, "torch_default_threads": default_threads,
              "ways": {name: {"wall_ms_p50": round(statistics.median(wall), 1),
                              "cpu_ms_p50": round(statistics.median(cpu), 1),
                              "largest_difference_from_default": float(max(
                                  np.abs(a - b).max() for a, b in zip(embeddings[name], reference)))}
                       for name, (wall, cpu) in times.items()}}
    for name, figures in result["ways"].items():
        print(f"{name:40s} wall {figures['wall_ms_p50']:6.1f} ms  CPU {figures['cpu_ms_p50']:6.1f} ms  "
              f"embedding differs by {figures['largest_difference_from_default']:.2e}")
    if args.out:
        write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
