"""Enrollment: turn recordings of one person into stored embeddings.

Every input is checked and embedded before anything is written, so a bad file leaves the
store exactly as it was.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from jarvis.audio.wav import is_silence, read_speech_wav
from jarvis.errors import BadInput
from jarvis.speakers.encoder import MIN_SPEECH_S, SpeakerEncoder
from jarvis.speakers.store import SpeakerStore

DEFAULT_PHRASES = (
    "Jarvis, what is the weather like today?",
    "Jarvis, set a timer for ten minutes.",
    "Jarvis, play some quiet music in the kitchen.",
    "Jarvis, remind me to call my sister tomorrow morning.",
)


def enroll_from_wavs(name: str, wav_paths: Iterable[str | Path], store: SpeakerStore,
                     encoder: SpeakerEncoder) -> int:
    """Enroll ``name`` from 16 kHz mono WAV files; returns how many embeddings were added."""
    clean = store.check_add(name)
    if isinstance(wav_paths, (str, Path)):
        wav_paths = [wav_paths]
    paths = [Path(p) for p in wav_paths]
    if not paths:
        raise BadInput("no_files", f"Give at least one WAV recording: jarvis enroll {clean!r} FILE.wav")
    clips = [(str(p), read_speech_wav(p)) for p in paths]   # every file readable before any embedding
    embeddings = [_embed(encoder, samples, source) for source, samples in clips]
    store.add(clean, embeddings)
    return len(embeddings)


def enroll_from_mic(name: str, store: SpeakerStore, encoder: SpeakerEncoder, device: str = "",
                    phrases: Sequence[str] = DEFAULT_PHRASES, seconds: float = 4.0,
                    on_prompt: Callable[[str], None] = print, *,
                    recorder: Callable[[float, str, Callable[[], None]], np.ndarray] | None = None) -> int:
    """Prompt for each phrase, record ``seconds`` of it, then store all embeddings at once.

    ``recorder(seconds, device, on_open)`` defaults to ``jarvis.audio.capture.record``; the prompt is shown by
    ``on_open``, once the microphone is open, so nothing said after it is lost.
    """
    clean = store.check_add(name)
    if not phrases:
        raise BadInput("no_phrases", "Give at least one phrase to read for enrollment.")
    if not seconds > 0:
        raise BadInput("bad_duration", f"Recording length must be above 0 s (got {seconds}).")
    if recorder is None:
        from jarvis.audio.capture import record as recorder
    encoder.load()
    embeddings = []
    for i, phrase in enumerate(phrases, 1):
        line = f'[{i}/{len(phrases)}] Say: "{phrase}"'
        samples = recorder(seconds, device, lambda line=line: on_prompt(line))
        embeddings.append(_embed(encoder, samples, f"phrase {i}", mic=True))
    store.add(clean, embeddings)
    on_prompt(f"Enrolled {clean} with {len(embeddings)} recordings.")
    return len(embeddings)


def _embed(encoder: SpeakerEncoder, samples: np.ndarray, source: str, mic: bool = False) -> np.ndarray:
    fix = ("check the microphone and speak louder" if mic
           else "give a recording of the person speaking")
    if is_silence(samples):
        raise BadInput("silent_enrollment", f"{source} is silent; nothing was enrolled. Please {fix}.")
    try:
        return encoder.embed(samples)
    except BadInput as exc:
        if exc.code != "no_speech":
            raise
        raise BadInput("silent_enrollment",
                       f"{source} holds under {MIN_SPEECH_S:g} s of speech; nothing was enrolled. "
                       f"Please {fix}.") from exc
