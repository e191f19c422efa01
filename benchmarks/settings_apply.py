"""Seconds from OK in Settings to Jarvis listening again, per kind of change, on the private audio server.

What the model-host thread does on OK (jarvis/ui/host_thread.py), without the windows:

- "now": a change of audio or listening settings stops the loop keeping its models; the host releases the listener
  and the parts whose own settings changed (``ModelHost.release_for``), and a new loop loads only what is missing;
- "before": the loop stopped and closed every model, and a new loop loaded them all again (until commit 3ee771b);
- a voice (TTS) change never restarts the loop: the new chain is loaded and warmed, then swapped in
  (``VoiceLoop.apply_settings``); it is the same before and now.

Changes: the output device (jarvis_speaker <-> default), Whisper (compute type int8 <-> float32: RealtimeSTT loads
it again) and the voices (tts.engines piper,system <-> system,piper). Timed from the change until the new loop's
``ready`` (listening again); each REPEATS times, back and forth. Piper and the system voice speak, the local LLM
(SmolLM2-135M) answers: CSM's weights are not on this machine, so "before" here lacks its ~4.5 GB reload.

Run: .venv/bin/python benchmarks/settings_apply.py [--out benchmarks/results/settings-apply-cpu.json]
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jarvis import events  # noqa: E402
from jarvis.bench.stats import date, hardware, versions, write_json  # noqa: E402
from jarvis.config import Settings  # noqa: E402

REPEATS = 3


def base_settings() -> Settings:
    s = Settings()
    s.audio.input_device, s.audio.output_device = "jarvis_mic", "jarvis_speaker"
    s.tts.engines = ["piper", "system"]
    return s


def changed(s: Settings, kind: str) -> Settings:
    """``s`` with one thing switched to the other of its two values."""
    new = copy.deepcopy(s)
    if kind == "output device":
        new.audio.output_device = "default" if s.audio.output_device == "jarvis_speaker" else "jarvis_speaker"
    elif kind == "whisper":
        new.listen.stt_compute_type = "float32" if s.listen.stt_compute_type == "int8" else "int8"
    elif kind == "voice":
        new.tts.engines = list(reversed(s.tts.engines))
    return new


def start(settings: Settings, bus, host=None):
    from jarvis.pipeline import VoiceLoop

    loop = VoiceLoop(settings, bus, host=host)
    loop.start()
    return loop


def apply(loop, new: Settings, bus, keep: bool):
    """The host thread's OK: the loop itself for what applies live, else a restart. Returns (loop, seconds)."""
    t0 = time.monotonic()
    if not loop.apply_settings(copy.deepcopy(new)):
        return loop, time.monotonic() - t0
    if keep:
        host = loop.stop(keep_models=True)
        host.release_for(copy.deepcopy(new))
        loop = start(copy.deepcopy(new), bus, host)
    else:
        loop.stop()
        loop = start(copy.deepcopy(new), bus)
    return loop, time.monotonic() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the result as JSON")
    parser.add_argument("--repeats", type=int, default=REPEATS, help=f"times per change and way (default {REPEATS})")
    args = parser.parse_args()
    from jarvis.audio import devices
    from jarvis.bench.virtual_audio import VirtualAudio

    os.environ["JARVIS_HOME"] = tempfile.mkdtemp(prefix="jarvis-settings-bench-")
    bus = events.EventBus()
    figures: dict[str, dict[str, list[float]]] = {}
    with VirtualAudio() as audio:
        audio.apply()
        devices.refresh()
        settings = base_settings()
        loop = start(copy.deepcopy(settings), bus)
        try:
            for kind in ("output device", "whisper", "voice"):
                for how, keep in (("before", False), ("now", True)):
                    times = figures.setdefault(kind, {}).setdefault(how, [])
                    for _ in range(args.repeats):
                        new = changed(settings, kind)
                        loop, seconds = apply(loop, new, bus, keep)
                        settings = new
                        times.append(round(seconds, 2))
                        print(f"{kind:14} {how:6} {seconds:6.2f} s", flush=True)
        finally:
            loop.stop()
    result = {
        "benchmark": "settings_apply", "hardware": hardware(), "date": date(),
        "command": "python benchmarks/settings_apply.py" + (f" --out {args.out}" if args.out else "")
                   + (f" --repeats {args.repeats}" if args.repeats != REPEATS else ""),
        "what": "seconds from the change (OK in Settings) until the voice loop listens again ('ready'); "
                "'before' reloads every model, 'now' keeps what the change does not touch",
        "engines": ["piper", "system"], "llm": "local (SmolLM2-135M)",
        "seconds": figures,
        "median_s": {kind: {how: statistics.median(v) for how, v in by.items()} for kind, by in figures.items()},
        "versions": versions(["faster-whisper", "realtimestt", "piper-tts", "llama-cpp-python", "resemblyzer"]),
    }
    for kind, by in result["median_s"].items():
        print(f"{kind:14} before {by['before']:.2f} s, now {by['now']:.2f} s (median of {args.repeats})")
    if args.out:
        write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
