"""`jarvis bench components` and `jarvis bench idle`: smoke runs with real models (few repetitions).

Only the shape of the result is checked: figures are measured, never asserted against goals here.
"""
from __future__ import annotations

import argparse
import json
import numbers

import numpy as np
import pytest

from jarvis import config
from jarvis.bench import components, idle
from jarvis.bench.stats import cpu_vector_extensions, hardware, stats_ms
from jarvis.errors import BadInput

FIGURES = ("p50_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms", "min_ms")


def _args(module, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return parser.parse_args(argv)


def _positive(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and value > 0


def test_stats_ms_percentiles_by_nearest_rank():
    s = stats_ms([i / 1000 for i in range(1, 101)], digits=1)  # 1 .. 100 ms
    assert s == {"p50_ms": 50.5, "p95_ms": 95.0, "p99_ms": 99.0, "max_ms": 100.0, "mean_ms": 50.5,
                 "min_ms": 1.0, "n": 100}
    assert stats_ms([]) == {}


def test_the_hardware_names_the_cpus_vector_extensions():
    # Two machines both called "AMD EPYC" ran Whisper at different speeds; results say which kind ran them.
    milan = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx fma avx2 bmi2\n"
    genoa = "flags\t\t: avx avx2 avx512f avx512bw avx512_vnni\n"
    assert cpu_vector_extensions(milan) == "AVX2, no AVX-512"
    assert cpu_vector_extensions(genoa) == "AVX2, AVX-512, VNNI"
    assert cpu_vector_extensions("flags\t: fpu sse2\n") == "none of AVX2, AVX-512, VNNI, AVX-VNNI, AMX"
    assert cpu_vector_extensions("Features\t: fp asimd\n") is None          # ARM: no x86 flags line
    with open("/proc/cpuinfo") as info:
        here = cpu_vector_extensions(info.read())
    assert here and f"({here})" in hardware()


def test_a_benchmark_home_is_its_own_and_goes_with_it(tmp_path, monkeypatch):
    import os

    from jarvis.bench.scratch import scratch_home

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)  # tempfile reads TMPDIR again
    monkeypatch.setenv("JARVIS_HOME", "/the/users/home")
    with pytest.raises(RuntimeError), scratch_home("jarvis-room-") as work:
        assert work.parent == tmp_path and work.name.startswith("jarvis-room-")
        assert os.environ["JARVIS_HOME"] == str(work / "home")
        (work / "clip.wav").write_bytes(b"RIFF")
        raise RuntimeError("a benchmark that fails half-way")
    assert os.environ["JARVIS_HOME"] == "/the/users/home"
    assert list(tmp_path.iterdir()) == []
    monkeypatch.delenv("JARVIS_HOME")
    with scratch_home("jarvis-bench-"):
        pass
    assert "JARVIS_HOME" not in os.environ and list(tmp_path.iterdir()) == []


def test_clips_are_fitted_to_their_exact_length():
    speech = np.ones(16000, dtype=np.float32)
    assert components.fit(speech, 2.0).size == 32000
    assert components.fit(speech, 2.0)[:8000].max() == 0  # centred in silence
    assert components.fit(speech, 0.5).size == 8000       # longer speech is cut


def test_an_unknown_component_is_one_clear_error(capsys):
    with pytest.raises(BadInput) as err:
        components.main(_args(components, ["--only", "vad_silero,warp_drive"]), config.load())
    assert "warp_drive" in err.value.message


@pytest.mark.slow
def test_components_measure_every_part_with_real_models(tmp_path, capsys):
    out = tmp_path / "components.json"
    assert components.main(_args(components, ["--repeat", "2", "--out", str(out)]), config.load()) == 0
    result = json.loads(out.read_text())
    assert result["benchmark"] == "components"
    assert "cores available" in result["hardware"]
    assert result["versions"]["faster-whisper"] != "not installed"
    assert result["command"] and result["date"]
    expected = components.COMPONENTS + [f"tts_{e}" for e in components.TTS_ENGINES]
    assert sorted(result["components"]) == sorted(expected)
    for name, figures in result["components"].items():
        if "skipped" in figures:
            assert name == "tts_csm", f"{name} was skipped: {figures['skipped']}"
            assert figures["skipped"].strip()
            continue
        assert figures["n"] == 2, name
        assert isinstance(figures["unit"], str)
        for key in FIGURES:
            assert _positive(figures[key]), (name, key, figures[key])
        assert figures["min_ms"] <= figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"] <= figures["max_ms"]
        for key in [k for k in figures if k.startswith("rtf")]:
            assert _positive(figures[key]), (name, key)
    tts = result["components"]["tts_piper"]
    assert _positive(tts["audio_s"]) and _positive(tts["total_p50_ms"])
    assert "london" in result["components"]["stt_2s"]["transcript"].lower()  # real speech was transcribed
    text = capsys.readouterr().out
    assert "vad_silero" in text and "stt_5s" in text and f"wrote {out}" in text


@pytest.mark.slow
def test_idle_measures_cpu_and_memory_of_the_running_loop(virtual_audio, tmp_path, capsys):
    out = tmp_path / "idle.json"
    settings = config.load()
    settings.brain.backend = "off"  # the LLM only adds load time here
    args = _args(idle, ["--seconds", "3", "--no-server", "--out", str(out)])
    assert idle.main(args, settings) == 0
    result = json.loads(out.read_text())
    assert result["benchmark"] == "idle"
    assert 2.9 <= result["seconds"] <= 4
    assert _positive(result["cpu_percent_of_one_core"]) and _positive(result["cpu_seconds"])
    for key in ("memory_after_warmup", "memory_at_end"):
        memory = result[key]
        assert _positive(memory["rss_mb"]) and _positive(memory["uss_mb"])
        assert memory["processes"][0]["name"] == "jarvis (main process)"
    assert all(p["name"] != "pulseaudio" for p in result["memory_after_warmup"]["processes"])
    assert _positive(result["mic_blocks"])                    # the microphone really delivered audio
    assert result["events_while_idle"] == {}                 # silence: no wake word, no speech, no error
    assert set(result["pass"]) == {"cpu", "rss"} and all(isinstance(v, bool) for v in result["pass"].values())
    assert result["goals"] == {"cpu_percent_of_one_core_max": 10.0, "rss_gb_max": 2.0}
    assert "% of one core" in capsys.readouterr().out


def test_room_noise_needs_a_level_and_the_private_server():
    for argv in (["--room-noise", "-50", "--no-server"], ["--room-noise", "12"]):
        with pytest.raises(BadInput) as err:
            idle.main(_args(idle, argv), config.load())
        assert err.value.code == "bad_room_noise" and "dBFS" in err.value.message


@pytest.mark.slow
def test_in_a_rooms_steady_noise_the_wake_word_detectors_rest(virtual_audio):
    """The loop listening to pink noise at -50 dBFS through the real audio server: nothing is heard, and the
    wake word's detectors ran only while the gate learned the room (and the hold after it)."""
    from jarvis.listen.wake import GATE_HOLD_S, GATE_LEARN_FRAMES

    settings = config.load()
    settings.brain.backend = "off"
    noise = virtual_audio.play_room_noise(120, -50)
    result = idle.measure(settings, 3.0, progress=lambda line: None, noise=noise, heard="pink noise at -50 dBFS")
    noise.terminate()
    assert result["audio"].startswith("private PulseAudio: jarvis_mic fed pink noise at -50 dBFS")
    assert result["events_while_idle"] == {}
    frames = result["wake_detector_frames"]
    assert frames["given"] > 90, frames                         # the loop's start and 3 s of 32 ms frames
    assert frames["run"] <= GATE_LEARN_FRAMES + round(GATE_HOLD_S / 0.032), frames
