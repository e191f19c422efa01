"""Where a command's short-window Whisper pass spends its time: the encoder, the decoder (greedy, with Jarvis's
prompt) and the scoring of its words against the audio (``jarvis.listen.heard``), with 1 and 2 CTranslate2 threads.

The pass is the one the voice loop asks at a command's last pause (``jarvis.listen.short_window``, tiny.en int8,
10 s window); its words are what the reply waits for. Three Piper commands with the wake word, 5 rounds each, per
thread count, each thread count in a fresh process, nothing else running.

Run: .venv/bin/python benchmarks/whisper_parts.py [--out benchmarks/results/whisper-parts-cpu.json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COMMANDS = ("Jarvis, what time is it?", "Jarvis, what day is it?", "Jarvis, what is the capital of Italy?")
ROUNDS = 5


def _timed(times: dict, name: str, function):
    def call(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            times.setdefault(name, []).append((time.perf_counter() - start) * 1000)
    return call


class _TimedCTranslate2:
    def __init__(self, model, times: dict):
        self.generate = _timed(times, "decoder_ms", model.generate)
        self.align = _timed(times, "scoring_ms", model.align)
        self._model = model

    def __getattr__(self, name):
        return getattr(self._model, name)


def _one(threads: int) -> dict:
    from jarvis import app

    app._prepare_environment()   # as `jarvis` starts: BLAS threads, malloc arenas
    from jarvis.bench.pipeline import espeak
    from jarvis.config import ListenSettings
    from jarvis.listen import stt
    from jarvis.listen.vocabulary import whisper_prompt

    stt.cpu_threads = lambda: threads
    settings = ListenSettings()
    settings.stt_short_window, settings.stt_device = True, "cpu"
    transcriber = stt.Transcriber(settings)
    transcriber.load()
    whisper, times = transcriber._model, {}
    clips = [espeak(text, "piper:1.0", None) for text in COMMANDS]
    prompt = whisper_prompt("jarvis")
    for clip in clips:   # warm-up
        transcriber.transcribe(clip, command=True, prompt=prompt)
    whisper.encode = _timed(times, "encoder_ms", whisper.encode)
    whisper.model = _TimedCTranslate2(whisper.model, times)
    for _ in range(ROUNDS):
        for clip in clips:
            _timed(times, "pass_ms", transcriber.transcribe)(clip, command=True, prompt=prompt)
    heard = sorted({transcriber.transcribe(clip, command=True, prompt=prompt) for clip in clips})
    return {"whisper_threads": threads, **{k: round(statistics.median(v), 1) for k, v in times.items()},
            "n": len(times["pass_ms"]), "heard": heard}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the result as JSON")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)   # internal: one thread count in this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(_one(args.one)))
        return 0
    from jarvis.bench.stats import date, hardware, versions, write_json

    rows = []
    for threads in (2, 1, 2, 1):   # alternating: a slower spell of the machine touches both
        out = subprocess.run([sys.executable, __file__, "--one", str(threads)], check=True, capture_output=True,
                             text=True, timeout=600, env=dict(os.environ))
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print({k: v for k, v in rows[-1].items() if k != "heard"}, flush=True)
    result = {"benchmark": "whisper_parts", "hardware": hardware(), "date": date(),
              "command": "python benchmarks/whisper_parts.py" + (f" --out {args.out}" if args.out else ""),
              "what": "median ms per short-window pass (tiny.en int8, 10 s window, greedy, Jarvis's prompt) and its "
                      "parts, per process", "rows": rows,
              "versions": versions(["faster-whisper", "ctranslate2"])}
    if args.out:
        write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
