"""Does Whisper hear Jarvis's commands as well when its encoder sees a window shorter than 30 s?

faster-whisper pads every clip to Whisper's 30 s window, and on 2 CPU cores tiny.en's encoder spends ~0.35 s on
that window whatever the command's length; CTranslate2's encoder also takes a shorter window, in a time that
follows the window. This transcribes the clips of ``whisper_prompt.py`` (32 commands in five voices, the wake word
followed by silence or noise) with Jarvis's prompt: as RealtimeSTT's faster-whisper engine does (and with its
timestamps or temperature fallback off), then with this script's own decoder (faster-whisper's features, prompt,
suppressed tokens and no-speech rule for one window, greedy, no timestamps) on a 30 s window (the control), on
windows fitted to the clip (the clip plus a margin, in whole seconds) and on fixed shorter windows. Each run is
scored as ``whisper_prompt.py`` scores (words, intents, noise clips that would have been answered), with the time
per clip. It measures ideas for issue 14 (a shorter final Whisper pass); Jarvis uses none of them yet.

Run: .venv/bin/python benchmarks/whisper_window.py [--out benchmarks/results/whisper-window-cpu.json]
(about 12 minutes on 2 cores, one CPU thread for Whisper). Piper's voice varies from run to run; within a run every
candidate hears the same clips.
"""
from __future__ import annotations

import argparse
import json
import math
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

from whisper_prompt import ESPEAK_VOICES, NOISES, make_clips, score, summary  # noqa: E402

from jarvis.config import ListenSettings  # noqa: E402
from jarvis.listen.stt import resolve_model  # noqa: E402
from jarvis.listen.vocabulary import whisper_prompt  # noqa: E402

FULL_FRAMES = 3000   # Whisper's 30 s window, in 10 ms log-Mel frames


def fitted(margin_s: float):
    return lambda frames: min(FULL_FRAMES, int(math.ceil((frames + margin_s * 100) / 100) * 100))


def fixed(seconds: float):
    return lambda frames: int(seconds * 100)


def one_window(model, audio: np.ndarray, window, prompt: str, beam_size: int) -> str:
    """One greedy (or beam) pass over ``window(frames)`` frames, as faster-whisper decodes its first window."""
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_suppressed_tokens

    features = model.feature_extractor(audio)
    frames = features.shape[-1]
    size = window(frames)
    features = np.pad(features, [(0, 0), (0, max(0, size - frames))])[:, :size]  # zeros, as faster-whisper pads
    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language="en")
    tokens_in = model.get_prompt(tokenizer, tokenizer.encode(" " + prompt.strip()), without_timestamps=True)
    result = model.model.generate(model.encode(features), [tokens_in], beam_size=beam_size,
                                  max_length=model.max_length, return_scores=True, return_no_speech_prob=True,
                                  suppress_blank=True, suppress_tokens=get_suppressed_tokens(tokenizer, [-1]))[0]
    tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
    avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
    if result.no_speech_prob > 0.6 and avg_logprob < -1.0:   # faster-whisper's defaults: a silent window
        return ""
    return tokenizer.decode(tokens).strip()


def run(transcribe, clips) -> dict:
    times, transcripts = [], []
    for clip in clips:
        started = time.perf_counter()
        text = transcribe(clip["audio"])
        times.append(time.perf_counter() - started)
        transcripts.append([clip["voice"], clip.get("said") or clip["noise"], text])
    ms = np.array(times) * 1000
    return {"prompt": None, "hotwords": None, "seconds": round(float(ms.sum()) / 1000, 1),
            "ms_per_clip_p50": round(float(np.percentile(ms, 50)), 1),
            "ms_per_clip_p95": round(float(np.percentile(ms, 95)), 1), "transcripts": transcripts}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the JSON results here")
    parser.add_argument("--note", default="", help="what else ran on the machine meanwhile (goes in the JSON)")
    args = parser.parse_args()

    from faster_whisper import WhisperModel

    settings = ListenSettings()
    prompt = whisper_prompt(settings.wake_word)
    model = WhisperModel(resolve_model(settings.stt_model), device="cpu",
                         compute_type=settings.stt_compute_type, cpu_threads=1)
    with tempfile.TemporaryDirectory() as tmp:
        commands, noises = make_clips(Path(tmp))
    clips = commands + noises

    def faster_whisper(audio, **options):
        segments, _ = model.transcribe(audio, language=settings.language, beam_size=settings.beam_size,
                                       initial_prompt=prompt, suppress_tokens=[-1], vad_filter=False, **options)
        return " ".join(s.text for s in segments).strip()

    windows = {"30 s, this decoder (control)": fixed(30), "fitted: clip + 1 s": fitted(1.0),
               "fitted: clip + 5 s": fitted(5.0), "10 s": fixed(10), "20 s": fixed(20)}
    candidates = {
        "30 s, faster-whisper (Jarvis today)": faster_whisper,
        # The two ways this decoder differs from faster-whisper's defaults, one at a time: no timestamp tokens,
        # and no retries at higher temperatures when a pass looks unsure (up to five more passes on noise).
        "30 s, faster-whisper, no timestamps": lambda audio: faster_whisper(audio, without_timestamps=True),
        "30 s, faster-whisper, no temperature fallback": lambda audio: faster_whisper(audio, temperature=0.0),
        "30 s, faster-whisper, neither": lambda audio: faster_whisper(audio, without_timestamps=True,
                                                                      temperature=0.0),
    }
    candidates.update({name: (lambda audio, w=w: one_window(model, audio, w, prompt, settings.beam_size))
                       for name, w in windows.items()})
    for transcribe in candidates.values():   # warm-up: the first passes of each window size are slower
        for clip in clips[:3]:
            transcribe(clip["audio"])
    runs = {}
    for name, transcribe in candidates.items():
        raw = run(transcribe, clips)
        scored = score(raw)
        scored.update(ms_per_clip_p50=raw["ms_per_clip_p50"], ms_per_clip_p95=raw["ms_per_clip_p95"])
        runs[name] = scored
        print(f"{summary(name, scored)}  per clip P50 {scored['ms_per_clip_p50']} ms, "
              f"P95 {scored['ms_per_clip_p95']} ms", flush=True)
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
              "date": time.strftime("%Y-%m-%d"), "meanwhile": args.note,
              "model": settings.stt_model, "beam_size": settings.beam_size, "cpu_threads": 1, "prompt": prompt,
              "voices": ESPEAK_VOICES + ["piper joe"], "noises": list(NOISES), "runs": runs}
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
