"""Private by default: nothing leaves the machine unless the user points Jarvis at a server.

``switch_off_telemetry`` runs when the ``jarvis`` package is first imported, before any library that could report
home is loaded (every entry point imports ``jarvis`` first: the CLI, the tray app, the frozen bundle, the Whisper
worker process, the benchmarks). It is not a preference: an always-on microphone app sends nothing on its own.

- onnxruntime (Piper, Silero VAD) ships Microsoft's 1DS telemetry: by default it looks up
  ``mobile.events.data.microsoft.com`` and keeps a device id and an event database in
  ``~/.cache/Microsoft/DeveloperTools/.onnxruntime/``. ``ORT_DISABLE_TELEMETRY=1`` stops both (no lookup, no file),
  read when its library loads; a library loaded earlier is told through its API as well.
- huggingface_hub (CSM, only when the user allows a download) reports usage unless ``HF_HUB_DISABLE_TELEMETRY``.
- ``DO_NOT_TRACK=1``: the cross-tool convention other libraries honour.

``outbound(settings)`` says what could leave the machine with given settings (``jarvis doctor``'s privacy section).
``tests/privacy/test_no_network.py`` proves it: Jarvis's commands in a network namespace with every connection
recorded.
"""
from __future__ import annotations

import ipaddress
import os
import sys
from urllib.parse import urlparse

TELEMETRY_OFF = {
    "ORT_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
}


def switch_off_telemetry() -> None:
    """Set the libraries' opt-outs in this process's environment (children inherit it)."""
    os.environ.update(TELEMETRY_OFF)
    ort = sys.modules.get("onnxruntime")
    if ort is not None and hasattr(ort, "disable_telemetry_events"):
        ort.disable_telemetry_events()


def telemetry_off() -> bool:
    return all(os.environ.get(k) == v for k, v in TELEMETRY_OFF.items())


def is_loopback(url: str) -> bool:
    """True when ``url``'s host is this machine (localhost, 127.0.0.0/8, ::1)."""
    host = (urlparse(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def outbound(settings) -> list[dict]:
    """What the current settings send off this machine: ``{"what", "to", "when"}`` per destination.
    Empty with the defaults."""
    out = []
    brain = settings.brain
    if brain.backend == "openai" and not is_loopback(brain.base_url):
        out.append({"what": "your questions (transcripts) and the conversation so far", "to": brain.base_url,
                    "when": "each question no offline skill answers (brain.backend = openai)"})
    engines = list(settings.tts.engines)
    if "openai" in engines:
        url = settings.tts.cloud.openai_base_url or "https://api.openai.com/v1"
        if not is_loopback(url):
            out.append({"what": "the text of Jarvis's replies", "to": url,
                        "when": _when_engine("openai", engines)})
    if "edge" in engines:
        out.append({"what": "the text of Jarvis's replies", "to": "Microsoft Edge's online text-to-speech service",
                    "when": _when_engine("edge", engines)})
    remote_stt = settings.listen.stt_remote_url.strip()
    if remote_stt and not is_loopback(remote_stt):
        out.append({"what": "the audio of each command (after the wake word)", "to": remote_stt,
                    "when": "each command, while that server answers (listen.stt_remote_url)"})
    serve = settings.serve
    if serve.enabled and not is_loopback(f"http://{serve.host}:{serve.port}"):
        out.append({"what": "speech made and heard by Jarvis's models, for whoever holds the server's token",
                    "to": f"apps on other machines reaching {serve.host}:{serve.port}",
                    "when": "each request while the speech server runs (serve.enabled, serve.host)"})
    if settings.tts.csm.allow_download:
        out.append({"what": "a download request (no audio, no text)", "to": "huggingface.co",
                    "when": "once, if the CSM voice's weights are not on this machine (tts.csm.allow_download)"})
    return out


def _when_engine(name: str, engines: list[str]) -> str:
    before = engines[:engines.index(name)]
    if not before:
        return f"every reply ({name} is first in tts.engines)"
    return f"replies that {', '.join(before)} could not speak (tts.engines order)"
