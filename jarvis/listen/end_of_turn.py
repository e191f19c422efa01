"""End of turn by a model: did the person finish, or only pause? (pipecat's Smart Turn v3, run here directly)

Smart Turn v3.2 is an ~8.7 MB ONNX audio model (a Whisper-tiny encoder with a classifier) that hears the last
8 s of a person's speech and gives the probability that they finished their turn: a falling "…today?" against a
trailing "What is the… um". Its weights ship inside the ``pipecat-ai`` wheel, with the numpy feature code it was
trained with. Jarvis installs that wheel without its dependencies and loads both files by path, so none of
pipecat's runtime (loguru, aiohttp, …) comes into Jarvis and nothing is downloaded.

It runs on onnxruntime with one thread: ~60-140 ms per call on the 2-core Xeon (benchmarks/smart_turn_probe.py);
on x86 without VNNI as written, not through int8 kernels (``EndOfTurnModel.optimization``).
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import threading
from pathlib import Path

import numpy as np

from jarvis import cpu
from jarvis.errors import NotAvailable

RATE = 16000
WINDOW_S = 8                        # the model hears the last 8 s (zero-padded in front when shorter)
PACKAGE = "pipecat-ai"
MODEL_FILE = "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
FEATURES_FILE = "pipecat/audio/turn/smart_turn/_whisper_features.py"
MISSING = (f"The end-of-turn model (Smart Turn v3, in the {PACKAGE} package) is missing: run scripts/setup.sh, or "
           "set listen.end_of_turn to \"silence\".")


def _package_file(relative: str) -> Path:
    try:
        path = Path(str(importlib.metadata.distribution(PACKAGE).locate_file(relative)))
    except importlib.metadata.PackageNotFoundError:
        raise NotAvailable("end_of_turn_missing", MISSING) from None
    if not path.is_file():
        raise NotAvailable("end_of_turn_missing", MISSING)
    return path


class EndOfTurnModel:
    """``probability(audio)``: how likely the speech in ``audio`` (float32, 16 kHz mono, ending now) is a finished
    turn. Thread-safe; load once."""

    def __init__(self) -> None:
        self._session = None
        self._features = None
        self._lock = threading.Lock()

    def load(self) -> None:
        if self._session is not None:
            return
        import onnxruntime as ort

        spec = importlib.util.spec_from_file_location("jarvis_smart_turn_features", _package_file(FEATURES_FILE))
        features = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(features)   # numpy only: pipecat's package itself is never imported
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1  # the listener's other work keeps a core
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = self.optimization(ort)
        try:
            session = ort.InferenceSession(str(_package_file(MODEL_FILE)), sess_options=options,
                                           providers=["CPUExecutionProvider"])
        except Exception as exc:  # a damaged file
            raise NotAvailable("end_of_turn_failed", f"The end-of-turn model could not load ({exc}). {MISSING}") \
                from exc
        self._features, self._session = features.compute_whisper_log_mel_features, session

    @staticmethod
    def optimization(ort, cpu_flags: set[str] | None | bool = True):
        """onnxruntime's graph optimization for this CPU (``cpu_flags``: its flags; True reads them): all of it fuses
        the model's quantize/dequantize pairs into int8 kernels, which saturate on x86 without VNNI; basic keeps
        them as written, computed in float (~125 ms a call, not ~70, on such a 2-core EPYC)."""
        flags = cpu.flags() if cpu_flags is True else cpu_flags
        if cpu.int8_products_saturate(flags):
            return ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        return ort.GraphOptimizationLevel.ORT_ENABLE_ALL

    @property
    def loaded(self) -> bool:
        return self._session is not None

    def probability(self, audio: np.ndarray) -> float:
        if self._session is None:
            raise NotAvailable("end_of_turn_not_loaded", "The end-of-turn model is not loaded.")
        samples = np.asarray(audio, dtype=np.float32).reshape(-1)[-WINDOW_S * RATE:]
        if samples.size < WINDOW_S * RATE:
            samples = np.pad(samples, (WINDOW_S * RATE - samples.size, 0))
        features = self._features(samples, do_normalize=True)[None]
        with self._lock:
            (scores,) = self._session.run(None, {"input_features": features})
        return float(np.asarray(scores).reshape(-1)[0])
