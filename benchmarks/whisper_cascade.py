"""A command's short Whisper window first (jarvis.listen.short_window) against the 30 s pass alone.

Two sets of clips, transcribed by tiny.en as Jarvis decodes a command (``Transcriber.transcribe(..., command=True)``),
once with the 30 s pass alone and once with the short window first:

- "command alone": the 32 commands of ``whisper_prompt.py`` in five voices without the wake word (as the voice
  loop's recording mostly holds them: it starts near the end of the wake word) and 2 s of silence or noise alone;
- "wake word + command": ``whisper_prompt.py``'s own clips ("Jarvis, …", the wake word followed by silence or noise,
  the noises alone).

``MIN_AVG_LOGPROB`` was chosen on the first set (``--sweep`` scores other thresholds on both from the same passes);
the second is the check on clips it was not chosen on. Scored as ``whisper_prompt.py`` scores, with the time per
clip.

Run: .venv/bin/python benchmarks/whisper_cascade.py [--out benchmarks/results/whisper-cascade-cpu.json] [--sweep]
[--window 5] [--short-only] (about 12 minutes on 2 cores; Whisper with its default threads, as the voice loop runs
it).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from whisper_prompt import (COMMANDS, ESPEAK_VOICES, NOISES, espeak, make_clips, noise_clip, piper_speaker,  # noqa: E402
                            score, summary, with_room)

from jarvis.config import ListenSettings  # noqa: E402
from jarvis.listen import short_window  # noqa: E402
from jarvis.listen.stt import Transcriber, command_options  # noqa: E402
from jarvis.listen.vocabulary import whisper_prompt  # noqa: E402

THRESHOLDS = (-0.2, -0.3, -0.4, -0.5, -0.7, -1.0)


def commands_alone(tmp: Path) -> list[dict]:
    voices = {v: (lambda text, d, v=v: espeak(text, v, d)) for v in ESPEAK_VOICES}
    voices["piper joe"] = piper_speaker()
    clips = [{"voice": voice, "said": said, "audio": with_room(say(said[0].upper() + said[1:] + ".", tmp))}
             for voice, say in voices.items() for said, _ in COMMANDS]
    return clips + [{"voice": "-", "noise": name, "audio": noise_clip(effect, tmp)}
                    for name, effect in NOISES.items() for _ in range(3)]


def full_pass(transcriber: Transcriber, audio: np.ndarray, prompt: str) -> str:
    """The 30 s pass alone, as Transcriber.transcribe(command=True) decoded a command until the short window."""
    segments, _ = transcriber._model.transcribe(audio, language="en", beam_size=transcriber.settings.beam_size,
                                                vad_filter=False, initial_prompt=prompt, **command_options(audio))
    return " ".join(seg.text.strip() for seg in segments).strip()


class Timed:
    """Transcribes every clip; keeps each transcript and its time (and the short pass's own verdict)."""

    def __init__(self, transcriber: Transcriber, prompt: str):
        self.transcriber, self.prompt = transcriber, prompt

    def run(self, clips: list[dict], short_first: bool) -> dict:
        model = self.transcriber._command_model
        transcripts, times = [], []
        kept_before = model.kept
        for clip in clips:
            started = time.perf_counter()
            if short_first:
                text = self.transcriber.transcribe(clip["audio"], prompt=self.prompt, command=True)
            else:
                text = full_pass(self.transcriber, clip["audio"], self.prompt)
            times.append(time.perf_counter() - started)
            transcripts.append([clip["voice"], clip.get("said") or clip["noise"], text])
        ms = np.array(times) * 1000
        return {"prompt": self.prompt, "hotwords": None, "seconds": round(float(ms.sum()) / 1000, 1),
                "transcripts": transcripts, "ms_per_clip_p50": round(float(np.percentile(ms, 50)), 1),
                "ms_per_clip_p95": round(float(np.percentile(ms, 95)), 1),
                "short_pass_kept": (model.kept - kept_before) if short_first else None}


def sweep(transcriber: Transcriber, prompt: str, clips: list[dict], set_name: str) -> list[dict]:
    """Every clip's short pass once (text, average log-probability), scored at other thresholds."""
    model = transcriber._command_model
    passes = []
    for clip in clips:
        text, avg, complete, _ = model._decode(clip["audio"], {"initial_prompt": prompt, "language": "en"})
        full = full_pass(transcriber, clip["audio"], prompt)
        passes.append((clip, text, avg, complete, full))
    rows = []
    for threshold in THRESHOLDS:
        transcripts, kept = [], 0
        for clip, text, avg, complete, full in passes:
            keep = short_window.fits(clip["audio"]) and short_window.sure(text, avg, complete, threshold)
            kept += keep
            transcripts.append([clip["voice"], clip.get("said") or clip["noise"], text if keep else full])
        scored = score({"prompt": prompt, "hotwords": None, "seconds": 0, "transcripts": transcripts})
        rows.append({"min_avg_logprob": threshold, "short_pass_kept": kept, **{k: scored[k] for k in (
            "words_right", "commands", "intent_right", "open_kept", "noise_clean", "noise_clips")}})
        print(f"{set_name:18} {summary(f'threshold {threshold}', scored)}  kept {kept}", flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the JSON results here")
    parser.add_argument("--sweep", action="store_true", help="also score other thresholds")
    parser.add_argument("--window", type=int, default=short_window.WINDOW_S,
                        help=f"the short window in seconds (default {short_window.WINDOW_S})")
    parser.add_argument("--short-only", action="store_true",
                        help="skip the 30 s pass alone (its figures do not depend on the window)")
    args = parser.parse_args()
    short_window.WINDOW_S = args.window

    settings = ListenSettings(stt_short_window=True)   # as the low-latency preset sets it
    prompt = whisper_prompt(settings.wake_word)
    transcriber = Transcriber(settings)
    transcriber.load()
    with tempfile.TemporaryDirectory() as tmp:
        commands, noises = make_clips(Path(tmp))
        sets = {"command alone": commands_alone(Path(tmp)), "wake word + command": commands + noises}
    timed = Timed(transcriber, prompt)
    for clip in commands[:3]:   # warm-up: the first passes of each window size are slower
        timed.run([clip], True), timed.run([clip], False)
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
              "date": time.strftime("%Y-%m-%d"), "model": settings.stt_model, "beam_size": settings.beam_size,
              "prompt": prompt, "window_s": short_window.WINDOW_S, "min_avg_logprob": short_window.MIN_AVG_LOGPROB,
              "threshold_chosen_on": "command alone", "sets": {}}
    for set_name, clips in sets.items():
        result["sets"][set_name] = {}
        modes = (("30 s pass alone", False), ("short window first", True))
        for name, short_first in modes[1:] if args.short_only else modes:
            raw = timed.run(clips, short_first)
            scored = score(raw)
            scored.update(ms_per_clip_p50=raw["ms_per_clip_p50"], ms_per_clip_p95=raw["ms_per_clip_p95"],
                          short_pass_kept=raw["short_pass_kept"], clips=len(clips))
            result["sets"][set_name][name] = scored
            print(f"{set_name:18} {summary(name, scored)}  per clip P50 {scored['ms_per_clip_p50']} ms, P95 "
                  f"{scored['ms_per_clip_p95']} ms, short pass kept {scored['short_pass_kept']}", flush=True)
    if args.sweep:
        result["sweep"] = {name: sweep(transcriber, prompt, clips, name) for name, clips in sets.items()}
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
