"""`jarvis doctor` on this machine: real packages, real keyring, no GPU, no sound devices."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jarvis import doctor

SECTIONS = ("Versions", "Audio devices", "Compute", "Models", "Keyring", "TTS engines (fallback order)", "Privacy",
            "Speakers", "Settings", "Folders", "Warnings")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("JARVIS_HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def report(home):
    return doctor.collect()


def test_collect_is_json_serialisable(report):
    assert json.loads(json.dumps(report)) == report
    assert list(report) == ["versions", "audio", "compute", "models", "keyring", "folders", "privacy", "speakers",
                            "settings", "tts", "warnings"]
    assert report["speakers"] == {"enrolled": 0, "damaged": []}


def test_damaged_speaker_profiles_are_reported(home):
    folder = home / "data" / "speakers"
    folder.mkdir(parents=True)
    damaged = folder / "ann-0123456789.json"
    damaged.write_text('{"schema_version": 1, "name": "Ann", "embeddings": []}')
    report = doctor.collect()
    assert report["speakers"]["enrolled"] == 0
    [problem] = report["speakers"]["damaged"]
    assert str(damaged) in problem and "no embeddings" in problem and "jarvis speakers remove" in problem
    assert problem in report["warnings"]
    assert f"  DAMAGED - {problem}" in doctor.format_text(report).splitlines()
    assert damaged.read_text() == '{"schema_version": 1, "name": "Ann", "embeddings": []}'


def test_finds_the_bundled_models_without_loading_them(report):
    models = report["models"]
    assert set(models) == {"faster-whisper tiny.en", "silero-vad", "porcupine 'jarvis'", "resemblyzer",
                           "piper voice en_US-joe-medium", "libespeak-ng", "CSM voice (tts.csm.model)",
                           "LLM (brain.local_model)", "echo cancellation", "end of turn (listen.end_of_turn)",
                           "speech-to-text runs on", "models are placed (gpu.placement)"}
    assert models["echo cancellation"]["path"].startswith("livekit ")
    assert models["speech-to-text runs on"]["path"] == "cpu (int8); listen.stt_device is auto"  # no GPU here
    assert models["end of turn (listen.end_of_turn)"]["path"].startswith("Smart Turn v3.2 (pipecat-ai ")
    csm = models.pop("CSM voice (tts.csm.model)")  # the one model that never comes from PyPI
    assert csm["found"] is False and "jarvis say --engine csm --download" in csm["reason"]
    assert any("CSM voice" in w for w in report["warnings"])
    for name, model in models.items():
        assert model["found"] is True, (name, model)
        assert model["reason"] is None
    for name in ("faster-whisper tiny.en", "silero-vad", "porcupine 'jarvis'", "resemblyzer",
                 "piper voice en_US-joe-medium"):
        assert Path(models[name]["path"]).is_file(), name
    assert models["resemblyzer"]["path"].endswith("pretrained.pt")
    assert models["piper voice en_US-joe-medium"]["path"].endswith("en_US-joe-medium.onnx")
    assert "espeak-ng" in models["libespeak-ng"]["path"]


def _doctor_without_a_gpu(**env: str) -> list[str]:
    """`jarvis doctor`'s lines on a machine without an NVIDIA GPU (here; on a GPU machine, its GPUs hidden)."""
    base = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    out = subprocess.run([sys.executable, "-m", "jarvis", "doctor"], capture_output=True, text=True, timeout=300,
                         env={**base, "CUDA_VISIBLE_DEVICES": "", **env})
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.splitlines()


def test_it_names_the_cublas_whisper_would_get_and_says_it_is_unused_without_a_gpu(home, cublas_site):
    """The CUDA build (NVIDIA's cuBLAS wheel on the path) on a machine without an NVIDIA GPU."""
    cublas = cublas_site / "nvidia" / "cublas" / "lib" / "libcublas.so.12"
    assert (f"  speech-to-text runs on: found at cpu (int8); listen.stt_device is auto; cuBLAS 12 from {cublas}, "
            "used only with an NVIDIA GPU") in _doctor_without_a_gpu(PYTHONPATH=str(cublas_site))


def test_whisper_set_to_cuda_without_a_gpu_is_one_line_with_the_fix(home):
    from jarvis import config

    settings = config.load()
    settings.listen.stt_device = "cuda"
    config.save(settings)
    problem = "listen.stt_device is cuda, but CTranslate2 sees no NVIDIA GPU here: set it to auto or cpu"
    lines = _doctor_without_a_gpu()
    assert f"  speech-to-text runs on: MISSING - {problem}" in lines
    assert f"  - speech-to-text runs on: {problem}" in lines   # among the warnings


def test_a_gpu_without_cublas_12_is_one_line_with_the_fix(home, monkeypatch):
    """A GPU CTranslate2 sees but no cuBLAS 12 on this machine's path (none here): the GPU count is simulated, since
    no GPU can be; the cuBLAS search is the real one. Left on auto, Whisper falls back to the CPU and doctor says why;
    set to cuda by hand, it says how to mend it."""
    from jarvis import config
    from jarvis.listen import stt

    monkeypatch.setattr(stt, "cuda_gpus", lambda: 1)
    auto = doctor.collect()["models"]["speech-to-text runs on"]
    assert auto["found"] is False and auto["reason"] == f"{stt.NO_CUBLAS} (cpu (int8); listen.stt_device is auto)"
    settings = config.load()
    settings.listen.stt_device = "cuda"
    config.save(settings)
    by_hand = doctor.collect()["models"]["speech-to-text runs on"]
    assert by_hand["found"] is False and by_hand["reason"] == (
        "listen.stt_device is cuda, but CTranslate2 cannot load cuBLAS 12: pip install nvidia-cublas-cu12, use the "
        "CUDA build, or set it to auto")


def test_echo_cancellation_off_or_missing_is_reported(monkeypatch):
    import sys

    from jarvis import config, doctor
    settings = config.Settings()
    settings.audio.echo_cancellation = False
    config.save(settings)
    assert doctor._echo_canceller()["path"].startswith("off (audio.echo_cancellation)")
    settings.audio.echo_cancellation = True
    config.save(settings)
    monkeypatch.setitem(sys.modules, "livekit", None)  # the package missing
    missing = doctor._echo_canceller()
    assert missing["found"] is False and "listens without it" in missing["reason"]
    assert any("echo cancellation" in w for w in doctor._warnings({**doctor.collect(), "models": {
        "echo cancellation": missing}}))


def test_the_privacy_section_says_what_could_leave_the_machine(home):
    from jarvis import config
    settings = config.Settings()
    quiet = doctor.collect(settings=settings)["privacy"]
    assert quiet == {"telemetry_off": True, "outbound": []}
    assert "nothing leaves this machine with these settings" in doctor.format_text(doctor.collect(settings=settings))

    settings.brain.backend = "openai"   # its default server is Ollama on localhost: still this machine
    assert doctor.collect(settings=settings)["privacy"]["outbound"] == []
    settings.brain.base_url = "https://llm.example.com/v1"
    settings.tts.engines = ["piper", "edge"]
    text = doctor.format_text(doctor.collect(settings=settings))
    assert "sends your questions (transcripts) and the conversation so far to https://llm.example.com/v1" in text
    assert "Microsoft Edge's online text-to-speech service: replies that piper could not speak" in text

    settings = config.Settings()
    settings.serve.enabled = True                      # on loopback: still this machine
    settings.listen.stt_remote_url = "http://127.0.0.1:8844/v1"
    assert doctor.collect(settings=settings)["privacy"]["outbound"] == []
    settings.serve.host, settings.listen.stt_remote_url = "0.0.0.0", "http://gpu-box:8844/v1"
    text = doctor.format_text(doctor.collect(settings=settings))
    assert "the audio of each command (after the wake word) to http://gpu-box:8844/v1" in text
    assert "apps on other machines reaching 0.0.0.0:8844" in text


def test_csm_weights_in_a_folder_are_found(tmp_path, monkeypatch):
    from jarvis import config, doctor
    settings = config.Settings()
    settings.tts.csm.model = str(tmp_path)
    config.save(settings)
    assert doctor._csm()["found"] is False and str(tmp_path) in doctor._csm()["reason"]
    (tmp_path / "config.json").write_text("{}")
    assert doctor._csm() == {"found": True, "path": str(tmp_path / "config.json"), "reason": None}


def test_reports_the_keyring_backend(report):
    import keyring
    backend = type(keyring.get_keyring())
    kr = report["keyring"]
    assert kr["backend"] == f"{backend.__module__}.{backend.__qualname__}"
    if backend.__module__ == "keyring.backends.fail":   # this machine has no Secret Service
        assert kr["usable"] is False
        assert kr["note"] == doctor.FAIL_KEYRING
        assert doctor.FAIL_KEYRING in report["warnings"]
    else:
        assert kr["usable"] is True


def test_versions_compute_and_folders(report, home):
    versions = report["versions"]
    import numpy
    import torch
    assert versions["torch"] == torch.__version__
    assert versions["numpy"] == numpy.__version__
    assert versions["realtimestt"] != "not installed"
    assert set(doctor.DISTRIBUTIONS) <= set(versions)
    assert report["compute"]["torch"] == torch.__version__
    from jarvis.devices import gpu_memory
    assert [g["name"] for g in report["compute"]["gpus"]] == [g["name"] for g in gpu_memory()]
    assert report["folders"]["JARVIS_HOME"] == str(home)
    assert report["folders"]["data"] == str(home.resolve() / "data")
    assert report["tts"] is None


def test_audio_devices_are_listed_or_reported_empty(report):
    audio = report["audio"]
    assert "error" not in audio
    assert isinstance(audio["devices"], list)
    if not audio["devices"]:
        assert "no audio devices found" in report["warnings"]


def test_a_failing_audio_probe_is_recorded_not_raised(home, monkeypatch):
    import jarvis.audio.devices

    def broken():
        raise OSError("PortAudio library not found")

    monkeypatch.setattr(jarvis.audio.devices, "list_devices", broken)
    report = doctor.collect()
    assert report["audio"] == {"error": "OSError: PortAudio library not found"}
    assert "audio devices: OSError: PortAudio library not found" in report["warnings"]
    assert "error: OSError: PortAudio library not found" in doctor.format_text(report)


def test_tts_engine_statuses_from_the_caller(home):
    engines = [{"name": "piper", "healthy": True, "reason": ""},
               {"name": "system", "healthy": False, "reason": "no espeak-ng"}]
    report = doctor.collect(tts=engines)
    assert report["tts"] == engines
    text = doctor.format_text(report)
    assert "  1. piper: ok" in text
    assert "  2. system: DOWN - no espeak-ng" in text
    assert any("system is down (no espeak-ng)" in w for w in report["warnings"])


def test_format_text_mentions_each_section(report):
    text = doctor.format_text(report)
    for section in SECTIONS:
        assert f"\n{section}\n" in f"\n{text}\n", section
    assert "faster-whisper tiny.en: found at " in text
    gpus = report["compute"]["gpus"]
    assert "no NVIDIA GPU" in text if not gpus else f"GPU {gpus[0]['index']} {gpus[0]['name']}: " in text
    assert f"torch: {report['versions']['torch']}" in text
    assert "TTS engines (fallback order)\n  not checked" in text


@pytest.mark.parametrize("torch, torchaudio, bad", [
    ("2.5.1+cu121", "2.5.1+cu121", False),
    ("2.5.1+cu121", "2.5.1", False),
    ("2.5.1+cu121", "2.4.0+cu121", True),
    ("2.5.1", "not installed", False),
])
def test_torchaudio_mismatch(torch, torchaudio, bad):
    warning = doctor.torchaudio_mismatch(torch, torchaudio)
    assert (warning is not None) == bad
    if bad:
        assert warning.startswith(f"torchaudio {torchaudio} does not match torch {torch}")


def test_a_missing_model_says_why(home, monkeypatch, tmp_path):
    empty = tmp_path / "resemblyzer"
    empty.mkdir()
    monkeypatch.setattr(doctor, "_package_dir", lambda name: empty if name == "resemblyzer" else None)
    report = doctor.collect()
    assert report["models"]["resemblyzer"] == {
        "found": False, "path": str(empty / "pretrained.pt"), "reason": f"pretrained.pt missing from {empty}"}
    assert report["models"]["silero-vad"] == {
        "found": False, "path": None, "reason": "package silero-vad is not installed"}
    assert f"resemblyzer: MISSING - pretrained.pt missing from {empty}" in doctor.format_text(report)


def test_a_missing_end_of_turn_model_is_a_warning_with_the_fix(home, monkeypatch):
    from jarvis.listen import end_of_turn

    monkeypatch.setattr(end_of_turn, "MODEL_FILE", "pipecat/audio/turn/smart_turn/data/nowhere.onnx")
    report = doctor.collect()
    check = report["models"]["end of turn (listen.end_of_turn)"]
    assert check["found"] is False and "listen.end_of_turn" in check["reason"]
    assert any(w.startswith("end of turn (listen.end_of_turn): ") for w in report["warnings"])


def test_the_doctor_says_where_each_model_goes(home, monkeypatch):
    from jarvis import placement
    from jarvis.placement import GIB, Gpu

    line = doctor._placement()["path"]
    assert line == "csm on cpu (float32), whisper on cpu (int8), speaker encoder on cpu (float32)"   # no GPU here
    # A described GPU (none here): CSM in bfloat16 on it, and what does not fit is said.
    monkeypatch.setattr(placement, "gpus_here", lambda: [Gpu(0, "Described L4", 6 * GIB, 5 * GIB, (8, 9))])
    line = doctor._placement()["path"]
    assert line.startswith("csm on cpu (float32), whisper on cuda:0 (float16)") and "fits on no GPU" in line
