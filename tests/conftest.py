"""Shared fixtures: a fresh JARVIS_HOME per test, one private PulseAudio for the session."""
from __future__ import annotations

import shutil

import pytest


@pytest.fixture(autouse=True)
def jarvis_home(tmp_path_factory, monkeypatch):
    """Every test gets its own empty Jarvis folder (settings, logs, voices)."""
    home = tmp_path_factory.mktemp("jarvis_home")
    monkeypatch.setenv("JARVIS_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def virtual_audio():
    """A running private PulseAudio (virtual mic ``jarvis_mic``, speaker ``jarvis_speaker``), applied to this process.

    Child processes reach it with ``env=virtual_audio.subprocess_env()``.
    """
    if shutil.which("pulseaudio") is None:
        pytest.skip("pulseaudio is not installed (Debian: apt-get install pulseaudio pulseaudio-utils "
                    "libasound2-plugins)")
    from jarvis.audio import devices
    from tests.audio_server import VirtualAudio

    audio = VirtualAudio()
    with pytest.MonkeyPatch.context() as mp:
        for name, value in audio.env.items():
            mp.setenv(name, value)
        devices.refresh()  # PortAudio scanned the devices at import, before the server existed
        try:
            yield audio
        finally:
            audio.stop()
    devices.refresh()
