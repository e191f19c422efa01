"""Does the end-of-turn model (Smart Turn v3.2, jarvis.listen.end_of_turn) tell a finished command from a half
sentence, on the synthetic voices the benchmarks speak with? And how long does one decision take here?

Each command is spoken whole, and cut in the quietest 10 ms between the word before its marked stopping point and the
next word (by Whisper's word timestamps; after "What is the", "Set a timer for", …: a person stopping mid-sentence,
with the sentence's unfinished prosody), then 200 ms of
silence (when the listener would ask). Whisper (tiny.en, as the listener runs it) transcribes each; a cut whose
transcript does not end on the words before the mark is reported and left out (the cut missed the boundary).
Voices: Piper's bundled joe (natural prosody, with its sampling noise: 3 takes each) and three espeak-ng voices.
Correct = a finished turn for the whole command, unfinished for a cut one; scored for the model alone and for the
model with the words heard (``jarvis.listen.turn_end.turn_over``).

Run: .venv/bin/python benchmarks/smart_turn_probe.py [--out benchmarks/results/smart-turn-probe-cpu.json]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jarvis.bench.pipeline import RATE, espeak  # noqa: E402
from jarvis.bench.stats import date, hardware, stats_ms, versions, write_json  # noqa: E402
from jarvis.config import ListenSettings  # noqa: E402
from jarvis.listen.end_of_turn import EndOfTurnModel  # noqa: E402
from jarvis.listen.stt import Transcriber  # noqa: E402
from jarvis.listen.turn_end import last_word, turn_over  # noqa: E402

# Commands with a point where a person may stop mid-sentence ("|"): what comes before it cannot end a sentence.
SENTENCES = ["What is the | weather like in Paris today?", "Set a timer for | ten minutes.",
             "Tell me a | story about a dragon.", "Turn off the | kitchen lights please.",
             "Can you tell me about | the history of Rome?", "I want to know the | time in Tokyo.",
             "What is the | date today?", "How far away is | the moon from the earth?",
             "Remind me to | call my sister tomorrow morning.", "What time | is it?"]
VOICES = {"piper": ["piper:1.0"] * 3, "espeak-ng": ["en-us+f3", "en-us+m3", "en-gb-scotland+f3"]}
TAIL = np.zeros(3200, np.float32)


def end_of_word(whisper: Transcriber, audio: np.ndarray, n: int) -> float | None:
    """Where (seconds) to cut ``audio`` after its ``n``-th word: the quietest 10 ms between that word's end and the
    next word's start by Whisper's word timestamps (a margin of 50 ms either way); None if it heard fewer words."""
    segments, _ = whisper._model.transcribe(audio, language="en", beam_size=1, word_timestamps=True,
                                            vad_filter=False)
    words = [w for segment in segments for w in segment.words]
    if len(words) <= n:
        return None
    lo, hi = int((words[n - 1].end - 0.05) * 100), int((words[n].start + 0.05) * 100)
    win = RATE // 100
    frames = [float(np.sqrt(np.mean(audio[i * win:(i + 1) * win] ** 2))) for i in range(max(lo, 1), max(hi, lo + 2))]
    return (max(lo, 1) + int(np.argmin(frames))) / 100


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the result as JSON")
    args = parser.parse_args()
    model = EndOfTurnModel()
    model.load()
    whisper = Transcriber(ListenSettings())
    whisper.load()
    rows, seconds, missed_cuts = [], [], []
    for family, voices in VOICES.items():
        for voice in voices:
            for marked in SENTENCES:
                before, _ = marked.split(" | ")
                text = marked.replace(" | ", " ")
                whole = espeak(text, voice, None)
                stop = end_of_word(whisper, whole, len(before.split()))
                for cut in (False, True):
                    if cut and stop is None:
                        missed_cuts.append({"voice": voice, "text": marked, "heard": "(too few words heard)"})
                        continue
                    audio = whole[: int(stop * RATE)] if cut else whole
                    start = time.perf_counter()
                    p = model.probability(np.concatenate([audio, TAIL]))
                    seconds.append(time.perf_counter() - start)
                    heard = whisper.transcribe(audio)
                    if cut and last_word(heard) != last_word(before):
                        missed_cuts.append({"voice": voice, "text": marked, "heard": heard})
                        continue
                    rows.append({"voice": voice, "family": family, "text": marked, "cut": cut, "heard": heard,
                                 "probability": round(p, 4), "model_correct": (p > 0.5) != cut,
                                 "with_words_correct": turn_over(p, heard) != cut})
            print(voice, " ".join(f"{r['probability']:.2f}" for r in rows if r["voice"] == voice), flush=True)
    summary = {}
    for family in VOICES:
        mine = [r for r in rows if r["family"] == family]
        whole = [r for r in mine if not r["cut"]]
        cut = [r for r in mine if r["cut"]]
        summary[family] = {
            "whole_heard_finished": {"model": f"{sum(r['model_correct'] for r in whole)}/{len(whole)}",
                                     "model_and_words": f"{sum(r['with_words_correct'] for r in whole)}/{len(whole)}"},
            "cut_heard_unfinished": {"model": f"{sum(r['model_correct'] for r in cut)}/{len(cut)}",
                                     "model_and_words": f"{sum(r['with_words_correct'] for r in cut)}/{len(cut)}"},
            "median_probability_whole": round(statistics.median(r["probability"] for r in whole), 3),
            "median_probability_cut": round(statistics.median(r["probability"] for r in cut), 3) if cut else None}
    result = {"benchmark": "smart_turn_probe", "hardware": hardware(), "date": date(),
              "command": "python benchmarks/smart_turn_probe.py" + (f" --out {args.out}" if args.out else ""),
              "model": "smart-turn-v3.2-cpu.onnx (pipecat-ai wheel), onnxruntime, 1 thread",
              "summary": summary, "decision_ms": stats_ms(seconds, digits=1), "rows": rows,
              "cuts_left_out": missed_cuts,
              "versions": versions(["pipecat-ai", "onnxruntime", "piper-tts", "faster-whisper"])}
    for family, s in summary.items():
        print(f"{family}: whole heard finished {s['whole_heard_finished']}, cut heard unfinished "
              f"{s['cut_heard_unfinished']} (median p {s['median_probability_whole']} / {s['median_probability_cut']})")
    print(f"cuts left out (transcript did not end at the mark): {len(missed_cuts)}")
    print("decision ms:", result["decision_ms"])
    if args.out:
        write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
