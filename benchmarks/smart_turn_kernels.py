"""Smart Turn (the end-of-turn model) three ways on this CPU: one call's time, and its verdicts on Piper's speech.

- ``shipped, fused``: the model file as it ships, onnxruntime's full graph optimization (int8 kernels, u8 x s8);
- ``as written``: basic optimization only, each quantize/dequantize pair computed in float (the model's definition);
- ``unsigned weights, fused``: ``jarvis.listen.end_of_turn.unsigned_weights`` (what Jarvis loads on x86 without
  VNNI), full optimization: int8 kernels u8 x u8.

On x86 without VNNI the u8 x s8 kernels saturate (``jarvis.cpu.int8_products_saturate``), which moves verdicts on
sentences cut mid-way; u8 x u8 is exact. Verdicts are on the tests' sentences, whole and cut at Piper's own word
breaks, with the 200 ms of silence the listener asks after. One thread, as Jarvis runs it; time = median of 30 calls
on 8 s of features, nothing else running.

Run: .venv/bin/python benchmarks/smart_turn_kernels.py [--out benchmarks/results/smart-turn-kernels-cpu.json]
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

from jarvis import cpu  # noqa: E402
from jarvis.bench.stats import date, hardware, versions, write_json  # noqa: E402
from jarvis.listen import end_of_turn  # noqa: E402
from jarvis.listen.end_of_turn import EndOfTurnModel  # noqa: E402
from tests.speech import piper_16k, piper_cut_at_word  # noqa: E402

WHOLE = ["What time is it?", "What is the weather like in Paris today?", "Tell me a story about a dragon.",
         "Set a timer for ten minutes.", "Turn off the kitchen lights please.",
         "Remind me to call my sister tomorrow morning."]
CUT = [("What is the weather like in Paris today?", 5), ("I want to know the time in Tokyo.", 2),
       ("Tell me about the biggest cities in Europe.", 7), ("Set a timer for ten minutes.", 4),
       ("What is the weather like in Paris today?", 3), ("Remind me to call my sister tomorrow morning.", 3),
       ("How far away is the moon from the earth?", 4), ("Can you tell me about the history of Rome?", 5)]
TAIL = np.zeros(3200, np.float32)


def _session(model, level):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = level
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


def main() -> int:
    import onnxruntime as ort

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the result as JSON")
    args = parser.parse_args()
    path = str(end_of_turn._package_file(end_of_turn.MODEL_FILE))
    full, basic = ort.GraphOptimizationLevel.ORT_ENABLE_ALL, ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    sessions = {"shipped, fused": _session(path, full), "as written": _session(path, basic),
                "unsigned weights, fused": _session(end_of_turn.unsigned_weights(Path(path).read_bytes()), full)}
    model = EndOfTurnModel()
    model.load()
    clips = [(f"whole: {t}", np.concatenate([piper_16k(t), TAIL]), False) for t in WHOLE]
    clips += [(f"cut after {w} words: {t}", np.concatenate([piper_cut_at_word(t, w)[1], TAIL]), True) for t, w in CUT]
    rows = []
    for name, audio, cut in clips:
        row = {"clip": name, "cut": cut}
        for label, session in sessions.items():
            model._session = session
            row[label] = round(model.probability(audio), 4)
        rows.append(row)
        print(name, {k: v for k, v in row.items() if k in sessions}, flush=True)
    features = model._features(np.concatenate([piper_16k(WHOLE[1]), TAIL, np.zeros(16000 * 5, np.float32)])[
        -end_of_turn.WINDOW_S * end_of_turn.RATE:], do_normalize=True)[None]
    summary = {}
    for label, session in sessions.items():
        for _ in range(3):
            session.run(None, {"input_features": features})
        times = []
        for _ in range(30):
            start = time.perf_counter()
            session.run(None, {"input_features": features})
            times.append((time.perf_counter() - start) * 1000)
        right = sum((r[label] > 0.5) != r["cut"] for r in rows)
        summary[label] = {"call_ms_median": round(statistics.median(times), 1), "call_ms_min": round(min(times), 1),
                          "verdicts_right": f"{right}/{len(rows)}",
                          "max_difference_from_as_written": round(max(abs(r[label] - r["as written"]) for r in rows), 4)}
        print(label, summary[label], flush=True)
    flags = cpu.flags()
    result = {"benchmark": "smart_turn_kernels", "hardware": hardware(), "date": date(),
              "command": "python benchmarks/smart_turn_kernels.py" + (f" --out {args.out}" if args.out else ""),
              "int8_products_saturate_here": cpu.int8_products_saturate(flags),
              "summary": summary, "rows": rows, "versions": versions(["onnxruntime", "onnx", "pipecat-ai", "piper-tts"])}
    if args.out:
        write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
