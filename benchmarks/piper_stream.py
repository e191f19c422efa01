"""Piper's first audio, whole sentence against pieces (``jarvis.speak.piper_stream``): for each reply, the time to
the first audio, to the whole sentence and the CPU time, with the voice model as one onnxruntime session (how
Jarvis ran it before) and split where its decoder starts; and how far apart the two are in samples (Piper's noise
off, so both make the same sentence).

The replies are the skill answers and the local LLM's first sentences of the committed 100-turn pipeline bench.
The two ways alternate sentence by sentence, ``ROUNDS`` times, so a shared machine's pace hits both alike.

Run: .venv/bin/python benchmarks/piper_stream.py [--out benchmarks/results/piper-stream-cpu.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REPLIES_FROM = ROOT / "benchmarks/results/pipeline-cpu-100-turns-trim.json"
ROUNDS = 3


def _first_sentences() -> list[str]:
    from jarvis.speak.normalize import normalize_for_speech
    from jarvis.speak.sentences import split_sentences

    replies = [t["reply"] for t in json.loads(REPLIES_FROM.read_text())["jarvis"]["turns"] if t.get("reply")]
    firsts = [split_sentences(normalize_for_speech(reply))[0] for reply in replies]
    return list(dict.fromkeys(s for s in firsts if s))   # each distinct sentence once


def _timed(pieces) -> tuple[float, float, float]:
    """(first piece, all, CPU) in ms for an iterator of audio pieces."""
    wall, cpu = time.perf_counter(), time.process_time()
    first = None
    for _ in pieces:
        if first is None:
            first = time.perf_counter() - wall
    return first * 1000, (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def _whole(session, feeds: dict):
    """The whole sentence from one run, as one piece (made when the timer asks for it)."""
    yield session.run(None, feeds)[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the result as JSON")
    args = parser.parse_args()
    import onnxruntime

    from jarvis.bench.stats import date, hardware, versions, write_json
    from jarvis.speak import piper_stream
    from jarvis.speak.piper_engine import PiperEngine, bundled_voice

    engine = PiperEngine()
    engine.load()
    engine.warmup()
    split = engine._voice.session
    if not isinstance(split, piper_stream.SplitVoiceModel):
        raise SystemExit("the bundled voice was not split")
    options = onnxruntime.SessionOptions()
    options.enable_cpu_mem_arena = False   # as Jarvis loaded the whole model
    whole = onnxruntime.InferenceSession(str(bundled_voice()), sess_options=options,
                                         providers=["CPUExecutionProvider"])
    sentences = _first_sentences()
    feeds = [engine._feeds(phonemes) for s in sentences for phonemes in engine._voice.phonemize(s)[:1]]
    for f in feeds:   # both warm on every length
        whole.run(None, f)
        list(split.stream(f))
    rows = {"whole": [], "pieces": []}
    for _ in range(ROUNDS):
        for f in feeds:
            rows["whole"].append(_timed(_whole(whole, f)))
            rows["pieces"].append(_timed(split.stream(f)))
    apart = []
    for f in feeds:
        steady = dict(f, scales=np.array([0.0, 1.0, 0.0], np.float32))
        a = whole.run(None, steady)[0].reshape(-1)
        b = np.concatenate(list(split.stream(steady)))
        apart.append(float(np.abs(a - b).max()))

    def summary(name: str) -> dict:
        first, total, cpu = zip(*rows[name])
        return {"first_audio_ms_p50": round(statistics.median(first), 1),
                "first_audio_ms_p90": round(float(np.percentile(first, 90)), 1),
                "whole_sentence_ms_p50": round(statistics.median(total), 1),
                "cpu_ms_mean": round(statistics.mean(cpu), 1)}

    result = {"benchmark": "piper_stream", "command": "python benchmarks/piper_stream.py " + " ".join(sys.argv[1:]),
              "date": date(), "hardware": hardware(), "versions": versions(("piper-tts", "onnxruntime")),
              "voice": bundled_voice().name, "sentences": len(feeds), "rounds": ROUNDS,
              "pieces": {"first_frames": piper_stream.FIRST_FRAMES, "growth": piper_stream.GROWTH,
                         "pad_frames": piper_stream.PAD_FRAMES},
              "whole_model": summary("whole"), "split_model": summary("pieces"),
              "max_sample_difference": max(apart), "gain": round(engine._streaming_gain(), 3)}
    print(json.dumps(result, indent=1))
    if args.out:
        write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
