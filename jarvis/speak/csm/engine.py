"""The CSM-1b TTS engine: loaded once, warmed, streaming Mimi audio a few frames at a time.

Per sentence: build the prompt (the voice's context segment, whose backbone KV is cached, plus the
sentence), prefill, then generate frames with ``FrameGenerator`` and decode them with
``stream_chunks``: the first chunk after two frames, then every four.
``cancel`` is checked before every frame, so barge-in stops it within one frame (80 ms of audio).
"""
from __future__ import annotations

import logging
import threading
from typing import Callable, Iterator

import numpy as np

from jarvis import paths
from jarvis.config import CsmSettings
from jarvis.errors import NotAvailable
from jarvis.speak.base import TtsEngine

log = logging.getLogger(__name__)

MIN_GUARD_S, GUARD_S_PER_CHAR = 3.0, 0.15   # length guard: sentence length, capped by tts.csm.max_seconds


class CsmEngine(TtsEngine):
    name = "csm"
    sample_rate = 24000

    def __init__(self, settings: CsmSettings | None = None, voices: dict | None = None,
                 progress: Callable[[str], None] | None = None):
        self.settings = settings or CsmSettings()
        self.voices = voices if voices is not None else {}
        self.progress = progress
        self.model = self.processor = self.generator = self.stream = None
        self.device = "cpu"
        self.placed_device: str | None = None  # jarvis.placement's GPU for it, used when tts.csm.device is auto
        self.cuda_stream = None  # its own CUDA stream: Whisper's work never queues behind a frame of speech
        self.frame_rate = 12.5
        self._lock = threading.Lock()
        self._prefix: dict[tuple, tuple] = {}  # (voice key, speaker) -> (backbone KV snapshot)
        self._voice_codes = None
        self._voice = None  # the cloned voice of the settings (resolved at load), or None

    # -- loading -------------------------------------------------------------------------------

    def load(self) -> None:
        if self.generator is not None:
            return
        from jarvis.speak.csm.loading import resolve_model
        from jarvis.speak.csm.voices import VoiceCodes, find_voice

        # The cheap checks first: without weights (most machines) CSM is down in milliseconds,
        # at start and at every retry, instead of after importing torch and transformers.
        s = self.settings
        voice = find_voice(s.voice, self.voices) if s.voice.strip() else None  # bad voice: fail before loading
        folder = resolve_model(s.model, s.allow_download, self.progress)
        try:
            import torch  # noqa: F401
            import transformers  # noqa: F401
        except Exception as exc:
            raise NotAvailable("csm_missing_lib", f"CSM needs torch and transformers ({exc}): run scripts/setup.sh.") \
                from exc
        from jarvis.speak.csm.generator import FrameGenerator, Sampling
        from jarvis.speak.csm.loading import choose_device, choose_dtype, load_model
        from jarvis.speak.csm.mimi_stream import MimiStream

        auto = (s.device or "auto").strip().lower() == "auto"
        self.device = choose_device(self.placed_device if auto and self.placed_device else s.device)
        dtype = choose_dtype(self.device, s.dtype)
        self._report(f"loading {folder.name} on {self.device} ({str(dtype).replace('torch.', '')})")
        model, processor = load_model(folder, self.device, dtype)
        model.requires_grad_(False)  # inference only: no autograd graphs anywhere
        codec = model.codec_model.config
        self.sample_rate = int(codec.sampling_rate)
        self.frame_rate = float(codec.frame_rate)
        sampling = Sampling(temperature=s.temperature, top_k=s.top_k)
        max_length = int(model.config.max_position_embeddings)
        cuda_graphs = s.fast_path and self.device.startswith("cuda")
        self.model, self.processor = model, processor
        if self.device.startswith("cuda"):
            import torch

            # Not the default stream, which every other blocking stream (CTranslate2's Whisper in this process
            # with the speech server on) would wait for: speech and transcription run side by side on the GPU.
            self.cuda_stream = torch.cuda.Stream(device=self.device)
        self.generator = FrameGenerator(model, max_length, sampling, use_cuda_graphs=cuda_graphs)
        self.stream = MimiStream(model.codec_model)
        self._voice_codes = VoiceCodes(paths.cache_dir() / "csm-voices", s.model)
        self._voice = voice
        self.placement = f"{self.device} ({str(dtype).replace('torch.', '')}, " + (
            "CUDA graphs)" if cuda_graphs else "no CUDA graphs)")
        log.info("CSM ready: %s on %s (%s), fast path %s", s.model, self.device, str(dtype).replace("torch.", ""),
                 "with CUDA graphs" if cuda_graphs else "without CUDA graphs")

    def warmup(self) -> None:
        """Two short utterances: the first picks kernels, then the CUDA graphs are captured and used."""
        self._report("warming up")
        for _ in self.synthesize("Ready."):
            pass
        if self.generator.use_cuda_graphs:
            self._report("capturing CUDA graphs")
        with self._on_own_stream():   # captured on the stream the graphs are replayed on
            self.generator.capture()
        for _ in self.synthesize("Ready."):
            pass

    def _report(self, line: str) -> None:
        if self.progress is not None:
            self.progress(line)

    # -- speaking ------------------------------------------------------------------------------

    def synthesize(self, text: str, cancel: threading.Event | None = None) -> Iterator[np.ndarray]:
        return self.synthesize_as(text, int(self.settings.speaker_id), self._voice, cancel)

    def synthesize_as(self, text: str, speaker_id: int, voice, cancel: threading.Event | None = None
                      ) -> Iterator[np.ndarray]:
        """``synthesize`` in another voice (a speaker id, and a cloned voice or None) with the same loaded model."""
        if self.generator is None:
            raise NotAvailable("csm_not_loaded", "CSM is not loaded.")
        return self._synthesize(text, str(int(speaker_id)), voice, cancel)

    def in_voice(self, speaker_id: int, voice_name: str, voices: dict) -> "CsmVoice":
        """This engine speaking as ``speaker_id`` / the cloned voice ``voice_name`` of ``voices`` ("" = none): for a
        preview of a voice not applied yet. Nothing loads; an unknown voice raises ``BadInput``."""
        from jarvis.speak.csm.voices import find_voice

        voice = find_voice(voice_name, voices) if voice_name.strip() else None
        return CsmVoice(self, int(speaker_id), voice)

    def _synthesize(self, text: str, speaker: str, voice, cancel: threading.Event | None) -> Iterator[np.ndarray]:
        import torch

        with self._lock, self._on_own_stream():
            budget = self.max_frames(text)
            for attempt in (1, 2):
                spoke = False
                try:
                    for chunk in self._generate(text, speaker, voice, budget, cancel):
                        spoke = True
                        yield chunk
                    return
                except torch.OutOfMemoryError as exc:
                    self.free_memory()
                    if spoke or attempt == 2:
                        raise NotAvailable("csm_oom", "CSM ran out of GPU memory: close other GPU programs; "
                                                      "Jarvis uses the next voice meanwhile.") from exc
                    budget = max(1, budget // 2)
                    log.warning("CSM out of GPU memory; retrying once with %d frames", budget)

    def _on_own_stream(self):
        """CSM's CUDA stream for the work inside (a no-op on the CPU and MPS)."""
        import contextlib

        if self.cuda_stream is None:
            return contextlib.nullcontext()
        import torch

        return torch.cuda.stream(self.cuda_stream)

    def max_frames(self, text: str) -> int:
        seconds = min(self.settings.max_seconds, MIN_GUARD_S + GUARD_S_PER_CHAR * len(text))
        return max(1, int(seconds * self.frame_rate))

    def _generate(self, text: str, speaker: str, voice, budget: int, cancel) -> Iterator[np.ndarray]:
        from jarvis.speak.csm.mimi_stream import stream_chunks

        start, sentence = self._prompt(text, speaker, voice)
        self.generator.prefill(sentence, start=start)
        yield from stream_chunks(self.generator, self.stream, budget, cancel)

    # -- prompts -------------------------------------------------------------------------------

    def _prompt(self, text: str, speaker: str, voice):
        """``(start, embeds)``: the sentence's embeddings, to go after ``start`` cached voice positions."""
        start = 0
        if voice is not None:
            start = self._voice_prefix(speaker, voice)
        message = {"role": speaker, "content": [{"type": "text", "text": text}]}
        rendered = self.processor.apply_chat_template([message], tokenize=False)
        ids = self._tokenize(rendered)
        return start, self.model.embed_text_tokens(ids)

    def _tokenize(self, rendered: str):
        ids = self.processor.tokenizer(rendered, add_special_tokens=False, return_tensors="pt")["input_ids"]
        return ids.to(self.model.device)

    def _voice_prefix(self, speaker: str, voice) -> int:
        """Prefill the voice's context segment once; afterwards restore its KV (returns its length)."""
        key, codes = self._voice_codes.codes(voice, self.sample_rate, self._encode_clip)
        cached = self._prefix.get((key, speaker))
        if cached is not None:
            return self.generator.restore(cached)
        embeds = self._context_embeds(speaker, voice.text, codes.to(self.model.device))
        self.generator.prefill(embeds, start=0)
        length = embeds.shape[1]
        self._prefix[(key, speaker)] = self.generator.snapshot(length)
        return length

    def _encode_clip(self, audio: np.ndarray):
        import torch

        with torch.inference_mode():
            values = torch.from_numpy(audio)[None, None].to(self.model.device, self.model.codec_model.dtype)
            codes = self.model.codec_model.encode(values).audio_codes  # [1, codebooks, frames]
        return codes[0].T[:, : self.model.config.num_codebooks]

    def _context_embeds(self, speaker: str, text: str, codes):
        """Embeddings of one context segment: [speaker]text + the clip's frames + end-of-audio."""
        import torch

        message = {"role": speaker, "content": [{"type": "text", "text": text}, {"type": "audio", "path": ""}]}
        rendered = self.processor.apply_chat_template([message], tokenize=False)
        audio_token = self.processor.audio_token
        if rendered.count(audio_token) != 1:
            raise NotAvailable("csm_template", "This CSM model's chat template has no audio slot: voices need sesame/csm-1b.")
        rendered = rendered.replace(audio_token, audio_token * codes.shape[0])
        ids = self._tokenize(rendered)
        cfg = self.model.config
        with torch.inference_mode():
            embeds = self.model.embed_text_tokens(ids)
            audio_positions = ids[0] == cfg.audio_token_id
            embeds[0, audio_positions] = self.model.backbone_model.embed_tokens(codes[None])[0].to(embeds.dtype)
            eos = torch.full((1, 1, cfg.num_codebooks), cfg.codebook_eos_token_id, device=ids.device)
            embeds[0, ids[0] == cfg.audio_eos_token_id] = self.model.backbone_model.embed_tokens(eos)[0].to(embeds.dtype)
        return embeds

    # -- housekeeping --------------------------------------------------------------------------

    def free_memory(self) -> None:
        """Drop the cached voice-prompt KV snapshots and torch's cache (GPU memory pressure, out of memory)."""
        import torch

        self._prefix.clear()
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()

    def close(self) -> None:
        if self.generator is not None:
            self.generator.release_graphs()
        self.model = self.processor = self.generator = self.stream = self.cuda_stream = None
        self._prefix.clear()
        if self.device.startswith("cuda"):
            try:
                import torch
                torch.cuda.empty_cache()
            except Exception:
                pass


class CsmVoice(TtsEngine):
    """A loaded ``CsmEngine`` in another voice (``CsmEngine.in_voice``): shares its model, loads and frees nothing."""
    name = "csm"

    def __init__(self, engine: CsmEngine, speaker_id: int, voice):
        self.engine, self.speaker_id, self.voice = engine, speaker_id, voice

    @property
    def sample_rate(self) -> int:
        return self.engine.sample_rate

    @property
    def placement(self) -> str:
        return self.engine.placement

    def load(self) -> None:
        if self.engine.generator is None:
            raise NotAvailable("csm_not_loaded", "CSM is not loaded.")

    def warmup(self) -> None:
        """The engine is warm already."""

    def synthesize(self, text: str, cancel: threading.Event | None = None) -> Iterator[np.ndarray]:
        return self.engine.synthesize_as(text, self.speaker_id, self.voice, cancel)
