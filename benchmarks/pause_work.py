"""The work at a command's last pause, as the voice loop does it, with numpy's BLAS on OpenBLAS's default threads
(one per core) and on one (``jarvis.blas``).

When a command falls silent the voice loop asks Whisper (tiny.en int8, in RealtimeSTT's worker: a thread of the
listener's process on Linux, a process elsewhere) for the short-window pass, and meanwhile the end-of-turn model and
speaker ID hear the pause; once Whisper's words are back, Piper synthesizes the reply's first sentence. On 2 cores
these compete. This times that sequence on Piper-voiced commands with a wake word: Whisper's words, the end-of-turn
model and the reply's first audio (Piper's first chunk), each from the moment the request went out; and, for a
command the short pass is unsure of, Whisper's 30 s pass alone. A third configuration starts the end-of-turn model
and speaker ID only once Whisper's words are back (beside Piper): not better.

Run: .venv/bin/python benchmarks/pause_work.py [--out FILE.json]
     [--compare whisper-threads|omp-passive|one-thread-decoder|encoder-first]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jarvis.bench.pipeline import RATE, espeak  # noqa: E402
from jarvis.bench.stats import date, hardware, versions, write_json  # noqa: E402
from jarvis.listen.stt import cpu_threads  # noqa: E402

VOICES = ("piper", "piper@1.3", "piper@0.85")
COMMANDS = ("what time is it", "tell me the time", "what day is it", "what is the time")
REPLY = "It's 4:12 AM."
PROMPT = "Jarvis: what time is it, what's the date today, who am I, system status, how's the GPU, CPU load, stop."
# (numpy BLAS threads: None for OpenBLAS's default, where the end-of-turn model and speaker ID run; when they run;
# more environment: Whisper's threads, gomp's wait policy)
CONFIGS = ((None, "beside_whisper", ()), (1, "beside_whisper", ()), (1, "after_words", ()))
# --compare: Whisper's threads (CTranslate2's, 2 on 2 cores) or its OpenMP threads' waiting (gomp spins a while)
COMPARISONS = {
    "whisper-threads": ((1, "beside_whisper", ()), (1, "beside_whisper", (("JARVIS_BENCH_WHISPER_THREADS", "1"),))),
    "omp-passive": ((1, "beside_whisper", ()), (1, "beside_whisper", (("OMP_WAIT_POLICY", "PASSIVE"),))),
    # the short pass decoded on Whisper's own threads (as before 2026-12-07) against a one-thread copy (now)
    "one-thread-decoder": ((1, "beside_whisper", (("JARVIS_BENCH_NO_DECODER", "1"),)), (1, "beside_whisper", ())),
    # the end-of-turn model and speaker ID as soon as Whisper is asked, or once its encoder is done (now)
    "encoder-first": ((1, "beside_whisper", ()), (1, "after_encoder", ())),
}
ROUNDS = 4


def _worker(conn) -> None:
    """RealtimeSTT's Whisper worker, reduced: Jarvis's command decoding of each clip sent, its words sent back."""
    import faster_whisper

    from jarvis.listen.short_window import ShortWindowFirst, one_thread_decoder
    from jarvis.listen.stt import command_options, resolve_model

    threads = int(os.environ.get("JARVIS_BENCH_WHISPER_THREADS", 0)) or cpu_threads()
    model = faster_whisper.WhisperModel(resolve_model("tiny.en"), device="cpu", compute_type="int8",
                                        cpu_threads=threads)
    decoder = None if os.environ.get("JARVIS_BENCH_NO_DECODER") else \
        one_thread_decoder(resolve_model("tiny.en"), "cpu", "int8", threads)
    short = ShortWindowFirst(model, decoder=decoder)
    conn.send("ready")
    while (request := conn.recv()) is not None:
        audio, full = request
        whisper = model if full else short
        segments, _ = whisper.transcribe(audio, language="en", initial_prompt=PROMPT, **command_options(audio))
        conn.send(" ".join(s.text for s in segments).strip())


def _clips() -> list[np.ndarray]:
    clips = []
    for voice in VOICES:
        wake = espeak("Jarvis", voice, None)
        for command in COMMANDS:
            clips.append(np.concatenate([np.zeros(RATE // 5, np.float32), wake, np.zeros(RATE * 3 // 10, np.float32),
                                         espeak(command, voice, None), np.zeros(RATE // 10, np.float32)]))
    return clips


def _pause(conn, clip: np.ndarray, turn_model, encoder, piper, schedule: str = "beside_whisper") -> dict:
    """One pause: the request, then the end-of-turn model and speaker ID beside it (``after_encoder``: once Whisper's
    encoder is done, as the voice loop does; ``after_words``: once the words are back, beside Piper), then Piper on
    the words."""
    from jarvis.listen.listener import ENCODER_FIRST_S
    from jarvis.listen.short_window import ENCODER

    marks: dict[str, float] = {}
    start, asked = time.perf_counter(), time.monotonic()
    conn.send((clip, False))
    after_words = schedule == "after_words"

    def hear() -> None:
        if schedule == "after_encoder":
            ENCODER.wait(asked, ENCODER_FIRST_S)
        turn_model.probability(clip)
        marks["end_of_turn_model"] = time.perf_counter()
        encoder.embed(clip)
        marks["speaker_id"] = time.perf_counter()

    beside = threading.Thread(target=hear)
    if not after_words:
        beside.start()
    words = conn.recv()
    marks["words"] = time.perf_counter()
    if after_words:
        beside.start()
    next(iter(piper.synthesize(REPLY)))
    marks["first_audio"] = time.perf_counter()
    beside.join()
    marks["all_done"] = time.perf_counter()
    marks["can_play"] = max(marks["first_audio"], marks["end_of_turn_model"])
    return {"text": words, **{k: (v - start) * 1000 for k, v in marks.items()}}


def _full_pass(conn, clip: np.ndarray) -> float:
    start = time.perf_counter()
    conn.send((clip, True))
    conn.recv()
    return (time.perf_counter() - start) * 1000


def _one_round(schedule: str) -> dict:
    """One round in this process (started with the configuration's environment): every clip's pause, and the 30 s
    pass on a few."""
    from jarvis.listen.end_of_turn import EndOfTurnModel
    from jarvis.speak.piper_engine import PiperEngine
    from jarvis.speakers.encoder import SpeakerEncoder

    clips = _clips()
    turn_model, encoder, piper = EndOfTurnModel(), SpeakerEncoder(), PiperEngine()
    turn_model.load()
    encoder.load()
    piper.load()
    here, there = mp.get_context("spawn").Pipe()
    # Where RealtimeSTT runs its Whisper worker: a thread of the listener's process on Linux, a process elsewhere
    # (RealtimeSTT.core.runtime.start_recorder_worker).
    start = threading.Thread if platform.system() == "Linux" else mp.get_context("spawn").Process
    process = start(target=_worker, args=(there,), daemon=True)
    process.start()
    try:
        here.recv()
        for clip in clips[:2]:   # warm-up
            _pause(here, clip, turn_model, encoder, piper)
            _full_pass(here, clip)
        pauses = [_pause(here, clip, turn_model, encoder, piper, schedule)
                  for clip in clips]
        return {"pauses": pauses, "full": [_full_pass(here, clip) for clip in clips[::4]]}
    finally:
        here.send(None)
        process.join(timeout=5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the result as JSON")
    parser.add_argument("--compare", choices=sorted(COMPARISONS),
                        help="instead of BLAS threads and the model's schedule: Whisper on 1 thread against 2, "
                             "gomp's threads passive, the short pass decoded on Whisper's threads against a "
                             "one-thread copy, or the end-of-turn model and speaker ID beside Whisper's encoder "
                             "against after it")
    parser.add_argument("--one-round", metavar="SCHEDULE", help=argparse.SUPPRESS)   # internal: one round here
    args = parser.parse_args()
    if args.one_round:
        print(json.dumps(_one_round(args.one_round)))
        return 0
    configs = COMPARISONS[args.compare] if args.compare else CONFIGS
    runs = {config: [] for config in configs}
    full = {config: [] for config in configs}
    # A process per round and configuration: OpenBLAS takes its thread count as numpy loads (limited later, through
    # threadpoolctl, it did not behave as when started with one). Configurations alternate round by round, so a
    # slower spell of the machine touches all alike.
    for number in range(ROUNDS):
        for blas, schedule, more in configs:
            env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
            if blas is not None:
                env["OPENBLAS_NUM_THREADS"] = str(blas)
            env.update(more)
            out = subprocess.run([sys.executable, __file__, "--one-round", schedule], env=env, check=True,
                                 capture_output=True, text=True, timeout=600)
            done = json.loads(out.stdout.strip().splitlines()[-1])
            runs[blas, schedule, more] += done["pauses"]
            full[blas, schedule, more] += done["full"]
            print(f"round {number + 1}/{ROUNDS}: blas {blas or 'default'}, {schedule}, {dict(more)}: first audio P50 "
                  f"{statistics.median(r['first_audio'] for r in done['pauses']):.0f} ms", flush=True)
    rows = []
    for blas, schedule, more in configs:
        done = runs[blas, schedule, more]
        row = {"blas_threads": blas or "openblas default (one per core)", "model_and_speaker_id": schedule,
               "environment": dict(more), "n": len(done)}
        for key in ("words", "end_of_turn_model", "speaker_id", "first_audio", "can_play", "all_done"):
            row[f"{key}_p50_ms"] = round(statistics.median(r[key] for r in done), 1)
        row["can_play_p95_ms"] = round(float(np.percentile([r["can_play"] for r in done], 95)), 1)
        row["full_30s_pass_alone_p50_ms"] = round(statistics.median(full[blas, schedule, more]), 1)
        row["transcripts"] = sorted({r["text"] for r in done})
        rows.append(row)
        print({k: v for k, v in row.items() if k != "transcripts"})
    result = {"benchmark": "pause_work", "hardware": hardware(), "date": date(),
              "command": "benchmarks/pause_work.py" + (f" --compare {args.compare}" if args.compare else "")
              + (f" --out {args.out}" if args.out else ""),
              "what": "ms from Whisper's request at a command's pause: its words (short window, worker process), "
                      "the end-of-turn model and speaker ID beside it or after the words (beside Piper), Piper's first "
                      "chunk of the reply "
                      f"{REPLY!r} once the words are back, can_play: both the first chunk and the model's verdict are "
                      "there; and Whisper's 30 s pass alone",
              "whisper_cpu_threads": cpu_threads(),
              "versions": versions(("faster-whisper", "ctranslate2", "onnxruntime", "numpy")), "rows": rows}
    if args.out:
        write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
