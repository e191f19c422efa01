"""`jarvis bench tts`: CSM time to first audio, real-time factor, frames/s and peak memory.

Builds the full csm-1b architecture (default ``CsmConfig``) with random weights on the chosen
device (no download: the speed of a 1.6 B-parameter model does not depend on its weights), then
generates a fixed number of frames (EOS suppressed) from the same text prompt with:

(a) plain ``model.generate(..., output_audio=True)`` as the transformers docs show it: what a user
    of transformers gets. Audio exists only when it returns, so its first audio is its total time.
(b) Jarvis's fast path: static KV cache, CUDA graphs (on CUDA), streaming Mimi decode; first audio
    is the first decoded chunk copied to the host, exactly as the engine hands it to the player.

Importable without RealtimeSTT, Qt or audio packages, so it runs on a bare GPU image.
"""
from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from typing import Any

PROMPT_TOKENS = 32
TOP_K, TEMPERATURE = 50, 0.9


def tiny_config():
    """A small CSM for trying the benchmark on a CPU (not a measurement of csm-1b)."""
    from transformers import CsmConfig, MimiConfig

    codec = MimiConfig(hidden_size=32, num_filters=4, codebook_size=64, codebook_dim=16, num_quantizers=8,
                       upsampling_ratios=[8, 6, 5, 4], num_hidden_layers=1, num_attention_heads=2,
                       num_key_value_heads=2, intermediate_size=32, vector_quantization_hidden_dimension=16,
                       upsample_groups=32)
    return CsmConfig(num_codebooks=8, vocab_size=67, text_vocab_size=300, hidden_size=64, intermediate_size=128,
                     num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                     codebook_pad_token_id=66, bos_token_id=0, pad_token_id=1,
                     audio_token_id=2, audio_eos_token_id=3, depth_decoder_config=dict(
                         num_codebooks=8, backbone_hidden_size=64, vocab_size=67, hidden_size=32,
                         intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=9), codec_config=codec.to_dict())


def build_model(device: str, dtype, tiny: bool = False):
    import torch
    from transformers import CsmConfig, CsmForConditionalGeneration

    torch.manual_seed(0)
    config = tiny_config() if tiny else CsmConfig()
    with torch.device(device):
        model = CsmForConditionalGeneration(config)
        for name, buffer in model.codec_model.named_buffers():
            if name.endswith("embed_sum"):  # Mimi's codebooks start as zeros; real weights are varied
                buffer.normal_()
    model = model.to(dtype).eval()
    model.requires_grad_(False)
    return model


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _peak_reset(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak(device: str) -> int | None:
    import torch

    return int(torch.cuda.max_memory_allocated()) if device.startswith("cuda") else None


def run_plain(model, ids, frames: int, device: str) -> dict[str, Any]:
    import torch

    cfg = model.config
    undecodable = list(range(cfg.codec_config.codebook_size, cfg.vocab_size))
    with torch.inference_mode():
        start = time.perf_counter()
        audio = model.generate(input_ids=ids, max_new_tokens=frames, do_sample=True, top_k=TOP_K,
                               temperature=TEMPERATURE, depth_decoder_do_sample=True, depth_decoder_top_k=TOP_K,
                               depth_decoder_temperature=TEMPERATURE,
                               suppress_tokens=[cfg.codebook_eos_token_id] + undecodable,
                               depth_decoder_suppress_tokens=undecodable, output_audio=True)[0]
        samples = audio.float().cpu().numpy()
        total = time.perf_counter() - start
    return {"first_audio_s": total, "total_s": total, "samples": int(samples.shape[-1])}


def run_fast(generator, stream, ids, model, frames: int, device: str) -> dict[str, Any]:
    import torch

    from jarvis.speak.csm.mimi_stream import stream_chunks

    with torch.inference_mode():
        start = time.perf_counter()
        generator.prefill(model.embed_text_tokens(ids))
        first, samples = None, 0
        for chunk in stream_chunks(generator, stream, frames):
            first = first if first is not None else time.perf_counter() - start
            samples += len(chunk)
        total = time.perf_counter() - start
    return {"first_audio_s": first, "total_s": total, "samples": samples}


def _summary(runs: list[dict], frames: int, frame_rate: float, peak: int | None) -> dict[str, Any]:
    audio_s = frames / frame_rate
    first = statistics.median(r["first_audio_s"] for r in runs)
    total = statistics.median(r["total_s"] for r in runs)
    return {"time_to_first_audio_ms": round(first * 1000, 1), "total_s": round(total, 3),
            "rtf": round(total / audio_s, 4), "frames_per_s": round(frames / total, 1),
            "peak_memory_gb": round(peak / 1e9, 3) if peak is not None else None,
            "runs": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in runs],
            "samples_per_run": runs[0]["samples"]}


def bench(frames: int = 125, runs: int = 3, device_setting: str = "auto", dtype_setting: str = "auto",
          tiny: bool = False, plain: bool = True, progress=print) -> dict[str, Any]:
    import torch
    import transformers

    from jarvis.speak.csm.generator import FrameGenerator, Sampling
    from jarvis.speak.csm.loading import choose_device, choose_dtype
    from jarvis.speak.csm.mimi_stream import MimiStream

    device = choose_device(device_setting)
    dtype = choose_dtype(device, dtype_setting)
    progress(f"building {'a tiny CSM' if tiny else 'csm-1b (CsmConfig defaults)'} with random weights on {device} "
             f"({str(dtype).replace('torch.', '')})")
    started = time.perf_counter()
    model = build_model(device, dtype, tiny)
    _sync(device)
    build_s = time.perf_counter() - started
    params = sum(p.numel() for p in model.parameters())
    weights = _peak(device)
    generator_ids = torch.Generator().manual_seed(1)
    ids = torch.randint(0, model.config.text_vocab_size, (1, PROMPT_TOKENS), generator=generator_ids).to(device)
    frame_rate = float(model.config.codec_config.frame_rate)
    result: dict[str, Any] = {
        "benchmark": "tts", "model": "tiny CSM (random)" if tiny else "csm-1b architecture, CsmConfig defaults, random weights",
        "parameters": params, "device": _device_name(device), "dtype": str(dtype).replace("torch.", ""),
        "frames": frames, "audio_s": frames / frame_rate, "prompt_tokens": PROMPT_TOKENS, "runs": runs,
        "sampling": {"top_k": TOP_K, "temperature": TEMPERATURE, "eos": "suppressed"},
        "build_s": round(build_s, 1), "weights_memory_gb": round(weights / 1e9, 3) if weights else None,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "cuda": torch.version.cuda},
        "command": " ".join(["jarvis" if i == 0 else a for i, a in enumerate(sys.argv)]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }

    if plain:
        progress("(a) plain generate: warm-up")
        run_plain(model, ids, 4, device)
        _peak_reset(device)
        measured = []
        for i in range(runs):
            measured.append(run_plain(model, ids, frames, device))
            progress(f"(a) run {i + 1}: {measured[-1]['total_s']:.2f} s")
        result["plain_generate"] = _summary(measured, frames, frame_rate, _peak(device))

    progress("(b) fast path: warm-up and CUDA graph capture" if device.startswith("cuda") else "(b) fast path: warm-up")
    _peak_reset(device)
    generator = FrameGenerator(model, PROMPT_TOKENS + frames + 8, Sampling(TEMPERATURE, TOP_K, allow_eos=False))
    stream = MimiStream(model.codec_model)
    run_fast(generator, stream, ids, model, 8, device)
    generator.capture()
    run_fast(generator, stream, ids, model, 8, device)
    measured = []
    for i in range(runs):
        measured.append(run_fast(generator, stream, ids, model, frames, device))
        progress(f"(b) run {i + 1}: {measured[-1]['total_s']:.2f} s, first audio "
                 f"{measured[-1]['first_audio_s'] * 1000:.1f} ms")
    result["fast_path"] = _summary(measured, frames, frame_rate, _peak(device))
    result["fast_path"]["cuda_graphs"] = generator.graphs_captured
    if generator.graph_error:
        result["fast_path"]["cuda_graph_error"] = generator.graph_error
    if plain:
        result["speedup_rtf"] = round(result["plain_generate"]["rtf"] / result["fast_path"]["rtf"], 2)
    return result


def _device_name(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"{device} ({platform.processor() or platform.machine()}, {_cpu_count()} cores)"


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def format_text(result: dict[str, Any]) -> str:
    lines = [f"CSM TTS benchmark: {result['model']} on {result['device']} ({result['dtype']}), "
             f"{result['frames']} frames = {result['audio_s']:.1f} s of audio, median of {result['runs']} runs"]
    for key, label in (("plain_generate", "(a) plain generate"), ("fast_path", "(b) Jarvis fast path")):
        r = result.get(key)
        if r:
            peak = f", peak {r['peak_memory_gb']:.2f} GB" if r["peak_memory_gb"] is not None else ""
            lines.append(f"{label:22} first audio {r['time_to_first_audio_ms']:8.1f} ms, RTF {r['rtf']:.3f}, "
                         f"{r['frames_per_s']:.1f} frames/s{peak}")
    if "speedup_rtf" in result:
        lines.append(f"fast path is {result['speedup_rtf']:.2f}x faster than plain generate (RTF ratio)")
    return "\n".join(lines)


def add_arguments(parser) -> None:
    parser.add_argument("--frames", type=int, default=125, help="frames per run (125 = 10 s of audio)")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per path (median reported)")
    parser.add_argument("--device", default="auto", help="auto | cuda | cuda:N | mps | cpu")
    parser.add_argument("--dtype", default="auto", help="auto | bfloat16 | float16 | float32")
    parser.add_argument("--tiny", action="store_true", help="a tiny random CSM (try it on a CPU; not csm-1b)")
    parser.add_argument("--skip-plain", action="store_true", help="only the fast path")
    parser.add_argument("--out", metavar="FILE.json", help="also write the result as JSON")


def main(args) -> int:
    result = bench(frames=args.frames, runs=args.runs, device_setting=args.device, dtype_setting=args.dtype,
                   tiny=args.tiny, plain=not args.skip_plain, progress=lambda line: print(line, file=sys.stderr))
    print(format_text(result))
    if args.out:
        from jarvis.bench.stats import write_json
        write_json(args.out, result)
    return 0


if __name__ == "__main__":  # python -m jarvis.bench.tts: no CLI, settings or audio imports at all
    import argparse

    cli = argparse.ArgumentParser(prog="python -m jarvis.bench.tts", description=__doc__.splitlines()[0])
    add_arguments(cli)
    sys.exit(main(cli.parse_args()))
