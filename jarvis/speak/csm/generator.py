"""CSM frame generation: Jarvis's fast path (static KV cache, optional CUDA graphs).

transformers' ``CsmForConditionalGeneration.generate`` rebuilds caches, masks and a nested
``generate`` for the depth decoder on every frame; that Python overhead dominates on a GPU. This
loop runs the model's own layers (same weights, same math) with:

- a preallocated KV cache for the backbone (prompt + the longest utterance) and one for the depth
  decoder (one slot per codebook), written in place at a position held in a tensor;
- additive masks computed from that position tensor, so every frame has the same shapes;
- on CUDA, two captured CUDA graphs per model: one backbone step (embed the previous frame, one
  decoder step, sample codebook 0) and one depth pass (31 steps, sampling codebooks 1..31). A frame
  is then two graph replays; elsewhere the same functions run eagerly.

Sampling is top-k + temperature through the Gumbel-max trick (argmax of logits plus Gumbel noise),
the same distribution as softmax + multinomial but capturable in a graph. Codebook ids the codec
cannot decode (the audio vocab has a few ids above the Mimi codebook) are never sampled.

With ``temperature=0`` sampling is greedy; the tests check that greedy frames equal
``generate(do_sample=False)`` exactly.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Iterator

import torch

from jarvis.errors import describe

log = logging.getLogger(__name__)


@dataclass
class Sampling:
    temperature: float = 0.9   # 0 = greedy
    top_k: int = 50
    allow_eos: bool = True     # False: never emit the end-of-audio frame (fixed-length benchmarks)


class StaticKV:
    """Preallocated keys/values for every layer; ``update`` is what transformers' attention calls."""

    def __init__(self, layers: int, kv_heads: int, length: int, head_dim: int, dtype, device):
        shape = (layers, 1, kv_heads, length, head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.length = length
        self.positions: torch.Tensor | None = None  # the positions being written by the current forward

    def update(self, key_states, value_states, layer_idx, *args, **kwargs):
        self.k[layer_idx].index_copy_(2, self.positions, key_states)
        self.v[layer_idx].index_copy_(2, self.positions, value_states)
        return self.k[layer_idx], self.v[layer_idx]


def _kv_for(config, length: int, dtype, device) -> StaticKV:
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return StaticKV(config.num_hidden_layers, config.num_key_value_heads, length, head_dim, dtype, device)


def _run_layers(stack, hidden: torch.Tensor, positions: torch.Tensor, kv: StaticKV, key_slots: torch.Tensor):
    """One forward of a decoder stack (backbone or depth) over ``hidden`` at ``positions``."""
    kv.positions = positions
    visible = key_slots[None, :] <= positions[:, None]                     # causal over the static cache
    mask = torch.zeros(visible.shape, dtype=hidden.dtype, device=hidden.device)
    mask = mask.masked_fill(~visible, torch.finfo(hidden.dtype).min)[None, None]
    position_ids = positions[None]
    rope = stack.rotary_emb(hidden, position_ids=position_ids)
    for layer in stack.layers[: stack.config.num_hidden_layers]:
        hidden = layer(hidden, attention_mask=mask, position_ids=position_ids, past_key_values=kv,
                       use_cache=True, position_embeddings=rope)
    return stack.norm(hidden)


def _sample(logits: torch.Tensor, allowed: torch.Tensor, sampling: Sampling) -> torch.Tensor:
    """[1, vocab] logits -> [1] ids. No host sync, so it can live inside a CUDA graph."""
    logits = logits.float().masked_fill(~allowed, float("-inf"))
    if sampling.temperature <= 0:
        return logits.argmax(-1)
    logits = logits / sampling.temperature
    k = min(sampling.top_k, logits.shape[-1]) if sampling.top_k > 0 else 0
    if k:
        kth = torch.topk(logits, k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    noise = torch.rand_like(logits).clamp_(min=1e-10).log_().neg_().log_().neg_()  # Gumbel(0, 1)
    return (logits + noise).argmax(-1)


class FrameGenerator:
    """Generates CSM audio frames ([num_codebooks] ids each) one at a time for one prompt at a time.

    Not thread-safe: one utterance at a time (the engine holds a lock).
    """

    def __init__(self, model, max_length: int, sampling: Sampling, use_cuda_graphs: bool | None = None):
        self.model = model
        cfg = model.config
        self.device = next(model.parameters()).device
        self.dtype = next(model.backbone_model.parameters()).dtype
        self.num_codebooks = cfg.num_codebooks
        self.vocab = cfg.vocab_size
        self.eos_id = cfg.codebook_eos_token_id
        self.max_length = max_length
        self.sampling = sampling
        self.use_cuda_graphs = (self.device.type == "cuda") if use_cuda_graphs is None else use_cuda_graphs
        dev, dt = self.device, self.dtype
        self.backbone_kv = _kv_for(cfg, max_length, dt, dev)
        self.depth_kv = _kv_for(cfg.depth_decoder_config, self.num_codebooks, dt, dev)
        self.backbone_slots = torch.arange(max_length, device=dev)
        self.depth_slots = torch.arange(self.num_codebooks, device=dev)
        # Ids the codec can decode (ids >= its codebook size exist in the vocab but are not audio).
        decodable = min(self.vocab, int(getattr(cfg.codec_config, "codebook_size", self.vocab)))
        self.allowed = torch.arange(self.vocab, device=dev)[None] < decodable
        self.allowed_first = self.allowed.clone()
        if not sampling.allow_eos and self.eos_id is not None:
            self.allowed_first[0, self.eos_id] = False
        # Static buffers shared by the eager and graph paths.
        self.position = torch.zeros(1, dtype=torch.long, device=dev)          # next backbone position
        self.frame = torch.zeros(1, 1, self.num_codebooks, dtype=torch.long, device=dev)
        self.hidden = torch.zeros(1, cfg.hidden_size, dtype=dt, device=dev)  # backbone output for the frame
        self.first = torch.zeros(1, dtype=torch.long, device=dev)             # codebook 0 of the frame
        self._depth_positions = [torch.arange(0, 2, device=dev)] + [
            torch.tensor([p], device=dev) for p in range(2, self.num_codebooks)]
        self._backbone_graph = None
        self._depth_graph = None
        self.graph_error = ""

    # -- one frame, as plain tensor code (captured into graphs on CUDA) -------------------------

    def _backbone_step(self) -> None:
        """Embed ``self.frame`` at ``self.position``; sample codebook 0 of the next frame."""
        bb = self.model.backbone_model
        embeds = bb.embed_tokens(self.frame)                                 # [1, 1, hidden]
        out = _run_layers(bb, embeds, self.position, self.backbone_kv, self.backbone_slots)
        self.hidden.copy_(out[:, -1])
        self.first.copy_(_sample(self.model.lm_head(self.hidden), self.allowed_first, self.sampling))
        self.position.add_(1)

    def _depth_pass(self) -> None:
        """Codebooks 1..N-1 from the backbone hidden state and codebook 0; result in ``self.frame``."""
        depth = self.model.depth_decoder
        stack, head = depth.model, depth.codebooks_head
        project = stack.inputs_embeds_projector
        codes = [self.first]
        embeds = torch.cat([self.hidden[:, None], stack.embed_tokens(self.first[:, None])], dim=1)
        out = _run_layers(stack, project(embeds), self._depth_positions[0], self.depth_kv, self.depth_slots)
        for book in range(1, self.num_codebooks):
            logits = out[:, -1] @ head.weight[book - 1]
            codes.append(_sample(logits, self.allowed, self.sampling))
            if book == self.num_codebooks - 1:
                break
            embeds = stack.embed_tokens(codes[-1][:, None] + book * self.vocab)
            out = _run_layers(stack, project(embeds), self._depth_positions[book], self.depth_kv, self.depth_slots)
        self.frame.copy_(torch.stack(codes, dim=-1)[:, None])

    # -- public API ---------------------------------------------------------------------------

    @torch.inference_mode()
    def prefill(self, inputs_embeds: torch.Tensor, start: int = 0) -> None:
        """Run the prompt (``[1, n, hidden]``) at positions ``start..start+n-1``; sample codebook 0."""
        n = inputs_embeds.shape[1]
        if start + n >= self.max_length:
            raise ValueError(f"prompt of {start + n} positions does not fit the {self.max_length}-position cache")
        positions = torch.arange(start, start + n, device=self.device)
        out = _run_layers(self.model.backbone_model, inputs_embeds.to(self.dtype), positions,
                          self.backbone_kv, self.backbone_slots)
        self.hidden.copy_(out[:, -1])
        self.first.copy_(_sample(self.model.lm_head(self.hidden), self.allowed_first, self.sampling))
        self.position.fill_(start + n)

    def snapshot(self, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Copy of the backbone cache's first ``length`` positions (a reusable voice prompt)."""
        return (self.backbone_kv.k[:, :, :, :length].clone(), self.backbone_kv.v[:, :, :, :length].clone())

    def restore(self, saved: tuple[torch.Tensor, torch.Tensor]) -> int:
        k, v = saved
        length = k.shape[3]
        self.backbone_kv.k[:, :, :, :length].copy_(k)
        self.backbone_kv.v[:, :, :, :length].copy_(v)
        return length

    @torch.inference_mode()
    def frames(self, max_frames: int, cancel: threading.Event | None = None) -> Iterator[torch.Tensor]:
        """Yield frames (``[num_codebooks]`` long tensors on the device) after ``prefill``.

        Stops at the end-of-audio frame, after ``max_frames`` (the length guard), when the cache is
        full, or within one frame of ``cancel`` being set.
        """
        limit = min(max_frames, self.max_length - int(self.position.item()))
        for index in range(limit):
            if cancel is not None and cancel.is_set():
                return
            if index:
                self._replay_backbone()
            self._replay_depth()
            frame = self.frame[0, 0].clone()
            if self.sampling.allow_eos and bool((frame[:-1] == self.eos_id).all()):
                return  # the end-of-audio frame (transformers checks all codebooks but the last)
            yield frame

    def _replay_backbone(self) -> None:
        if self._backbone_graph is not None:
            self._backbone_graph.replay()
        else:
            self._backbone_step()

    def _replay_depth(self) -> None:
        if self._depth_graph is not None:
            self._depth_graph.replay()
        else:
            self._depth_pass()

    @property
    def graphs_captured(self) -> bool:
        return self._depth_graph is not None

    @torch.inference_mode()
    def capture(self) -> None:
        """Record the two CUDA graphs (no-op off CUDA). Call once after a warm-up utterance.

        A capture failure is logged and the same code keeps running eagerly: slower, never silent.
        """
        if not self.use_cuda_graphs or self._depth_graph is not None:
            return
        saved_position = self.position.clone()
        try:
            self._capture(saved_position)
        except Exception as exc:
            self.release_graphs()
            self.position.copy_(saved_position)
            self.graph_error = describe(exc, 200)
            log.warning("CSM: CUDA graph capture failed (%s); generating without graphs", self.graph_error,
                        exc_info=True)

    def _capture(self, saved_position: torch.Tensor) -> None:
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            for _ in range(2):  # kernels pick their algorithms before capture
                self._backbone_step()
                self._depth_pass()
                self.position.copy_(saved_position)
        torch.cuda.current_stream(self.device).wait_stream(stream)
        pool = torch.cuda.graph_pool_handle()
        backbone, depth = torch.cuda.CUDAGraph(), torch.cuda.CUDAGraph()
        with torch.cuda.graph(backbone, pool=pool):
            self._backbone_step()
        with torch.cuda.graph(depth, pool=pool):
            self._depth_pass()
        self.position.copy_(saved_position)
        torch.cuda.synchronize(self.device)
        self._backbone_graph, self._depth_graph = backbone, depth
        log.info("CSM: CUDA graphs captured (backbone step + %d-step depth pass)", self.num_codebooks - 1)

    def release_graphs(self) -> None:
        self._backbone_graph = self._depth_graph = None
