"""How late does Silero hear a command's end, and would "a quiet chunk is silence" hear it sooner without new pauses?

A command's last pause starts when Silero, as RealtimeSTT runs it (512-sample chunks, speech when its probability is
above 1 − ``listen.silero_sensitivity``), stops hearing speech; ~90 ms of the voice-to-voice time before anything
else can start. Silero's memory keeps its probability up after the voice. A chunk's energy drops at once: this
script asks what an energy gate (a chunk under Q dBFS counts as silence, Silero's verdict otherwise) would change.

Each of the pipeline bench's four Piper speakers (``--voices piper``) says ten commands ("Jarvis, …"), with 0.5 s of
silence before and 1 s after, with no noise and with white noise at −70 and −60 dBFS. The voice's end is the end of
its last 10 ms window above −50 dBFS (the bench's own measure). For each gate:
- ``lag``: from the voice's end to the end of the chunk the pause would start on (Silero's chunk, or the gate's);
- ``new_pauses``: runs of chunks inside a command (from Silero's first speech to the last voiced chunk) that the
  gate would call silence while Silero hears speech all through them: pauses the listener would start that it does
  not start today (each one a Whisper pass, the end-of-turn model and speaker ID, dropped when the voice returns),
  with their lengths in chunks.

Run: .venv/bin/python benchmarks/quiet_end.py [--out benchmarks/results/quiet-end-cpu.json]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from jarvis.bench.pipeline import RATE, VOICE_SETS, espeak, voiced_bounds  # noqa: E402
from jarvis.bench.stats import date, hardware, versions, write_json  # noqa: E402
from jarvis.config import ListenSettings  # noqa: E402

COMMANDS = ["Jarvis, what time is it?", "Jarvis, what day is it?", "Jarvis, what is the time?", "Jarvis, who am I?",
            "Jarvis, why is the sky blue?", "Jarvis, what is the capital of Italy?",
            "Jarvis, set a timer for ten minutes.", "Jarvis, tell me a joke.", "Jarvis, what's the date today?",
            "Jarvis, how are you?"]
CHUNK = 512
FLOORS = (None, -70, -60)       # white noise under the voice, dBFS (None: digital silence)
GATES = (-60, -55, -50, -45)    # a chunk under this many dBFS counts as silence


def _chunks(model, audio: np.ndarray) -> tuple[list[float], list[float]]:
    """Silero's probability and the level (dBFS) of each 512-sample chunk, one stream from a fresh state."""
    getattr(model, "reset_states", lambda: None)()
    probs, levels = [], []
    for i in range(audio.size // CHUNK):
        chunk = audio[i * CHUNK:(i + 1) * CHUNK]
        p = model(chunk, RATE)
        probs.append(float(p.item() if hasattr(p, "item") else p))
        levels.append(float(20 * np.log10(np.sqrt(np.mean(chunk.astype(np.float64) ** 2)) + 1e-9)))
    return probs, levels


def _first(indices, silent) -> int:
    return next(i for i in indices if silent(i))


def _new_pauses(probs, levels, first: int, last: int, gate: float, speech: float) -> list[int]:
    """Lengths (chunks) of the runs inside [first, last) the gate calls silence with Silero hearing speech throughout."""
    runs, i = [], first
    while i < last:
        if probs[i] > speech and levels[i] >= gate:
            i += 1
            continue
        j = i
        while j < last and (probs[j] <= speech or levels[j] < gate):
            j += 1
        if all(p > speech for p in probs[i:j]):
            runs.append(j - i)
        i = j
    return runs


def main() -> int:
    from RealtimeSTT.core.silero_vad import create_silero_vad_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the result as JSON")
    args = parser.parse_args()
    speech = 1 - ListenSettings().silero_sensitivity
    model = create_silero_vad_model(backend="auto")
    rng = np.random.default_rng(0)
    before, after = np.zeros(RATE // 2, np.float32), np.zeros(RATE, np.float32)
    cases = []
    for voice in VOICE_SETS["piper"].values():
        for text in COMMANDS:
            said = np.concatenate([before, espeak(text, voice, None)])
            end = voiced_bounds(said)[1]
            for floor in FLOORS:
                audio = np.concatenate([said, after])
                if floor is not None:
                    audio = audio + rng.normal(0, 10 ** (floor / 20), audio.size).astype(np.float32)
                probs, levels = _chunks(model, audio)
                last = int(end * RATE) // CHUNK       # the chunk the voice ends in
                first = _first(range(len(probs)), lambda i: probs[i] > speech)
                after_voice = range(last, len(probs))
                case = {"voice": voice, "text": text, "floor_dbfs": floor, "voice_end_s": round(end, 3),
                        "silero_lag_ms": round(((_first(after_voice, lambda i: probs[i] <= speech) + 1) * CHUNK
                                                / RATE - end) * 1000, 1)}
                for gate in GATES:
                    chunk = _first(after_voice, lambda i: probs[i] <= speech or levels[i] < gate)
                    case[f"gate{gate}"] = {"lag_ms": round(((chunk + 1) * CHUNK / RATE - end) * 1000, 1),
                                           "new_pauses": _new_pauses(probs, levels, first, last, gate, speech)}
                cases.append(case)
    summary = []
    for floor in FLOORS:
        rows = [c for c in cases if c["floor_dbfs"] == floor]
        row = {"floor_dbfs": floor, "commands": len(rows),
               "silero_lag_ms_p50": statistics.median(c["silero_lag_ms"] for c in rows)}
        for gate in GATES:
            runs = [n for c in rows for n in c[f"gate{gate}"]["new_pauses"]]
            row[f"gate{gate}"] = {"lag_ms_p50": statistics.median(c[f"gate{gate}"]["lag_ms"] for c in rows),
                                  "new_pauses": len(runs), "new_pauses_over_one_chunk": sum(n > 1 for n in runs)}
        summary.append(row)
        print(f"noise {floor if floor is not None else 'none'}: Silero {row['silero_lag_ms_p50']:.0f} ms after the "
              f"voice; " + "; ".join(f"under {g} dBFS: {row[f'gate{g}']['lag_ms_p50']:.0f} ms, "
                                      f"{row[f'gate{g}']['new_pauses']} new pauses "
                                      f"({row[f'gate{g}']['new_pauses_over_one_chunk']} over one chunk)"
                                      for g in GATES))
    if args.out:
        write_json(args.out, {"benchmark": "quiet_end", "date": date(), "hardware": hardware(),
                              "command": "benchmarks/quiet_end.py " + " ".join(sys.argv[1:]),
                              "speech_above": speech, "chunk_samples": CHUNK, "summary": summary, "cases": cases,
                              "versions": versions(["RealtimeSTT", "onnxruntime", "piper-tts"])})
    return 0


if __name__ == "__main__":
    sys.exit(main())
