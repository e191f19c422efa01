"""Shared fixtures: a fresh JARVIS_HOME per test, one private PulseAudio for the session."""
from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

import jarvis  # noqa: F401 - the suite, too, switches library telemetry off before any test module loads a library

# Nothing comes from a model hub in tests: the hub is offline and its cache is private and empty
# (set before anything imports huggingface_hub, which reads these once).
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="jarvis-test-hf-")
atexit.register(shutil.rmtree, os.environ["HF_HOME"], True)
# Nor does any test reach this machine's own sound server (on a desktop it would play through the speakers): until
# the ``virtual_audio`` fixture points them at its private server, PulseAudio clients (PortAudio's ALSA plugin in
# this process and in children) look for a server that is not there, and keep their runtime files and cookie in a
# temporary folder; without this the first device scan wrote a runtime link into ~/.config/pulse.
_NO_SOUND_SERVER = tempfile.mkdtemp(prefix="jarvis-test-pulse-")
atexit.register(shutil.rmtree, _NO_SOUND_SERVER, True)
with open(os.path.join(_NO_SOUND_SERVER, "client.conf"), "w") as _conf:
    _conf.write("autospawn = no\n")
os.environ.update(PULSE_SERVER=f"unix:{_NO_SOUND_SERVER}/none", PULSE_RUNTIME_PATH=f"{_NO_SOUND_SERVER}/runtime",
                  PULSE_COOKIE=f"{_NO_SOUND_SERVER}/cookie", PULSE_CLIENTCONFIG=f"{_NO_SOUND_SERVER}/client.conf")
# Nor do they write to the user's own Jarvis folders: each test gets its own (``jarvis_home``), and what runs outside a
# test (a module's or the session's fixtures: an engine made once for a module caches its voices) gets this one. Without
# it such a fixture saw no JARVIS_HOME and wrote into ~/.cache/jarvis.
os.environ["JARVIS_HOME"] = tempfile.mkdtemp(prefix="jarvis-test-home-")
atexit.register(shutil.rmtree, os.environ["JARVIS_HOME"], True)


@pytest.fixture(autouse=True)
def jarvis_home(tmp_path_factory, monkeypatch):
    """Every test gets its own empty Jarvis folder (settings, logs, voices)."""
    home = tmp_path_factory.mktemp("jarvis_home")
    monkeypatch.setenv("JARVIS_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def cublas_site(tmp_path_factory) -> Path:
    """NVIDIA's real cuBLAS 12 wheel (requirements-cuda.txt's pin) installed into a temporary site-packages folder,
    as .venv-cuda holds it: what Whisper on a GPU needs from CUDA 12. The folder is the user site-packages of a
    temporary user base (PYTHONUSERBASE: ``site.parents[2]``), so that tools which treat site-packages apart, such as
    PyInstaller, see it as one. scripts/setup.sh --test keeps the wheel in Jarvis's wheel cache. No GPU here: the
    libraries load, CUDA's driver calls are never made."""
    pin = next(line.split("==")[1].strip() for line in (Path(__file__).parents[1] / "requirements-cuda.txt")
               .read_text().splitlines() if line.startswith("nvidia-cublas-cu12=="))
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jarvis" / "wheels"
    wheels = sorted(cache.glob(f"nvidia_cublas_cu12-{pin}-*.whl"))
    assert wheels, f"no nvidia-cublas-cu12 {pin} wheel in {cache}: run scripts/setup.sh --test"
    base = tmp_path_factory.mktemp("cublas-userbase")
    site = Path(sysconfig.get_path("purelib", f"{os.name}_user", vars={"userbase": str(base)}))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                    "--no-index", "--no-compile", "--target", str(site), str(wheels[-1])], check=True, timeout=300)
    return site


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


@pytest.fixture(scope="module")
def secret_service():
    """A private, unlocked GNOME Keyring on its own D-Bus session bus, used by ``keyring`` in this process.

    Module-scoped: the environment and keyring backend are restored after the module. Child processes
    reach it with ``env=secret_service.subprocess_env()``. The user's own keyring is never touched.
    """
    import keyring
    from tests.keyring_server import PrivateKeyring

    try:
        server = PrivateKeyring()
    except FileNotFoundError as exc:
        pytest.fail(f"{exc} (scripts/setup.sh --test installs gnome-keyring and dbus-daemon)")
    previous = keyring.get_keyring()
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.delenv("PYTHON_KEYRING_BACKEND", raising=False)
            for name, value in server.client_env.items():
                mp.setenv(name, value)
            _forget_viable_keyrings()
            keyring.core.init_backend()
            if type(keyring.get_keyring()).__module__ != "keyring.backends.SecretService":
                pytest.fail(f"keyring picked {keyring.get_keyring()!r}, not the private Secret Service")
            yield server
    finally:
        server.stop()
        _forget_viable_keyrings()
        keyring.set_keyring(previous)


def _forget_viable_keyrings() -> None:
    """keyring caches which backends were viable at its first use; make it look again."""
    import contextlib

    import keyring.backend
    with contextlib.suppress(KeyError):  # nothing cached yet
        keyring.backend.get_all_keyring.reset()
