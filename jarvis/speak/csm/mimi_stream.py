"""Streaming Mimi decode: audio for a few new frames at a time, equal to decoding the whole utterance.

transformers' ``MimiModel.decode`` only decodes a whole code sequence. Its decoder is a per-frame
dequantiser, a causal transposed-conv upsampler, a causal transformer and a causal conv stack
(SEANet). So a chunk of new frames decodes exactly when the transformer keeps its KV cache between
chunks and each conv stage sees a little of its own past input: the upsampler the last latent
frames, the SEANet the last transformer steps. The tests check the result against a full decode.
"""
from __future__ import annotations

import threading
from typing import Iterator

import numpy as np
import torch
from transformers.cache_utils import DynamicCache

LATENT_CONTEXT = 2    # latent frames kept for the upsampler (it needs 1)
HIDDEN_CONTEXT = 8    # transformer steps kept for the SEANet (it needs 2 at Mimi's kernel sizes)
FIRST_CHUNK_FRAMES = 2   # 160 ms of audio: the first chunk goes out as soon as these exist
CHUNK_FRAMES = 4         # then 320 ms per chunk


class MimiStream:
    def __init__(self, codec):
        self.codec = codec
        self.decoder = codec.decoder
        self.samples_per_frame = int(round(codec.config.sampling_rate / codec.config.frame_rate))
        self.reset()

    def reset(self) -> None:
        self._cache = DynamicCache()
        self._latents: torch.Tensor | None = None
        self._hidden: torch.Tensor | None = None

    @torch.inference_mode()
    def push(self, frames: torch.Tensor) -> torch.Tensor:
        """``frames``: [n, num_codebooks] ids -> [n * samples_per_frame] float audio (on the device)."""
        n = frames.shape[0]
        latents = self.codec.quantizer.decode(frames.T[None])                 # [1, dim, n]
        if self._latents is not None:
            latents = torch.cat([self._latents, latents], dim=-1)
        self._latents = latents[..., -LATENT_CONTEXT:]
        upsample = self.decoder.upsample
        steps = upsample(latents) if upsample is not None else latents
        new_steps = steps[..., -(steps.shape[-1] * n // latents.shape[-1]):]
        hidden = self.decoder.decoder_transformer(new_steps.transpose(1, 2), past_key_values=self._cache,
                                                  use_cache=True).last_hidden_state.transpose(1, 2)
        if self._hidden is not None:
            hidden = torch.cat([self._hidden, hidden], dim=-1)
        self._hidden = hidden[..., -HIDDEN_CONTEXT:]
        audio = self.decoder.decoder_seanet(hidden)
        return audio[0, 0, -n * self.samples_per_frame:]


def stream_chunks(generator, stream, max_frames: int, cancel: threading.Event | None = None) -> Iterator[np.ndarray]:
    """Frames (after ``generator.prefill``) decoded into float32 chunks: 2 frames first, then 4."""
    stream.reset()
    pending, target = [], FIRST_CHUNK_FRAMES
    for frame in generator.frames(max_frames, cancel):
        pending.append(frame)
        if len(pending) >= target:
            yield stream.push(torch.stack(pending)).float().cpu().numpy()
            pending, target = [], CHUNK_FRAMES
    if pending and not (cancel is not None and cancel.is_set()):
        yield stream.push(torch.stack(pending)).float().cpu().numpy()
