"""End of turn by a model: did the person finish, or only pause? (pipecat's Smart Turn v3, run here directly)

Smart Turn v3.2 is an ~8.7 MB ONNX audio model (a Whisper-tiny encoder with a classifier) that hears the last
8 s of a person's speech and gives the probability that they finished their turn: a falling "…today?" against a
trailing "What is the… um". Its weights ship inside the ``pipecat-ai`` wheel, with the numpy feature code it was
trained with. Jarvis installs that wheel without its dependencies and loads both files by path, so none of
pipecat's runtime (loguru, aiohttp, …) comes into Jarvis and nothing is downloaded.

It runs on onnxruntime with one thread: ~60-140 ms per call on the 2-core Xeon (benchmarks/smart_turn_probe.py);
on x86 without VNNI with its weights stored unsigned, so that onnxruntime's int8 kernels do not saturate
(``unsigned_weights``).
"""
from __future__ import annotations

import collections
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
        try:
            session = ort.InferenceSession(self.model_source(), sess_options=options,
                                           providers=["CPUExecutionProvider"])
        except Exception as exc:  # a damaged file
            raise NotAvailable("end_of_turn_failed", f"The end-of-turn model could not load ({exc}). {MISSING}") \
                from exc
        self._features, self._session = features.compute_whisper_log_mel_features, session

    @staticmethod
    def model_source(cpu_flags: set[str] | None | bool = True) -> str | bytes:
        """The model for onnxruntime on this CPU (``cpu_flags``: its flags; True reads them): its file, or on x86
        without VNNI, where its int8 products would saturate, the model with ``unsigned_weights``."""
        path = _package_file(MODEL_FILE)
        flags = cpu.flags() if cpu_flags is True else cpu_flags
        return unsigned_weights(path.read_bytes()) if cpu.int8_products_saturate(flags) else str(path)

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


def unsigned_weights(model: bytes) -> bytes:
    """A quantized ONNX model (QDQ) with its int8 weights stored as uint8: each value and its zero point 128 higher,
    so every weight means the same. onnxruntime fuses the quantize/dequantize pairs into int8 kernels; on x86 without
    VNNI those multiply u8 activations by s8 weights into saturating 16-bit sums (``jarvis.cpu``), while u8 by u8
    they widen first and are exact. Smart Turn then takes ~85 ms a call on a 2-core AMD EPYC (AVX2), against ~125
    computed in float as written and ~74 with the saturating kernels (``benchmarks/smart_turn_kernels.py``)."""
    import onnx
    from onnx import TensorProto, numpy_helper

    graph = onnx.load_from_string(model)
    constants = {t.name: t for t in graph.graph.initializer}
    weights = [node for node in graph.graph.node if node.op_type == "DequantizeLinear" and len(node.input) == 3
               and all(name in constants for name in node.input)
               and constants[node.input[0]].data_type == TensorProto.INT8]
    # Shifted together, or not at all: a value or zero point also read elsewhere (an activation's quantizer sharing a
    # zero point) keeps every weight that shares it as it is.
    readers = collections.Counter(name for node in graph.graph.node for name in node.input)
    while True:
        own = collections.Counter(name for node in weights for name in (node.input[0], node.input[2]))
        exclusive = [node for node in weights if all(readers[n] == own[n] for n in (node.input[0], node.input[2]))]
        if len(exclusive) == len(weights):
            break
        weights = exclusive
    for name in own:
        tensor = constants[name]
        tensor.CopyFrom(numpy_helper.from_array(
            (numpy_helper.to_array(tensor).astype(np.int16) + 128).astype(np.uint8), name))
    return graph.SerializeToString()
