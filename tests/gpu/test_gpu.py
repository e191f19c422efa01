"""On an NVIDIA GPU only (``-m gpu``; scripts/gpu-check.sh runs them): the CSM fast path with CUDA graphs equals
transformers' generate() in bf16 and fp16, Whisper runs on CUDA with the cu12 libraries found by Jarvis, NVML's
figures reach the gauges, and placement reads the real GPUs. Without a GPU they are skipped, saying so."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(),
                                                  reason="needs an NVIDIA GPU: scripts/gpu-check.sh runs these")]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from tests.csm_tiny import build_tiny_csm

    return build_tiny_csm(tmp_path_factory.mktemp("csm") / "tiny-csm")


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_cuda_graph_frames_equal_generate(tiny, dtype):
    from jarvis.config import CsmSettings
    from jarvis.speak.csm.engine import CsmEngine
    from jarvis.speak.csm.generator import FrameGenerator, Sampling
    from tests.csm_tiny import CODEC_CODEBOOK, VOCAB

    engine = CsmEngine(CsmSettings(model=str(tiny), device="cuda", dtype=dtype, temperature=0.0), {})
    engine.load()
    try:
        assert engine.generator.use_cuda_graphs, "the fast path captures CUDA graphs on a GPU"
        text, frames = "Hello world, this is Jarvis speaking.", 12
        inputs = engine.processor.apply_chat_template([{"role": "0", "content": [{"type": "text", "text": text}]}],
                                                      tokenize=True, return_dict=True).to("cuda")
        undecodable = list(range(CODEC_CODEBOOK, VOCAB))
        expected = engine.model.generate(**inputs, max_new_tokens=frames, do_sample=False,
                                         depth_decoder_do_sample=False, suppress_tokens=undecodable + [0],
                                         depth_decoder_suppress_tokens=undecodable)[0]
        generator = FrameGenerator(engine.model, 256, Sampling(temperature=0, allow_eos=False))
        start, embeds = engine._prompt(text, "0", None)
        generator.prefill(embeds, start=start)
        ours = torch.stack(list(generator.frames(frames)))
        assert torch.equal(ours.cpu(), expected.cpu())
    finally:
        engine.close()


def _needs_whisper_and_piper() -> None:
    """scripts/gpu-check.sh --image runs on a bare GPU image that cannot install them: skip, naming them."""
    for module in ("faster_whisper", "piper"):
        pytest.importorskip(module, reason=f"{module} is not installed here (a bare GPU image: gpu-check.sh --image)")


def test_whisper_on_cuda_hears_a_command():
    _needs_whisper_and_piper()
    from jarvis.config import ListenSettings
    from jarvis.listen.stt import Transcriber
    from tests.speech import piper_16k

    transcriber = Transcriber(ListenSettings(stt_device="cuda", stt_compute_type="float16"))
    assert "time" in transcriber.transcribe(piper_16k("What time is it?")).lower()


def test_whisper_on_auto_goes_to_the_gpu_with_the_wheels_cublas():
    """.venv-cuda's cuBLAS 12 (requirements-cuda.txt) is what CTranslate2 gets, and auto picks CUDA in float16."""
    _needs_whisper_and_piper()
    from jarvis import cuda_libs
    from jarvis.listen.stt import resolve_device

    assert resolve_device("auto", "int8") == ("cuda", "float16")
    location = cuda_libs.cublas_location()
    assert location and location.endswith("libcublas.so.12"), location


def test_nvml_figures_and_placement_read_the_real_gpus():
    from jarvis.devices import gpu_memory
    from jarvis.placement import NEEDS, Need, gpus_here, place

    rows = gpu_memory()
    assert rows and all(r["total_bytes"] > 0 and r["used_bytes"] is not None for r in rows)
    placement = place([Need(n, b) for n, b in NEEDS.items()], gpus_here())
    assert placement.device["csm"].startswith("cuda:"), placement


def test_a_transcription_does_not_wait_for_speech_on_the_gpu(tiny):
    """CSM speaks on its own CUDA stream: Whisper (CTranslate2, in this process) transcribing meanwhile takes about
    as long as it does alone, not as long as the speech queued before it."""
    _needs_whisper_and_piper()
    import threading

    from jarvis.config import CsmSettings, ListenSettings
    from jarvis.listen.stt import Transcriber
    from jarvis.speak.csm.engine import CsmEngine
    from tests.speech import piper_16k

    engine = CsmEngine(CsmSettings(model=str(tiny), device="cuda", max_seconds=20.0), {})
    engine.load()
    engine.warmup()
    transcriber = Transcriber(ListenSettings(stt_device="cuda", stt_compute_type="float16"))
    clip = piper_16k("What time is it?")
    transcriber.transcribe(clip)
    alone = min(_timed(transcriber.transcribe, clip) for _ in range(3))
    speaking = threading.Event()
    done = threading.Event()

    def speak():
        while not done.is_set():
            for _ in engine.synthesize("Hello world, this is Jarvis speaking. " * 4):
                speaking.set()
    thread = threading.Thread(target=speak, daemon=True)
    thread.start()
    try:
        assert speaking.wait(60)
        beside = min(_timed(transcriber.transcribe, clip) for _ in range(3))
    finally:
        done.set()
        thread.join(60)
        engine.close()
    assert engine.cuda_stream is None          # closed
    print(f"\nWhisper alone {alone * 1000:.0f} ms, beside CSM {beside * 1000:.0f} ms")
    assert beside < 2.5 * alone + 0.05, (alone, beside)


def _timed(fn, *args) -> float:
    import time

    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start
