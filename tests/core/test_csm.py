"""CSM on the CPU with a tiny random model: loading, the fast path, streaming, voices, failures.

The model is built by the test (tests/csm_tiny.py) and goes through the real loading, prompt,
generation, streaming-decode, voice-cache and cancellation code; only its sizes are small.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from jarvis.config import CsmSettings, TtsSettings
from jarvis.errors import BadInput, NotAvailable
from jarvis.events import Degraded, EventBus, TtsFirstChunk
from jarvis.speak.chain import TtsChain
from jarvis.speak.csm.engine import CsmEngine
from jarvis.speak.csm.generator import FrameGenerator, Sampling
from jarvis.speak.csm.loading import choose_device, choose_dtype, resolve_model
from jarvis.speak.csm.mimi_stream import CHUNK_FRAMES, FIRST_CHUNK_FRAMES, MimiStream
from tests.core.test_cli_bad_input import assert_one_clear_line, jarvis
from tests.csm_tiny import CODEC_CODEBOOK, NUM_CODEBOOKS, VOCAB, build_tiny_csm

SAMPLES_PER_FRAME = 1920  # Mimi: 24 kHz / 12.5 Hz
GREEDY = dict(temperature=0.0)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_csm(tmp_path_factory.mktemp("csm") / "tiny-csm")


def engine_for(tiny, **overrides) -> CsmEngine:
    voices = overrides.pop("voices", {})
    overrides.setdefault("device", "cpu")  # the code paths under test, the same on a machine with a GPU
    engine = CsmEngine(CsmSettings(model=str(tiny), **overrides), voices)
    engine.load()
    return engine


@pytest.fixture(scope="module")
def greedy(tiny):
    engine = engine_for(tiny, **GREEDY)
    yield engine
    engine.close()


def speech_clip(path: Path, seconds: float = 2.0, pitch: float = 180.0) -> Path:
    t = np.arange(int(24000 * seconds)) / 24000
    tone = 0.3 * np.sin(2 * np.pi * pitch * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    sf.write(path, tone.astype(np.float32), 24000, subtype="PCM_16")
    return path


# -- device, precision, model location ---------------------------------------------------------

def test_device_and_precision():
    from jarvis.devices import best_device
    assert choose_device("auto") == best_device() and choose_device("CPU") == "cpu"
    assert choose_dtype("cpu", "auto") is torch.float32
    assert choose_dtype("cuda", "fp16") is torch.float16 and choose_dtype("cpu", "bfloat16") is torch.bfloat16
    if not torch.cuda.is_available():
        with pytest.raises(NotAvailable, match="CUDA is not available here"):
            choose_device("cuda")
    with pytest.raises(BadInput, match="not one of auto, cuda"):
        choose_device("tpu")
    with pytest.raises(BadInput, match="tts.csm.dtype 'int3'"):
        choose_dtype("cpu", "int3")


def test_missing_folder_and_undownloaded_hub_model_say_what_to_do(tmp_path):
    with pytest.raises(NotAvailable, match="not found or has no config.json"):
        resolve_model(str(tmp_path / "nowhere"))
    # tests/conftest.py gives the hub an empty private cache and no network
    with pytest.raises(NotAvailable) as err:
        resolve_model("sesame/csm-1b", allow_download=False)
    assert err.value.code == "csm_not_downloaded" and "--download" in err.value.message


def test_model_loads_from_a_folder_on_cpu_in_fp32(tiny):
    engine = engine_for(tiny)
    assert engine.device == "cpu" and engine.sample_rate == 24000 and engine.frame_rate == 12.5
    assert next(engine.model.parameters()).dtype is torch.float32
    assert engine.generator.use_cuda_graphs is False  # no CUDA here: same code, run eagerly
    engine.close()


# -- the fast path against transformers --------------------------------------------------------

def test_greedy_fast_path_frames_equal_transformers_generate(tiny, greedy):
    """Same prompt, greedy: Jarvis's static-cache loop yields exactly generate()'s frames."""
    text, frames = "Hello world, this is Jarvis speaking.", 12
    model, processor = greedy.model, greedy.processor
    inputs = processor.apply_chat_template([{"role": "0", "content": [{"type": "text", "text": text}]}],
                                           tokenize=True, return_dict=True)
    undecodable = list(range(CODEC_CODEBOOK, VOCAB))
    expected = model.generate(**inputs, max_new_tokens=frames, do_sample=False, depth_decoder_do_sample=False,
                              suppress_tokens=undecodable + [0], depth_decoder_suppress_tokens=undecodable)[0]
    generator = FrameGenerator(model, 256, Sampling(temperature=0, allow_eos=False))
    start, embeds = greedy._prompt(text, "0", None)
    generator.prefill(embeds, start=start)
    ours = torch.stack(list(generator.frames(frames)))
    assert expected.shape == (frames, NUM_CODEBOOKS)
    assert torch.equal(ours, expected)


def test_streaming_decode_equals_decoding_the_whole_utterance(greedy):
    codec = greedy.model.codec_model
    codes = torch.randint(0, CODEC_CODEBOOK, (30, NUM_CODEBOOKS), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        whole = codec.decode(codes.T[None]).audio_values[0, 0]
        stream = MimiStream(codec)
        pieces = [stream.push(codes[i:i + n]) for i, n in ((0, 2), (2, 4), (6, 1), (7, 4), (11, 19))]
    streamed = torch.cat(pieces)
    assert streamed.shape == whole.shape == (30 * SAMPLES_PER_FRAME,)
    assert float((streamed - whole).abs().max()) < 1e-4 * float(whole.abs().max())


def test_audio_streams_in_small_chunks_and_matches_the_utterance(greedy):
    text = "The time is three oh five."
    chunks = list(greedy.synthesize(text))
    assert len(chunks[0]) == FIRST_CHUNK_FRAMES * SAMPLES_PER_FRAME           # first audio after two frames
    assert all(len(c) == CHUNK_FRAMES * SAMPLES_PER_FRAME for c in chunks[1:-1])
    assert all(c.dtype == np.float32 and np.isfinite(c).all() for c in chunks)
    total = sum(map(len, chunks))
    assert total == greedy.max_frames(text) * SAMPLES_PER_FRAME               # random weights: the guard ends it
    again = np.concatenate(list(greedy.synthesize(text)))
    assert np.array_equal(np.concatenate(chunks), again)                     # greedy + static cache reset: same


def test_length_guard_follows_the_setting(tiny):
    engine = engine_for(tiny, max_seconds=0.8)
    audio = np.concatenate(list(engine.synthesize("A long sentence that would go on and on and on.")))
    assert len(audio) == 10 * SAMPLES_PER_FRAME  # 0.8 s at 12.5 frames/s
    engine.close()


def test_cancel_stops_within_one_frame(greedy):
    cancel = threading.Event()
    frames_made = []
    original = greedy.generator._depth_pass

    def counting():
        frames_made.append(1)
        original()

    greedy.generator._depth_pass = counting
    try:
        chunks = []
        for chunk in greedy.synthesize("Hello world, this is Jarvis speaking.", cancel):
            chunks.append(chunk)
            cancel.set()  # barge-in right after the first chunk
    finally:
        greedy.generator._depth_pass = original
    assert len(chunks) == 1
    assert len(frames_made) == FIRST_CHUNK_FRAMES  # not one frame more after cancel


def test_warmup_runs_and_the_engine_speaks_after_it(tiny):
    lines = []
    engine = CsmEngine(CsmSettings(model=str(tiny)), progress=lines.append)
    engine.load()
    engine.warmup()
    assert lines == ["loading tiny-csm on cpu (float32)", "warming up"]
    assert sum(map(len, engine.synthesize("Ready."))) > 0
    engine.close()


# -- voices: prompt cache keyed by the clip's SHA256 -------------------------------------------

def test_voice_prompt_is_cached_in_memory_and_on_disk_and_follows_the_clip(tiny, tmp_path):
    clip = speech_clip(tmp_path / "alice.wav")
    voices = {"alice": {"clip": str(clip), "text": "Hello world, this is Jarvis speaking."}}
    cache = Path(os.environ["JARVIS_HOME"]) / "cache" / "csm-voices"

    first = engine_for(tiny, voice="alice", voices=voices, **GREEDY)
    audio_1 = np.concatenate(list(first.synthesize("Ready.")))
    (codes_1,) = first._voice_codes._memory.values()
    audio_2 = np.concatenate(list(first.synthesize("Ready.")))
    assert first._voice_codes.encodings == 1                       # second sentence: memory hit
    assert np.array_equal(audio_1, audio_2)                        # restored prompt KV == freshly computed
    files = sorted(cache.glob("alice-*.pt"))
    assert len(files) == 1 and oct(files[0].stat().st_mode & 0o777) == "0o600"
    first.close()

    second = engine_for(tiny, voice="alice", voices=voices, **GREEDY)
    assert np.array_equal(np.concatenate(list(second.synthesize("Ready."))), audio_1)
    assert second._voice_codes.encodings == 0                      # a new process reads the disk cache
    second.close()

    speech_clip(clip, pitch=240.0)                                 # the user replaces the clip
    third = engine_for(tiny, voice="alice", voices=voices, **GREEDY)
    audio_3 = np.concatenate(list(third.synthesize("Ready.")))
    assert third._voice_codes.encodings == 1                       # new SHA256: encoded again
    (codes_3,) = third._voice_codes._memory.values()
    assert not torch.equal(codes_3, codes_1) and len(audio_3) == len(audio_1)
    assert sorted(cache.glob("alice-*.pt")) != files and len(list(cache.glob("alice-*.pt"))) == 1
    third.close()


def test_voice_prompt_matches_transformers_conversation(tiny, tmp_path):
    """The cached context segment conditions generation exactly like generate() on the conversation."""
    clip = speech_clip(tmp_path / "bob.wav", seconds=1.5)
    context_text, text, frames = "Hello world.", "Ready.", 6
    engine = engine_for(tiny, voice="bob", voices={"bob": {"clip": str(clip), "text": context_text}}, **GREEDY)
    audio, _ = sf.read(clip, dtype="float32")
    conversation = [{"role": "0", "content": [{"type": "text", "text": context_text},
                                              {"type": "audio", "path": audio}]},
                    {"role": "0", "content": [{"type": "text", "text": text}]}]
    inputs = engine.processor.apply_chat_template(conversation, tokenize=True, return_dict=True)
    undecodable = list(range(CODEC_CODEBOOK, VOCAB))
    expected = engine.model.generate(**inputs, max_new_tokens=frames, do_sample=False, depth_decoder_do_sample=False,
                                     suppress_tokens=undecodable + [0], depth_decoder_suppress_tokens=undecodable)[0]
    generator = FrameGenerator(engine.model, 256, Sampling(temperature=0, allow_eos=False))
    engine.generator = generator
    start, embeds = engine._prompt(text, "0", engine._voice)
    generator.prefill(embeds, start=start)
    assert torch.equal(torch.stack(list(generator.frames(frames))), expected)
    engine.close()


def test_a_preview_in_another_voice_uses_the_loaded_model_and_sounds_as_that_voice_applied(tiny, greedy, tmp_path):
    """Settings → Voices "Preview": the host's CSM speaks the draft voice; no second model loads."""
    clip = speech_clip(tmp_path / "dora.wav", seconds=1.5)
    voices = {"dora": {"clip": str(clip), "text": "Hello world."}}
    model = greedy.model
    view = greedy.in_voice(1, "dora", voices)
    assert view.engine is greedy and view.sample_rate == greedy.sample_rate
    view.load(), view.warmup()
    previewed = np.concatenate(list(view.synthesize("Ready.")))
    assert greedy.model is model  # nothing was loaded again
    applied = engine_for(tiny, speaker_id=1, voice="dora", voices=voices, **GREEDY)
    assert np.array_equal(previewed, np.concatenate(list(applied.synthesize("Ready."))))
    applied.close()
    plain = np.concatenate(list(greedy.synthesize("Ready.")))  # the engine's own voice is untouched
    assert not np.array_equal(plain, previewed)
    with pytest.raises(BadInput, match="No voice named 'nobody'"):
        greedy.in_voice(0, "nobody", voices)
    view.close()
    assert greedy.generator is not None  # closing the view frees nothing of the host's


@pytest.mark.parametrize("voices, needle", [
    ({}, "No voice named 'carol'"),
    ({"carol": {"clip": "", "text": "hi"}}, "needs a clip and its transcript"),
    ({"carol": {"clip": "/nowhere/carol.wav", "text": "hi"}}, "not found"),
])
def test_bad_voices_are_one_clear_line(tiny, voices, needle):
    engine = CsmEngine(CsmSettings(model=str(tiny), voice="carol"), voices)
    with pytest.raises((BadInput, NotAvailable), match=needle):
        engine.load()
        engine.warmup()


def test_corrupt_and_too_short_clips_are_refused(tiny, tmp_path):
    (tmp_path / "junk.wav").write_text("not audio")
    speech_clip(tmp_path / "short.wav", seconds=0.3)
    for name, needle in (("junk.wav", "not a readable audio file"), ("short.wav", "0.3 s long")):
        engine = engine_for(tiny, voice="v", voices={"v": {"clip": str(tmp_path / name), "text": "hi"}})
        with pytest.raises(BadInput, match=needle):
            list(engine.synthesize("Ready."))
        engine.close()


# -- failures and the fallback chain -----------------------------------------------------------

def test_missing_model_folder_hands_over_to_the_next_engine_loudly(tmp_path):
    bus, seen = EventBus(), []
    bus.subscribe(seen.append)
    settings = TtsSettings(engines=["csm", "system"])
    settings.csm.model = str(tmp_path / "no-such-model")
    chain = TtsChain.from_settings(settings, bus)
    progress = []
    chain.load(progress=lambda engine, state: progress.append((engine, state)))
    degraded = [e for e in seen if isinstance(e, Degraded)]
    assert [d.engine for d in degraded] == ["csm"] and "no-such-model" in degraded[0].reason
    assert progress == [("csm", "loading"), ("csm", f"failed: {degraded[0].reason}"),
                        ("system", "loading"), ("system", "ready")]
    assert chain.active_engine == "system"
    assert list(chain.speak("Still talking."))
    assert [e.engine for e in seen if isinstance(e, TtsFirstChunk)] == ["system"]
    chain.close()


def test_out_of_memory_retries_once_shorter_then_falls_back(tiny):
    """A fake: a CUDA out-of-memory error cannot happen on this CPU machine, so frames() raises one."""
    engine = engine_for(tiny)
    budgets = []
    real_frames = engine.generator.frames

    def oom_once(max_frames, cancel=None):
        budgets.append(max_frames)
        if len(budgets) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_frames(max_frames, cancel)

    engine.generator.frames = oom_once
    audio = np.concatenate(list(engine.synthesize("Ready.")))
    assert budgets[1] == budgets[0] // 2 and len(audio) == budgets[1] * SAMPLES_PER_FRAME

    def oom_always(max_frames, cancel=None):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    engine.generator.frames = oom_always
    bus, seen = EventBus(), []
    bus.subscribe(seen.append)
    from jarvis.speak.system_engine import SystemEngine
    chain = TtsChain([engine, SystemEngine()], bus)
    chain._slots[0].healthy = True  # already loaded above
    assert list(chain.speak("Still talking."))
    degraded = [e for e in seen if isinstance(e, Degraded)]
    assert [d.engine for d in degraded] == ["csm"] and "out of GPU memory" in degraded[0].reason
    chain.close()


@pytest.mark.slow
def test_cli_say_with_csm_speaks_through_the_chain(tiny, tmp_path):
    home = Path(os.environ["JARVIS_HOME"])
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "settings.json").write_text(json.dumps(
        {"schema_version": 2, "tts": {"engines": ["piper", "system"], "csm": {"max_seconds": 1.0}}}))
    out = tmp_path / "csm.wav"
    result = jarvis("say", "Hello world.", "--engine", "csm", "--csm-model", str(tiny), "--out", str(out))
    assert result.returncode == 0, result.stderr
    audio, rate = sf.read(out)
    assert rate == 24000 and len(audio) == 12 * SAMPLES_PER_FRAME  # csm spoke (1 s guard = 12 frames)

    broken = jarvis("say", "Hello world.", "--engine", "csm", "--csm-model", str(tmp_path / "gone"),
                    "--out", str(out))
    assert broken.returncode == 0, broken.stderr
    assert "csm unavailable" in broken.stderr and "gone" in broken.stderr  # loud, one line
    assert sf.read(out)[1] == 22050                                           # piper took over

    unknown = jarvis("say", "Hello.", "--engine", "csm", "--csm-model", str(tiny), "--voice", "zed",
                     "--out", str(out))
    assert "No voice named 'zed'" in unknown.stderr


@pytest.mark.slow
def test_doctor_lists_csm_down_first_when_it_cannot_run(tmp_path):
    home = Path(os.environ["JARVIS_HOME"])
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "settings.json").write_text(json.dumps(
        {"schema_version": 2, "tts": {"csm": {"model": str(tmp_path / "gone")}}}))
    doctor = jarvis("doctor")
    assert "1. csm: DOWN" in doctor.stdout and "gone" in doctor.stdout
    assert "2. piper: ok" in doctor.stdout and "3. system: ok" in doctor.stdout


def test_say_with_an_unknown_engine_is_one_clear_line(tmp_path):
    assert_one_clear_line(jarvis("say", "hi", "--engine", "nope", "--out", str(tmp_path / "x.wav")),
                          "Unknown TTS engine 'nope'")


# -- the benchmark (a functional check here; its numbers come from a GPU run) -------------------

def test_bench_tts_runs_both_paths_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    result = jarvis("bench", "tts", "--tiny", "--device", "cpu", "--frames", "6", "--runs", "1", "--out", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["frames"] == 6 and report["device"].startswith("cpu") and report["dtype"] == "float32"
    for path in ("plain_generate", "fast_path"):
        assert report[path]["samples_per_run"] == 6 * SAMPLES_PER_FRAME   # both made exactly 6 frames of audio
        assert report[path]["rtf"] > 0 and report[path]["time_to_first_audio_ms"] > 0
    assert report["fast_path"]["cuda_graphs"] is False
    assert report["speedup_rtf"] == round(report["plain_generate"]["rtf"] / report["fast_path"]["rtf"], 2)
    assert "(b) Jarvis fast path" in result.stdout
