"""Performance presets: one setting (``preset`` in settings.json, Settings → Models) that names the speech-to-text
model and beam, how a command's end is found, the voice engines' order and the microphone block size.

``balanced`` is the defaults. A preset other than ``custom`` is in charge of its settings: when settings.json says
otherwise (edited by hand), the preset's value is used and the loader says so in one line per setting; choose
``custom`` to set them yourself. Settings → Models switches to ``custom`` when one of them is edited there.
"""
from __future__ import annotations

import json
from typing import Any

CUSTOM = "custom"

PRESETS: dict[str, dict[str, Any]] = {
    # Piper first (its first audio comes ~60 ms after the text on two cores; CSM needs a GPU to be quick), a turn
    # ends sooner, a command's short Whisper window first (a few words less accurate), 10 ms microphone blocks (its
    # audio arrives 20 ms sooner; a little more CPU). The speaker keeps 20 ms blocks: with 10 ms ones a reply was
    # heard ~13 ms sooner, but the device ran dry 0-3 times per 24-turn bench run on 2 cores (clicks).
    # An unfinished sentence still waits 0.7 s: the wait counts from Silero's silence (~85 ms after the voice) and
    # the voice's return is heard a chunk or two late, so at 0.6 s a 0.6 s pause mid-sentence raced the cap (1 of
    # 13 paused commands cut off, benchmarks/results/pipeline-cpu-heard-words-48-turns.json).
    "low_latency": {
        "listen.stt_model": "tiny.en", "listen.beam_size": 1, "listen.end_of_turn": "model",
        "listen.end_of_turn_silence": 0.1, "listen.unfinished_silence": 0.7, "listen.post_speech_silence": 0.3,
        "listen.stt_short_window": True, "tts.engines": ["piper", "csm", "system"], "audio.block_ms": 10,
        "audio.output_block_ms": 20,
    },
    "balanced": {
        "listen.stt_model": "tiny.en", "listen.beam_size": 1, "listen.end_of_turn": "model",
        "listen.end_of_turn_silence": 0.15, "listen.unfinished_silence": 0.7, "listen.post_speech_silence": 0.4,
        "listen.stt_short_window": False, "tts.engines": ["csm", "piper", "system"], "audio.block_ms": 32,
        "audio.output_block_ms": 20,
    },
    # A larger Whisper (downloaded once from the Hugging Face hub), beam search, its full window always, more patience
# at pauses.
    "high_quality": {
        "listen.stt_model": "small.en", "listen.beam_size": 5, "listen.end_of_turn": "model",
        "listen.end_of_turn_silence": 0.3, "listen.unfinished_silence": 1.0, "listen.post_speech_silence": 0.6,
        "listen.stt_short_window": False, "tts.engines": ["csm", "piper", "system"], "audio.block_ms": 32,
        "audio.output_block_ms": 20,
    },
}
# Values a preset gave in an earlier Jarvis: a settings file saved then holds them, and is not a hand edit (the
# preset's current value is taken without a warning).
FORMER: dict[str, dict[str, tuple]] = {"low_latency": {"audio.block_ms": (20,)}}
NAMES = (*PRESETS, CUSTOM)
LABELS = {"low_latency": "Low latency", "balanced": "Balanced", "high_quality": "High quality", CUSTOM: "Custom"}
ENGINES = "tts.engines"


def _get(settings, key: str) -> Any:
    section, name = key.split(".")
    return getattr(getattr(settings, section), name)


def _set(settings, key: str, value: Any) -> None:
    section, name = key.split(".")
    setattr(getattr(settings, section), name, list(value) if isinstance(value, list) else value)


def _matches(key: str, current: Any, wanted: Any) -> bool:
    if key == ENGINES:  # the preset orders its engines first; engines it does not name (cloud voices) may follow
        return isinstance(current, list) and current[:len(wanted)] == wanted
    return current == wanted


def differences(settings, name: str, keys=None) -> list[str]:
    """The settings (dotted keys) whose value is not the one preset ``name`` gives them."""
    if name not in PRESETS:
        return []
    return [key for key, wanted in PRESETS[name].items()
            if (keys is None or key in keys) and not _matches(key, _get(settings, key), wanted)]


def apply(settings, name: str) -> list[str]:
    """Give ``settings`` preset ``name``'s values (``custom`` changes nothing); returns the keys it changed."""
    changed = differences(settings, name)
    for key in changed:
        wanted = PRESETS[name][key]
        if key == ENGINES:
            wanted = wanted + [e for e in _get(settings, key) if e not in wanted]
        _set(settings, key, wanted)
    settings.preset = name
    return changed


def enforce(settings, raw: dict) -> list[str]:
    """After loading: a named preset's values win over what the file (``raw``) says; one line per setting the file
    gave another value (a setting it leaves out just takes the preset's)."""
    if settings.preset not in PRESETS:
        return []
    file_values = {key: _get(settings, key) for key in PRESETS[settings.preset]}
    renamed = name_for(file_values) != CUSTOM  # the values are another preset's: only the preset's name was edited
    lines = []
    for key in apply(settings, settings.preset):
        section, name = key.split(".")
        former = file_values[key] in FORMER.get(settings.preset, {}).get(key, ())
        if not renamed and not former and isinstance(raw.get(section), dict) and name in raw[section]:
            lines.append(f"settings: {key} is {_show(file_values[key])} but preset {settings.preset} sets "
                         f"{_show(_get(settings, key))}; using the preset's (set \"preset\": \"custom\" to choose "
                         "your own)")
    return lines


def name_for(values: dict[str, Any]) -> str:
    """The preset whose every value ``values`` (dotted keys, all of a preset's) has, else ``custom``."""
    for name, preset in PRESETS.items():
        if all(_matches(key, values[key], wanted) for key, wanted in preset.items()):
            return name
    return CUSTOM


def _show(value: Any) -> str:
    return json.dumps(value)
