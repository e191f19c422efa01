"""Voices other apps add to the speech server: audio prompts for CSM's voice cloning, and voice mappings.

A prompt is a clip of a voice (1-30 s, recorded at 16 kHz or more) and what is said in it; without a transcript
the warmed Whisper writes one. It is kept as a 24 kHz mono WAV (CSM's rate) and a JSON file, both 0600 in a 0700
folder under Jarvis's data folder, named by the id the client chose, which must be a safe name (lowercase
letters, digits, ``-``, ``_``): nothing a client sends becomes part of a path otherwise.

A mapping names a way to speak that speech requests can ask for by ``voice``: an engine first (the chain's other
engines stay its fallbacks), for CSM a speaker id and a prompt, and a speed.
"""
from __future__ import annotations

import io
import json
import logging
import re
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from jarvis.errors import BadInput
from jarvis.serve import audio_in

log = logging.getLogger(__name__)

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MIN_SECONDS, MAX_SECONDS = 1.0, 30.0
MIN_SOURCE_RATE = 16000
PROMPT_RATE = 24000
MAX_TRANSCRIPT_CHARS = 1000
MAPPINGS_FILE = "mappings.json"


def check_name(name: str, taken: set[str], what: str = "voice") -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise BadInput("bad_voice_name", f"A {what} id is 1-40 lowercase letters, digits, '-' or '_', starting with a "
                                         f"letter or digit (got {str(name)[:60]!r}).")
    if name in taken:
        raise BadInput("voice_name_taken", f"{name!r} is already a voice here; delete it first or pick another id.")
    return name


class VoiceStore:
    def __init__(self, folder: Path):
        from jarvis import paths

        self.folder = paths.private_dir(Path(folder))
        self._lock = threading.Lock()

    # -- prompts -----------------------------------------------------------------------------
    def prompts(self) -> list[dict]:
        out = []
        for meta in sorted(self.folder.glob("*.json")):
            if meta.name == MAPPINGS_FILE:
                continue
            try:
                entry = json.loads(meta.read_text())
            except (OSError, ValueError):
                continue        # a damaged entry is skipped, never deleted
            if (self.folder / f"{meta.stem}.wav").exists():
                out.append(entry)
        return out

    def clips(self) -> dict:
        """The prompts as ``tts.voices`` entries (name -> clip and text) for CSM."""
        return {p["id"]: {"clip": str(self.folder / f"{p['id']}.wav"), "text": p["transcript"]}
                for p in self.prompts()}

    def add(self, name: str, data: bytes, transcript: str | None, taken: set[str],
            transcribe: Callable[[np.ndarray], str]) -> dict:
        """Validate and keep a prompt; Whisper writes the transcript when none is given."""
        import soundfile
        import soxr

        from jarvis.storage import atomic_write_bytes, atomic_write_json

        with self._lock:
            check_name(name, taken | {p["id"] for p in self.prompts()})
            samples, source_rate = audio_in.decode_with_rate(data, "the voice prompt", PROMPT_RATE)
            seconds = len(samples) / PROMPT_RATE
            if not MIN_SECONDS <= seconds <= MAX_SECONDS:
                raise BadInput("prompt_length", f"The voice prompt is {seconds:.1f} s; it must be {MIN_SECONDS:g} to "
                                                f"{MAX_SECONDS:g} s of one person speaking.")
            if source_rate < MIN_SOURCE_RATE:
                raise BadInput("prompt_rate", f"The voice prompt was recorded at {source_rate} Hz; clone from "
                                              f"{MIN_SOURCE_RATE} Hz or more (a phone-quality clip clones poorly).")
            if float(np.sqrt(np.mean(samples ** 2))) < 10 ** (-45 / 20):
                raise BadInput("prompt_silent", "The voice prompt is silent: send a clip of someone speaking.")
            text = (transcript or "").strip()
            if len(text) > MAX_TRANSCRIPT_CHARS:
                raise BadInput("transcript_too_long", f"The transcript has {len(text)} characters; at most "
                                                      f"{MAX_TRANSCRIPT_CHARS}.")
            transcribed = not text
            if transcribed:
                text = transcribe(soxr.resample(samples, PROMPT_RATE, audio_in.RATE).astype(np.float32)).strip()
                if not text:
                    raise BadInput("prompt_no_words", "Whisper heard no words in the voice prompt: send the "
                                                      "transcript with it, or a clearer clip.")
            wav = io.BytesIO()
            soundfile.write(wav, samples, PROMPT_RATE, format="WAV", subtype="PCM_16")
            entry = {"id": name, "transcript": text, "transcribed": transcribed, "seconds": round(seconds, 2),
                     "source_rate": source_rate, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            atomic_write_bytes(self.folder / f"{name}.wav", wav.getvalue())
            atomic_write_json(self.folder / f"{name}.json", entry)
            return entry

    def remove(self, name: str) -> list[str]:
        """Delete a prompt (and the mappings that clone it: their ids are returned); BadInput when unknown."""
        with self._lock:
            if not isinstance(name, str) or not NAME.match(name) or not (self.folder / f"{name}.json").exists():
                raise BadInput("unknown_voice", f"No uploaded voice {str(name)[:60]!r}: GET /v1/audio/voices lists "
                                                "them.")
            mappings = self._mappings()
            dropped = [k for k, m in mappings.items() if m.get("prompt") == name]
            for k in dropped:
                del mappings[k]
            if dropped:
                self._save_mappings(mappings)
            (self.folder / f"{name}.wav").unlink(missing_ok=True)
            (self.folder / f"{name}.json").unlink(missing_ok=True)
            return dropped

    # -- mappings ----------------------------------------------------------------------------
    def mappings(self) -> dict:
        with self._lock:
            return self._mappings()

    def set_mapping(self, name: str, mapping: dict, engines: list[str], taken: set[str]) -> dict:
        with self._lock:
            current = self._mappings()
            check_name(name, taken - set(current), "mapping")
            engine = str(mapping.get("engine", "")).strip().lower()
            if engine not in engines:
                raise BadInput("unknown_engine", f"engine {mapping.get('engine')!r} is not in the TTS chain here; "
                                                 f"use one of {', '.join(engines)}.")
            prompt = mapping.get("prompt") or ""
            if prompt and engine != "csm":
                raise BadInput("prompt_needs_csm", "A cloned voice (prompt) speaks only with engine \"csm\".")
            if prompt and prompt not in {p["id"] for p in self.prompts()}:
                raise BadInput("unknown_voice", f"No uploaded voice {str(prompt)[:60]!r} to clone: upload it first "
                                                "(POST /v1/audio/voices).")
            speaker = mapping.get("csm_speaker", 0)
            speed = mapping.get("speed", 1.0)
            if not isinstance(speaker, int) or isinstance(speaker, bool) or not 0 <= speaker <= 9:
                raise BadInput("bad_speaker", "csm_speaker is a whole number from 0 to 9.")
            if not isinstance(speed, (int, float)) or isinstance(speed, bool) or not 0.25 <= speed <= 4.0:
                raise BadInput("bad_speed", "speed is a number from 0.25 to 4.")
            current[name] = {"id": name, "engine": engine, "csm_speaker": speaker, "prompt": prompt,
                             "speed": float(speed)}
            self._save_mappings(current)
            return current[name]

    def remove_mapping(self, name: str) -> None:
        with self._lock:
            current = self._mappings()
            if name not in current:
                raise BadInput("unknown_voice", f"No voice mapping {str(name)[:60]!r}: GET /v1/audio/voices lists "
                                                "them.")
            del current[name]
            self._save_mappings(current)

    def _mappings(self) -> dict:
        path = self.folder / MAPPINGS_FILE
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                raise ValueError("not an object")
            return data
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:   # kept aside, never written over
            aside = path.with_name(f"mappings-damaged-{time.strftime('%Y%m%d-%H%M%S')}.bak")
            path.replace(aside)
            log.warning("voice mappings file was damaged (%s); kept as %s, starting with none", exc, aside)
            return {}

    def _save_mappings(self, mappings: dict) -> None:
        from jarvis.storage import atomic_write_json

        atomic_write_json(self.folder / MAPPINGS_FILE, mappings)
