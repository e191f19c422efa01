"""`jarvis --self-test`: prove the offline stack works here, headless, without a microphone or speaker.

Each step prints ``PASS`` or ``FAIL`` with what it saw; the exit code is 0 only when every step passed.
It loads the bundled models, speaks a sentence with Piper, transcribes it back with Whisper in a spawned
worker process (which proves ``freeze_support`` in a frozen build), hears the wake word in Piper's "Jarvis",
enrolls two synthetic voices (Piper's and espeak-ng's) in a throwaway store (the user's enrolled voices are
never touched) and identifies a third clip, and asks the local LLM a question. Used by the frozen build as
well as from source.
"""
from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

RATE = 16000
SENTENCE = "The quick brown fox jumps over the lazy dog."
ENROLL = ["I would like a cup of tea this afternoon.", "Please remind me to call my sister tomorrow."]
PROBE = "The weather is lovely today, so let us go for a walk."


class Failed(Exception):
    pass


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z ]", " ", text.lower()).split()


def synthesize_16k(engine, text: str) -> np.ndarray:
    """``text`` from a TTS engine as 16 kHz float32 (what the listener and speaker ID take)."""
    from jarvis.audio.resample import resample

    audio = np.concatenate([np.asarray(c, np.float32).reshape(-1) for c in engine.synthesize(text)])
    return resample(audio, engine.sample_rate, RATE)


def run(settings, out=print) -> int:
    """Run every step; returns the exit code."""
    state: dict = {}
    steps: list[tuple[str, Callable[[], str]]] = [
        ("speech synthesis (Piper)", lambda: _tts(state)),
        ("speech-to-text (Whisper " + settings.listen.stt_model + " via RealtimeSTT, in a spawned worker process)",
         lambda: _stt(state, settings)),
        ("wake word (Porcupine 'jarvis')", lambda: _wake(state, settings)),
        ("voice activity (Silero)", lambda: _vad(state)),
        ("speaker identification (resemblyzer)", lambda: _speakers(state, settings)),
        ("language model (" + settings.brain.backend + ")", lambda: _llm(settings)),
    ]
    failed = 0
    for name, step in steps:
        started = time.monotonic()
        try:
            detail = step()
            verdict = "PASS"
        except Exception as exc:  # every failure is a line, never a traceback
            detail = str(exc) if isinstance(exc, Failed) else f"{type(exc).__name__}: {exc}"
            verdict, failed = "FAIL", failed + 1
        out(f"{verdict}  {name}: {detail} ({time.monotonic() - started:.1f} s)")
    out(f"self-test: {len(steps) - failed} of {len(steps)} steps passed")
    return 0 if failed == 0 else 1


def _tts(state: dict) -> str:
    from jarvis.speak.piper_engine import PiperEngine

    piper = PiperEngine()
    piper.load()
    state["piper"] = piper
    audio = synthesize_16k(piper, SENTENCE)
    if audio.size < RATE or float(np.sqrt(np.mean(audio ** 2))) < 0.01:
        raise Failed(f"Piper produced {audio.size / RATE:.2f} s of (near) silence")
    state["sentence"] = audio
    return f"{audio.size / RATE:.1f} s of speech"


def _stt(state: dict, settings) -> str:
    """Whisper runs in a child process started with spawn, as RealtimeSTT runs it on Windows and macOS:
    in a frozen build that only works when ``multiprocessing.freeze_support()`` runs first."""
    import multiprocessing

    if "sentence" not in state:
        raise Failed("nothing to transcribe: speech synthesis failed")
    with multiprocessing.get_context("spawn").Pool(1) as worker:
        heard = worker.apply(_transcribe, (settings.listen, state["sentence"]))
    said, got = _words(SENTENCE), set(_words(heard))
    hits = sum(w in got for w in said)
    if hits < 0.7 * len(said):
        raise Failed(f"heard {heard!r} for {SENTENCE!r}")
    return f"heard {heard!r}"


def _transcribe(listen_settings, audio: np.ndarray) -> str:
    """Whisper through the engine the listener's worker process runs (jarvis.listen.command_engine), which
    RealtimeSTT's factory imports by name at run time once the worker module registered it: what the voice loop
    runs."""
    import jarvis.listen.stt_worker  # noqa: F401  (registers the engine; RealtimeSTT's recorder modules, scipy)
    from RealtimeSTT.transcription_engines.base import TranscriptionEngineConfig
    from RealtimeSTT.transcription_engines.factory import create_transcription_engine

    from jarvis.listen.command_engine import ENGINE

    from jarvis.listen.stt import resolve_device, resolve_model

    s = listen_settings
    device, compute_type = resolve_device(s.stt_device, s.stt_compute_type)
    engine = create_transcription_engine(ENGINE, TranscriptionEngineConfig(
        model=resolve_model(s.stt_model), device=device, compute_type=compute_type,
        beam_size=s.beam_size, vad_filter=False))
    return engine.transcribe(audio, language=s.language).text


def _wake(state: dict, settings) -> str:
    from jarvis.listen.wake import PhasedPorcupine

    if "piper" not in state:
        raise Failed("no voice to say 'Jarvis': speech synthesis failed")
    audio = np.concatenate([np.zeros(RATE // 2, np.float32), synthesize_16k(state["piper"], "Jarvis."),
                            np.zeros(RATE // 2, np.float32)])
    word = settings.listen.wake_word.strip().lower()
    porcupine = PhasedPorcupine([word], [settings.listen.wake_sensitivity])  # the listener's detector
    try:
        pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
        n = porcupine.frame_length
        hits = [i * n / RATE for i in range(len(pcm) // n) if porcupine.process(pcm[i * n:(i + 1) * n]) >= 0]
    finally:
        porcupine.delete()
    if not hits:
        raise Failed(f"'{word}' was not heard in Piper's voice")
    return f"heard at {hits[0]:.2f} s"


def _vad(state: dict) -> str:
    from RealtimeSTT.core.silero_vad import create_silero_vad_model

    if "sentence" not in state:
        raise Failed("no speech to check: speech synthesis failed")
    model = create_silero_vad_model(backend="auto")
    audio = np.concatenate([np.zeros(RATE, np.float32), state["sentence"]])
    blocks = [audio[i:i + 512] for i in range(0, len(audio) - 512, 512)]
    flags = [_is_speech(model, b) for b in blocks]
    silent, spoken = flags[: RATE // 512], flags[RATE // 512:]
    if any(silent) or sum(spoken) < 0.3 * len(spoken):
        raise Failed(f"speech in {sum(silent)} of {len(silent)} silent blocks, {sum(spoken)} of {len(spoken)} spoken")
    return f"speech in {sum(spoken)} of {len(spoken)} spoken blocks, none in 1 s of silence"


def _is_speech(model, block: np.ndarray) -> bool:
    prob = model(block, RATE)
    return float(prob.item() if hasattr(prob, "item") else prob) > 0.5


def _speakers(state: dict, settings) -> str:
    from jarvis.speak.system_engine import SystemEngine
    from jarvis.speakers.encoder import SpeakerEncoder
    from jarvis.speakers.identify import Identifier
    from jarvis.speakers.store import SpeakerStore

    if "piper" not in state:
        raise Failed("no voice to enroll: speech synthesis failed")
    system = SystemEngine()
    system.load()
    encoder = SpeakerEncoder()
    encoder.load()
    with tempfile.TemporaryDirectory(prefix="jarvis-selftest-") as folder:
        store = SpeakerStore(Path(folder))
        for name, engine in (("piper-voice", state["piper"]), ("espeak-voice", system)):
            store.add(name, [encoder.embed(synthesize_16k(engine, line)) for line in ENROLL])
        identifier = Identifier(store, encoder, settings.speakers.threshold)
        match = identifier.identify(synthesize_16k(state["piper"], PROBE))
        other = identifier.identify(synthesize_16k(system, PROBE))
    if match.name != "piper-voice" or other.name != "espeak-voice":
        raise Failed(f"Piper's voice was named {match.name!r} ({match.score:.2f}), espeak-ng's {other.name!r} "
                     f"({other.score:.2f})")
    return f"both test voices named correctly (scores {match.score:.2f}, {other.score:.2f})"


def _llm(settings) -> str:
    from jarvis.brain import backends
    from jarvis.brain.llm import LlmResponder
    from jarvis.brain.types import Turn

    if settings.brain.backend != "local":
        return f"not checked: brain.backend is {settings.brain.backend} (only the local model is offline)"
    backend = backends.create(settings.brain)
    backend.load()
    try:
        messages = LlmResponder(settings.brain).messages(Turn("What is the capital of France?"))
        reply = "".join(backend.stream(messages, lambda: False, max_tokens=24, temperature=0.0))
    finally:
        backend.close()
    if "paris" not in reply.lower():
        raise Failed(f"asked for the capital of France, got {reply!r}")
    return f"answered {reply.strip()!r}"


def main(settings) -> int:
    return run(settings, out=lambda line: print(line, flush=True))
