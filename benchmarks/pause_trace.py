"""Where a command's last pause spends its time and its CPU, turn by turn, in the real pipeline bench.

Runs ``jarvis bench pipeline`` in this process with timers around the pause's work (Whisper's pass and the scoring
of its words, the end-of-turn model, speaker ID, Piper's first sentence, the words' report) and a sampler that reads
every thread's CPU time (``/proc/self/task/*/schedstat``, Linux) and the audio server's every 5 ms. For each turn it
prints the timeline from the last voiced sample and the CPU each thread used from the pause to Whisper's words and
from the words to Piper's first chunk, beside the whole machine's (``/proc/stat``). A thread that ended before the
window's last sample (Piper's calling thread) is not counted. The sampler costs ~10–15 % of a core itself (21–39 ms
in 172–265 ms windows, ``results/pause-trace-cpu.json``): compare orders and shares with a plain bench run, not totals.

Run: .venv/bin/python benchmarks/pause_trace.py OUT_PREFIX [--turns 24] (writes OUT_PREFIX.json, the bench's
result, and OUT_PREFIX.trace.json; prints the timelines).
"""
from __future__ import annotations

import argparse
import bisect
import functools
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MARKS: list[tuple[float, str, str]] = []   # (monotonic time, thread name, label + "+" start / "-" end / "1" first)
NAMES: dict[str, str] = {}                  # native thread id -> Python thread name
SAMPLES: list[tuple[float, dict]] = []      # (time, {thread id or "audio server" or "ALL": cpu})


def _mark(label: str) -> None:
    thread = threading.current_thread()
    NAMES[str(threading.get_native_id())] = thread.name
    MARKS.append((time.monotonic(), thread.name, label))


def _timed(owner, name: str, label: str, generator: bool = False) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def call(*args, **kwargs):
        _mark(label + "+")
        try:
            return original(*args, **kwargs)
        finally:
            _mark(label + "-")

    @functools.wraps(original)
    def stream(*args, **kwargs):
        _mark(label + "+")
        for n, item in enumerate(original(*args, **kwargs)):
            if n == 0:
                _mark(label + "1")
            yield item
        _mark(label + "-")

    setattr(owner, name, stream if generator else call)


def _instrument() -> None:
    from jarvis.listen import early_transcript, end_of_turn, listener, short_window
    from jarvis.speak import piper_engine
    from jarvis.speakers import identify

    _timed(short_window.ShortWindowFirst, "transcribe", "whisper")
    _timed(short_window.ShortWindowFirst, "_heard", "score words")
    _timed(short_window.EncoderWatch, "done", "encoder done")
    _timed(end_of_turn.EndOfTurnModel, "probability", "end-of-turn model")
    _timed(identify.Identifier, "identify", "speaker ID")
    _timed(piper_engine.PiperEngine, "synthesize", "piper", generator=True)
    _timed(early_transcript.ReadAheadPipe, "send", "whisper asked")
    _timed(listener.Listener, "_on_early_transcript", "words reported")


def _sample_forever() -> None:
    audio_server: list[str] = []
    last_names = 0.0
    while True:
        now = time.monotonic()
        if now - last_names > 0.5:   # thread names, and the audio server once the bench has started it
            for thread in threading.enumerate():
                if thread.native_id:
                    NAMES[str(thread.native_id)] = thread.name
            if not audio_server:
                audio_server += subprocess.run(["pgrep", "-x", "pulseaudio"], capture_output=True,
                                               text=True).stdout.split()
            last_names = now
        snap: dict = {}
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/schedstat") as f:
                    snap[tid] = int(f.read().split()[0]) / 1e6   # ms on a CPU
            except OSError:
                pass
        for pid in audio_server:
            try:
                with open(f"/proc/{pid}/schedstat") as f:
                    snap["audio server"] = int(f.read().split()[0]) / 1e6
            except OSError:
                pass
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        snap["ALL"] = (sum(fields) - fields[3] - fields[4]) * 10.0   # busy jiffies -> ms, every core
        SAMPLES.append((now, snap))
        time.sleep(0.005)


def _cpu(a: float, b: float) -> tuple[dict[str, float], float]:
    """CPU ms each thread (by name) used between a and b, and the whole machine's busy ms."""
    times = [t for t, _ in SAMPLES]
    first = SAMPLES[min(bisect.bisect_left(times, a), len(SAMPLES) - 1)][1]
    last = SAMPLES[min(bisect.bisect_left(times, b), len(SAMPLES) - 1)][1]
    used: dict[str, float] = {}
    for key, value in last.items():
        if key != "ALL" and value - first.get(key, 0.0) > 2.0:
            name = NAMES.get(key, key if not key.isdigit() else f"native {key}")
            used[name] = used.get(name, 0.0) + value - first.get(key, 0.0)
    return used, last["ALL"] - first["ALL"]


def _turn_trace(figures: dict, events: list, last_voiced: float | None) -> dict:
    if last_voiced is None:
        return {"said": figures["said"], "timeline": [], "cpu": {}}
    near = lambda t: last_voiced - 0.5 < t < last_voiced + 1.2  # noqa: E731
    timeline = [(round((t - last_voiced) * 1000, 1), "event", kind) for kind, t in events if near(t)]
    timeline += [(round((t - last_voiced) * 1000, 1), thread, label) for t, thread, label in list(MARKS) if near(t)]
    timeline.sort()
    trace = {"said": figures["said"], "voice_to_voice_ms": figures["voice_to_voice"], "timeline": timeline,
             "cpu": {}}
    speech_end = next((t for kind, t in events if kind == "speech_end" and t > last_voiced - 0.5), None)
    pauses = [t for kind, t in events if kind == "vad_silence" and speech_end is not None and t < speech_end]
    first_chunk = next((t for kind, t in events if kind == "tts_first_chunk" and t > last_voiced - 0.5), None)
    if pauses and first_chunk is not None:
        words = next((t for t, _, label in MARKS if label == "words reported-" and t > pauses[-1]), pauses[-1])
        for window, (a, b) in {"pause to words": (pauses[-1], words), "words to first chunk": (words, first_chunk)
                               }.items():
            used, machine = _cpu(a, b)
            trace["cpu"][window] = {"wall_ms": round((b - a) * 1000, 1), "machine_busy_ms": round(machine),
                                    "threads_ms": {k: round(v) for k, v in sorted(used.items(), key=lambda kv: -kv[1])}}
    return trace


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="prefix of the files written")
    parser.add_argument("--turns", type=int, default=24)
    args = parser.parse_args()
    from jarvis import app

    app._prepare_environment()   # as `jarvis` starts: BLAS threads, malloc arenas, spawn
    _instrument()
    threading.Thread(target=_sample_forever, name="cpu-sampler", daemon=True).start()
    from jarvis import cli
    from jarvis.bench import pipeline

    traces = []
    figures_of = pipeline._turn_figures

    def figures(turn, events, tap, loop):
        result = figures_of(turn, events, tap, loop)
        latency = loop.capture.latency_s if loop.capture else 0.0
        last_voiced = tap.last - latency if tap.last is not None else None
        traces.append(_turn_trace(result, [(e.type, e.t) for e in events], last_voiced))
        return result

    pipeline._turn_figures = figures
    code = cli.run(["bench", "pipeline", "--turns", str(args.turns), "--preset", "low_latency", "--voices", "piper",
                    "--no-peer", "--json", f"{args.out}.json"])
    Path(f"{args.out}.trace.json").write_text(json.dumps(traces, indent=1))
    for trace in traces:
        print(f"--- {trace['said']!r}: voice to voice {trace.get('voice_to_voice_ms')} ms")
        for at, who, what in trace["timeline"]:
            print(f"  {at:8.1f} ms  {who:34.34s} {what}")
        for window, cpu in trace["cpu"].items():
            threads = ", ".join(f"{k} {v}" for k, v in list(cpu["threads_ms"].items())[:8])
            print(f"  CPU {window}: {cpu['wall_ms']} ms wall, machine busy {cpu['machine_busy_ms']} ms; {threads}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
