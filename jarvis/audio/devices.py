"""Sound devices: list them, pick one by name, check what rates it takes.

PortAudio reads the device list once when it starts; ``refresh()`` restarts it so devices plugged in (or an
audio server started) later show up. Never refresh while a stream is open. ``scan()`` lists what a fresh PortAudio
sees without touching this process's streams (the settings, while Jarvis listens).
"""
from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading

from jarvis.errors import BadInput, NotAvailable

log = logging.getLogger(__name__)

_NONE_FOUND = {
    "input": "No audio input device found. Connect a microphone or start your audio server "
             "(PulseAudio/PipeWire), then run: jarvis doctor",
    "output": "No audio output device found. Connect speakers or headphones or start your audio server "
              "(PulseAudio/PipeWire), then run: jarvis doctor",
}


def _sd():
    """sounddevice, or a clear error when the PortAudio library itself is missing."""
    if "sounddevice" not in sys.modules:
        _pulse_without_shared_memory()   # before PortAudio's first connection to the audio server
    try:
        import sounddevice
    except OSError as exc:  # raised at import when libportaudio cannot be loaded
        raise NotAvailable("no_portaudio", "The PortAudio library is missing, so Jarvis cannot use sound devices. "
                                           "Install it (Debian/Ubuntu: sudo apt install libportaudio2).") from exc
    return sounddevice


def refresh() -> None:
    """Restart PortAudio so it scans the devices again (closes every open stream)."""
    _restart_portaudio()


def _restart_portaudio() -> None:
    sd = _sd()
    stuck = [closer for closer in _stuck_closers if closer.is_alive()]
    _stuck_closers[:] = stuck
    if stuck:   # PortAudio would close that stream again, and wait for it for ever
        raise NotAvailable("audio_stuck", STUCK_MESSAGE)
    sd._terminate()
    _pulse_without_shared_memory()
    sd._initialize()


def _pulse_without_shared_memory() -> None:
    if not sys.platform.startswith("linux"):   # PulseAudio (and ALSA's pulse plugin) are Linux's
        return
    from jarvis import paths
    from jarvis.audio.pulse_client import use_without_shared_memory

    try:
        folder = paths.runtime_dir()
    except OSError as exc:   # nowhere to write it: libpulse goes on with the user's own settings
        log.warning("cannot write Jarvis's PulseAudio client settings (%s); shared memory stays on", exc)
        return
    use_without_shared_memory(folder)


def list_devices(refresh: bool = False) -> list[dict]:
    """Every device PortAudio sees; an empty list when there is none."""
    if refresh:
        _restart_portaudio()
    sd = _sd()
    try:
        devices = sd.query_devices()
    except sd.PortAudioError as exc:
        log.warning("PortAudio cannot list devices: %s", exc)
        return []
    default_in, default_out = _default_index("input"), _default_index("output")
    hostapis = sd.query_hostapis()
    return [{
        "index": d["index"],
        "name": d["name"],
        "hostapi": hostapis[d["hostapi"]]["name"],
        "max_input_channels": d["max_input_channels"],
        "max_output_channels": d["max_output_channels"],
        "default_samplerate": int(d["default_samplerate"]),
        "is_default_input": d["index"] == default_in,
        "is_default_output": d["index"] == default_out,
    } for d in devices]


CLOSE_TIMEOUT_S = 2.0
STUCK_MESSAGE = ("A lost sound device's stream is still closing inside the audio library, so Jarvis cannot open "
                 "sound devices again. Quit Jarvis and start it again; if it happens again, run: jarvis doctor")
_stuck_closers: list[threading.Thread] = []   # closes that did not end within CLOSE_TIMEOUT_S


def close_stream(stream, what: str) -> None:
    """Abort and close a PortAudio stream, waiting at most ``CLOSE_TIMEOUT_S``. With the audio server killed under
    it, ALSA's pulse plugin could block the abort for ever (``jarvis.audio.pulse_client`` says why and prevents it);
    a stream that still does not close is left to close on a thread of its own, and Jarvis goes on. PortAudio cannot
    be restarted until it has closed: ``refresh()`` then says so instead of waiting for ever."""
    def close() -> None:
        try:
            stream.abort()
            stream.close()
        except Exception as exc:  # a lost device may fail to close; nothing left to do
            log.debug("closing %s: %s", what, exc)

    closer = threading.Thread(target=close, name="close-stream", daemon=True)
    closer.start()
    closer.join(CLOSE_TIMEOUT_S)
    if closer.is_alive():
        _stuck_closers.append(closer)
        log.warning("%s did not close within %g s (its audio server is gone?); going on without waiting", what,
                    CLOSE_TIMEOUT_S)


def scan(timeout: float = 20.0) -> list[dict]:
    """Every device a fresh PortAudio sees, those plugged in after Jarvis started included. Listed by a child
    process (``jarvis devices --json``): refreshing PortAudio here would close the streams Jarvis listens and
    speaks on. Falls back to this process's list when the child fails."""
    frozen = getattr(sys, "frozen", False)   # a PyInstaller bundle: its executable is the jarvis command
    command = [sys.executable, "devices", "--json"] if frozen else [sys.executable, "-m", __name__]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=True)
        found = json.loads(done.stdout)
        if isinstance(found, list):
            return found
        raise ValueError(f"not a list: {done.stdout[:80]!r}")
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        log.warning("listing audio devices in a child process failed (%s); showing what Jarvis saw at start", exc)
        return list_devices()


def resolve_input(spec: str = "") -> int | None:
    """Device index for a name (case-insensitive substring, exact name preferred); None = system default."""
    return _resolve(spec, "input")


def resolve_output(spec: str = "") -> int | None:
    return _resolve(spec, "output")


def device_info(device: int | None, kind: str) -> dict:
    """PortAudio's dict for ``device`` (None = the default ``kind`` device)."""
    sd = _sd()
    return dict(sd.query_devices(device, kind=kind) if device is None else sd.query_devices(device))


def supported_rate(device: int | None, rate: int, kind: str) -> bool:
    """True when ``device`` opens for ``kind`` ("input"/"output") at ``rate`` Hz, mono or stereo."""
    return stream_channels(device, rate, kind) is not None


def stream_channels(device: int | None, rate: int, kind: str) -> int | None:
    """Fewest channels (1, else 2, else the device maximum) the device opens with at ``rate``; None if none."""
    sd = _sd()
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    try:
        most = int(device_info(device, kind)[f"max_{kind}_channels"])
    except (sd.PortAudioError, ValueError):
        return None
    for channels in dict.fromkeys(c for c in (1, 2, most) if 0 < c <= most):
        try:
            check(device=device, channels=channels, samplerate=rate)
            return channels
        except (sd.PortAudioError, ValueError):
            continue
    return None


def _default_index(kind: str) -> int:
    sd = _sd()
    try:
        return int(sd.query_devices(kind=kind)["index"])
    except (sd.PortAudioError, ValueError):
        return -1


def _resolve(spec: str, kind: str) -> int | None:
    devices = [d for d in list_devices() if d[f"max_{kind}_channels"] > 0]
    if not devices:
        raise NotAvailable("no_audio_device", _NONE_FOUND[kind])
    spec = (spec or "").strip()
    if not spec:
        if _default_index(kind) >= 0:
            return None
        log.info("no default %s device; using %s", kind, devices[0]["name"])
        return devices[0]["index"]
    wanted = spec.casefold()
    exact = [d for d in devices if d["name"].casefold() == wanted]
    partial = [d for d in devices if wanted in d["name"].casefold()]
    by_index = [d for d in devices if spec.isdigit() and d["index"] == int(spec)]
    for matches in (exact, by_index, partial):
        if matches:
            if len(matches) > 1:
                log.info("%s device %r matches %s; using the first", kind, spec, [d["name"] for d in matches])
            return matches[0]["index"]
    names = ", ".join(dict.fromkeys(d["name"] for d in devices))
    raise BadInput("unknown_device", f"No {kind} device matches '{spec}'. Available: {names}.")


if __name__ == "__main__":  # what scan() runs (from a source tree; a bundle runs `jarvis devices --json`)
    print(json.dumps(list_devices()))
