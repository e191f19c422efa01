"""Performance presets (jarvis.presets): the defaults are `balanced`, a named preset is in charge of its settings,
`custom` keeps the user's, and settings files from before presets keep every value they had."""
from __future__ import annotations

import dataclasses
import json

import pytest

from jarvis import config, presets
from tests.core.test_cli_bad_input import jarvis, write_settings


def _values(settings) -> dict:
    return {key: presets._get(settings, key) for key in presets.PRESETS["balanced"]}


def test_the_defaults_are_the_balanced_preset_and_every_preset_names_the_same_real_settings():
    settings = config.Settings()
    assert settings.preset == "balanced" and presets.differences(settings, "balanced") == []
    keys = set(presets.PRESETS["balanced"])
    for name, preset in presets.PRESETS.items():
        assert set(preset) == keys, name
        tried = config.Settings()
        presets.apply(tried, name)
        assert presets.differences(tried, name) == [] and tried.preset == name
        assert presets.name_for(_values(tried)) == name
    assert len({json.dumps(p, sort_keys=True) for p in presets.PRESETS.values()}) == len(presets.PRESETS)


def test_a_preset_puts_its_engines_first_and_keeps_the_cloud_voices_the_user_added():
    settings = config.Settings()
    settings.tts.engines = ["csm", "openai", "piper", "system", "edge"]
    assert presets.apply(settings, "low_latency")
    assert settings.tts.engines == ["piper", "csm", "system", "openai", "edge"]
    assert presets.differences(settings, "low_latency") == []


def test_custom_changes_nothing():
    settings = config.Settings()
    settings.listen.beam_size, settings.audio.block_ms = 4, 48
    before = dataclasses.asdict(settings)
    assert presets.apply(settings, "custom") == [] and settings.preset == "custom"
    assert {k: v for k, v in dataclasses.asdict(settings).items() if k != "preset"} == \
        {k: v for k, v in before.items() if k != "preset"}


def test_a_file_from_before_presets_keeps_its_values(jarvis_home):
    """Schema 2 had no preset: its values decide (the defaults are balanced; anything else is custom)."""
    path = write_settings({"schema_version": 2, "listen": {"beam_size": 5, "post_speech_silence": 0.7}})
    settings = config.load(path)
    assert settings.preset == "custom" and settings.listen.beam_size == 5 and settings.listen.post_speech_silence == 0.7
    assert settings.notice == ""
    path = write_settings({"schema_version": 2, "listen": {"wake_sensitivity": 0.8}, "tts": {"engines": 7}})
    settings = config.load(path)
    assert settings.preset == "custom" and settings.listen.wake_sensitivity == 0.8  # a bad list moves nothing aside
    path = write_settings({"schema_version": 2, "listen": {"wake_sensitivity": 0.8}})
    settings = config.load(path)
    assert settings.preset == "balanced" and settings.listen.wake_sensitivity == 0.8 and settings.notice == ""


def test_a_hand_edit_that_disagrees_with_the_named_preset_is_one_line_and_the_preset_wins(jarvis_home):
    path = write_settings({"schema_version": 3, "preset": "low_latency", "listen": {"beam_size": 5},
                           "audio": {"block_ms": 20}})
    before = path.read_bytes()
    result = jarvis("speakers", "list")
    assert result.returncode == 0 and "Traceback" not in result.stderr
    [line] = [ln for ln in result.stderr.splitlines() if ln.startswith("warning: settings: ")]
    assert "listen.beam_size is 5 but preset low_latency sets 1" in line and '"preset": "custom"' in line, line
    assert path.read_bytes() == before  # loading never rewrites the file
    settings = config.load(path)
    assert settings.listen.beam_size == 1 and settings.listen.post_speech_silence == 0.3


def test_a_file_saved_with_a_former_value_of_its_preset_takes_the_new_one_quietly(jarvis_home):
    """low_latency's microphone blocks were 20 ms before the speaker's block size was a setting: a file Jarvis saved
    then is not a hand edit."""
    saved = config.Settings()
    presets.apply(saved, "low_latency")
    data = saved.to_dict()
    data["audio"]["block_ms"] = 20
    del data["audio"]["output_block_ms"]
    settings = config.load(write_settings(data))
    assert settings.notice == "" and settings.preset == "low_latency"
    assert settings.audio.block_ms == 10 and settings.audio.output_block_ms == 20
    data["audio"]["block_ms"] = 48   # never low_latency's: a hand edit, said in one line
    settings = config.load(write_settings(data))
    assert settings.audio.block_ms == 10 and "audio.block_ms is 48 but preset low_latency sets 10" in settings.notice


def test_renaming_the_preset_in_a_saved_file_switches_to_it_quietly(jarvis_home):
    """A file Jarvis saved holds every value of its preset; a person who edits only "preset" gets the new one."""
    saved = config.Settings().to_dict()
    saved["preset"] = "high_quality"
    path = write_settings(saved)
    settings = config.load(path)
    assert settings.notice == "" and settings.preset == "high_quality"
    assert settings.listen.beam_size == 5 and settings.listen.stt_model == "small.en"


def test_a_preset_name_is_read_whatever_its_case(jarvis_home):
    settings = config.load(write_settings({"schema_version": 3, "preset": " Low_Latency"}))
    assert settings.preset == "low_latency" and settings.audio.block_ms == 10 and settings.notice == ""


@pytest.mark.parametrize("preset", ["turbo", 3])
def test_an_unknown_preset_falls_back_to_balanced_in_one_line(jarvis_home, preset):
    path = write_settings({"schema_version": 3, "preset": preset, "listen": {"wake_sensitivity": 0.8}})
    settings = config.load(path)
    assert settings.preset == "balanced" and settings.listen.wake_sensitivity == 0.8
    [line] = settings.notice.splitlines()
    assert line.startswith("settings: preset is ") and "using the default \"balanced\"" in line, line
