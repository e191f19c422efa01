"""Piper's first audio before its whole sentence is made: the voice's VITS model run as two halves.

A Piper voice is one ONNX graph from phonemes to audio: text encoder, durations, flow (~40 % of a short sentence's
time on 2 cores) and the HiFi-GAN decoder (~60 %, in proportion to the audio's length). ``SplitVoiceModel`` cuts
the graph where the decoder starts (the latent frames ``z``, one per ``hop_length`` samples) and decodes those
frames in pieces: the first ``FIRST_FRAMES`` (~0.28 s of audio) at once, the rest while it plays. The decoder is
convolutional, so a piece decoded with ``PAD_FRAMES`` of its neighbours on each side and trimmed is the whole
decode's samples (at most 1.3e-6 apart: float rounding). The first sentences of 33 replies on 2 cores: first audio
P50 84 -> 55 ms, the whole sentence 84 -> 118 ms, ~25 % more CPU (benchmarks/results/piper-stream-cpu.json).

Piper scales each sentence to a peak of 1 once it has all of it; a sentence heard before it is made cannot be, so
the voice gets one gain instead (``calibrate``: the loudest of a few sentences made whole peaks at 1).

Multi-speaker voices (their decoder also takes the speaker) and graphs that do not look like this are not split:
``split`` raises ``ValueError`` and the engine makes whole sentences, as before.
"""
from __future__ import annotations

import logging
import os
import tempfile
from typing import Iterator

import numpy as np

log = logging.getLogger(__name__)

DECODER_FIRST_WEIGHT = "dec.conv_pre.weight"   # the decoder's first convolution in Piper's VITS export
FIRST_FRAMES = 24       # ~0.28 s at 22.05 kHz: the first piece, decoded before anything is heard
GROWTH = 4              # each later piece up to 4x the one before: made in well under the time the last one plays
PAD_FRAMES = 16         # context each side of a piece (8 left errors at -69 dB, 16 none: float rounding)


def session_options():
    """onnxruntime's options for the two halves: no memory arena (``jarvis.speak.piper_engine``) and no spinning.
    A pool's threads spin for a while after their work, and two sessions' pools then compete for 2 cores: the
    halves one after the other took 120 ms where one session took 70 (2026-12-06)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.enable_cpu_mem_arena = False
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def split(model_path: str) -> tuple[object, object, str]:
    """(encoder session: phonemes -> z, decoder session: z -> audio, z's name), or ``ValueError``."""
    import onnx
    import onnxruntime
    from onnx.utils import Extractor

    model = onnx.load(model_path)
    inputs = [i.name for i in model.graph.input]
    if "sid" in inputs:
        raise ValueError("a multi-speaker voice: its decoder takes the speaker too")
    starts = [n for n in model.graph.node if n.op_type == "Conv" and DECODER_FIRST_WEIGHT in n.input]
    if len(starts) != 1:
        raise ValueError("no single decoder input found")
    latent = starts[0].input[0]
    extractor = Extractor(model)
    halves = extractor.extract_model(inputs, [latent]), extractor.extract_model([latent], [model.graph.output[0].name])
    del model, extractor
    # Loaded from files, not bytes: a session made from bytes kept its own copy of them (+75 MB RSS for this voice).
    with tempfile.TemporaryDirectory(prefix="jarvis-piper-") as folder:
        sessions = []
        for name, half in zip(("encoder", "decoder"), halves):
            path = os.path.join(folder, f"{name}.onnx")
            onnx.save(half, path)
            sessions.append(onnxruntime.InferenceSession(path, sess_options=session_options(),
                                                         providers=["CPUExecutionProvider"]))
    return sessions[0], sessions[1], latent


class SplitVoiceModel:
    """Stands where Piper's ``onnxruntime.InferenceSession`` does (``run`` gives the whole sentence, as before) and
    ``stream(feeds)`` yields the same audio in pieces."""

    def __init__(self, encoder, decoder, latent: str, hop: int):
        self._encoder, self._decoder, self._latent, self.hop = encoder, decoder, latent, hop

    @property
    def sessions(self) -> tuple:
        return self._encoder, self._decoder

    def run(self, output_names, feeds: dict) -> list[np.ndarray]:
        z = self._encoder.run(None, feeds)[0]
        return self._decoder.run(output_names, {self._latent: z})

    def stream(self, feeds: dict, first: int = FIRST_FRAMES, pad: int = PAD_FRAMES) -> Iterator[np.ndarray]:
        """The sentence's samples (float32, unscaled): ``first`` frames' worth, then pieces ``GROWTH`` times larger
        each (a last bit shorter than half a piece goes with the piece before it: each piece costs a run)."""
        z = self._encoder.run(None, feeds)[0]
        frames = z.shape[-1]
        start, size = 0, first
        while start < frames:
            end = min(frames, start + size)
            if frames - end < size // 2:
                end = frames
            lo, hi = max(0, start - pad), min(frames, end + pad)
            audio = np.asarray(self._decoder.run(None, {self._latent: z[..., lo:hi]})[0], np.float32).reshape(-1)
            offset = (start - lo) * self.hop
            yield audio[offset:offset + (end - start) * self.hop]
            start, size = end, size * GROWTH


def calibrate(peaks: list[float]) -> float:
    """The voice's gain: the loudest of ``peaks`` (sentences made whole, unscaled) at 1."""
    loudest = max(peaks, default=0.0)
    return 1.0 / loudest if loudest > 1e-4 else 1.0
