"""The PyInstaller build (installer/build.sh) produces dist/jarvis/ and the frozen app works like the source app.

The frozen app runs with a bare environment (no virtualenv on PATH, no PYTHONPATH, a throwaway HOME), as on a
machine without Python: its self-test, the tray app under Xvfb + trayer with the virtual audio server, the OS
keyring (a private GNOME Keyring), a windowed start without stdout/stderr, and the Linux tarball's installer.
Slow: about 5 minutes for the build (beside the CUDA one: tests/installer/conftest.py) and 1.6 GB of disk.
"""
from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.desktop import Desktop, screenshot_path
from tests.keyring_server import PrivateKeyring

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, frozen_builds):
    prebuilt = os.environ.get("JARVIS_TEST_BUNDLE")  # a dist/jarvis/ built from this tree (saves 4 minutes)
    if prebuilt:
        home = tmp_path_factory.mktemp("home")
        ran = subprocess.run([str(Path(prebuilt) / "jarvis"), "--self-test"], env=bare_env(home), capture_output=True,
                             text=True, timeout=600)
        return Path(prebuilt), ran.stdout
    return frozen_builds["cpu"].result()   # installer/build.sh (tests/installer/conftest.py)


def bare_env(home: Path, **extra: str) -> dict[str, str]:
    """What a user's session without Python would give the app."""
    return {**session_env(home), "JARVIS_HOME": str(home / "jarvis"), "HF_HUB_OFFLINE": "1", **extra}


def session_env(home: Path) -> dict[str, str]:
    """A login session's bare minimum: HOME, PATH and the per-user runtime folder (/run/user/<uid> on a desktop;
    without one the sound server's client library made its runtime folder in /tmp, left there after each run)."""
    runtime = home / ".run"
    runtime.mkdir(mode=0o700, exist_ok=True)
    return {"HOME": str(home), "PATH": "/usr/bin:/bin", "XDG_RUNTIME_DIR": str(runtime)}


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


def test_build_runs_the_self_test_and_every_step_passes(bundle):
    _, output = bundle
    assert "self-test: 6 of 6 steps passed" in output, output[-3000:]
    assert "in a spawned worker process" in output  # multiprocessing's spawn works in the frozen app


def test_the_frozen_self_test_sends_nothing_off_the_machine(bundle, tmp_path):
    """The no-network check (tests/privacy) on the frozen app: no connection off the machine, no name lookup.
    Without HF_HUB_OFFLINE, and with the CA bundle a desktop session has (onnxruntime's telemetry needs one)."""
    from tests.privacy import netrecord

    if netrecord.missing_tools():
        pytest.skip(f"{', '.join(netrecord.missing_tools())} not installed (scripts/setup.sh --test installs them)")
    app, _ = bundle
    env = {k: v for k, v in bare_env(tmp_path).items() if k != "HF_HUB_OFFLINE"}
    env.update({k: os.environ[k] for k in ("SSL_CERT_FILE", "SSL_CERT_DIR") if k in os.environ})
    log = tmp_path / "connections.log"
    ran = netrecord.run([str(app / "jarvis"), "--self-test"], log, env=env, capture_output=True, text=True,
                        timeout=600)
    assert ran.returncode == 0 and "self-test: 6 of 6 steps passed" in ran.stdout, ran.stdout + ran.stderr[-3000:]
    assert netrecord.off_machine(log) == [], "\n".join(map(str, netrecord.off_machine(log)))


def test_the_frozen_app_works_without_python_and_writes_only_to_the_users_folders(bundle, tmp_path):
    app, _ = bundle
    before = snapshot(app)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = bare_env(tmp_path)
    result = subprocess.run([str(app / "jarvis"), "--self-test"], env=env, cwd=cwd, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert result.stdout.count("PASS") == 6 and "FAIL" not in result.stdout
    ask = subprocess.run([str(app / "jarvis"), "ask", "what time is it"], env=env, cwd=cwd, capture_output=True,
                         text=True, timeout=120)
    assert ask.returncode == 0 and ask.stdout.startswith("It's "), ask.stdout + ask.stderr
    bad = subprocess.run([str(app / "jarvis"), "transcribe", str(tmp_path / "missing.wav")], env=env, cwd=cwd,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr
    assert snapshot(app) == before, "the frozen app wrote into its own folder"
    assert not any(cwd.iterdir()), f"the frozen app wrote into the working folder: {list(cwd.iterdir())}"
    assert (tmp_path / "jarvis" / "logs" / "jarvis.log").is_file()


def test_the_bundle_leaves_out_what_jarvis_never_loads_and_carries_the_licences(bundle):
    app, _ = bundle
    internal = app / "_internal"
    for module in ("torchaudio", "librosa", "numba", "llvmlite", "sklearn", "triton"):
        assert not any(p.name.startswith(module) for p in internal.iterdir()), f"{module} is bundled"
    for gone in ("torch/test", "torch/bin/protoc", "torch/bin/test_api", "torch/include", "PySide6/Qt/translations",
                 "libgtk-3.so.0"):
        assert not (internal / gone).exists(), f"{gone} is bundled"
    assert (internal / "torch/bin/torch_shm_manager").is_file()
    assert (internal / "PySide6/Qt/plugins/platforms/libqxcb.so").is_file()
    assert "GNU GENERAL PUBLIC LICENSE" in (app / "licenses" / "LICENSE").read_text()
    table = (app / "licenses" / "THIRD-PARTY.md").read_text()
    for row in ("| piper-tts |", "| torch |", "| PySide6", "| faster-whisper |", "| pvporcupine |", "| Python |"):
        assert row in table, row
    assert "GPL-3.0-or-later" in table.split("| piper-tts |")[1].splitlines()[0]
    assert (app / "licenses" / "piper-tts" / "COPYING").is_file()
    assert any((app / "licenses").glob("PySide6*/LGPL-3.txt"))


def test_the_frozen_app_keeps_api_keys_in_the_os_keyring(bundle, tmp_path):
    app, _ = bundle
    with PrivateKeyring() as keyring_bus:
        env = bare_env(tmp_path, **keyring_bus.client_env)
        stored = subprocess.run([str(app / "jarvis"), "secret", "set", "llm_api_key"], input="sk-frozen-test\n",
                                env=env, capture_output=True, text=True, timeout=120)
        assert stored.returncode == 0 and "SecretService" in stored.stdout, stored.stdout + stored.stderr
        status = subprocess.run([str(app / "jarvis"), "secret", "status"], env=env, capture_output=True, text=True,
                                timeout=120)
        assert status.returncode == 0 and "llm_api_key: set" in status.stdout, status.stdout + status.stderr
    assert "sk-frozen-test" not in "".join(p.read_text(errors="ignore") for p in (tmp_path / "jarvis").rglob("*")
                                           if p.is_file())


def test_a_windowed_start_without_stdout_or_stderr_still_answers(bundle, tmp_path):
    """Closed descriptors 1 and 2 give the frozen app what a windowed build gets: no std streams."""
    app, _ = bundle
    script = 'exec "$0" "$@" >&- 2>&-'
    ran = subprocess.run(["sh", "-c", script, str(app / "jarvis"), "ask", "what time is it"], env=bare_env(tmp_path),
                         timeout=120)
    assert ran.returncode == 0
    assert "It's " in (tmp_path / "jarvis" / "logs" / "console.log").read_text()


def test_the_frozen_tray_app_docks_its_icon_and_reaches_listening(bundle, tmp_path, virtual_audio):
    import json

    app, _ = bundle
    home = tmp_path / "jarvis"
    (home / "config").mkdir(parents=True)
    (home / "config" / "settings.json").write_text(json.dumps({
        "schema_version": 2, "audio": {"input_device": "jarvis_mic", "output_device": "jarvis_speaker"},
        "tts": {"engines": ["piper", "system"]}, "ui": {"first_run_done": True}}))
    desktop = Desktop()
    keyring_bus = PrivateKeyring()
    env = bare_env(tmp_path, DISPLAY=desktop.display, QT_QPA_PLATFORM="xcb", **virtual_audio.env,
                   **keyring_bus.client_env)
    try:
        desktop.run_tray_app([str(app / "jarvis")], env, home / "logs" / "jarvis.log",
                             screenshot=screenshot_path("frozen-tray"))
    finally:
        keyring_bus.stop()
        desktop.stop()


def test_the_linux_tarball_installs_for_the_user_and_uninstalls_keeping_their_data(bundle, tmp_path):
    app, _ = bundle
    packed = subprocess.run([str(ROOT / "installer" / "linux" / "package.sh"), str(app.parent), str(tmp_path)],
                            capture_output=True, text=True, timeout=900)
    assert packed.returncode == 0, packed.stdout + packed.stderr
    tarball = next(tmp_path.glob("jarvis-*-linux-*.tar.gz"))
    with tarfile.open(tarball) as tar:
        tar.extractall(tmp_path / "unpacked", filter="tar")
    folder = next((tmp_path / "unpacked").iterdir())
    home = tmp_path / "home"
    home.mkdir()
    env = session_env(home)
    installed = subprocess.run([str(folder / "install.sh"), "--autostart"], env=env, capture_output=True, text=True,
                               timeout=600)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    entry = (home / ".local/share/applications/jarvis.desktop").read_text()
    exec_line = next(line for line in entry.splitlines() if line.startswith("Exec="))
    assert Path(exec_line[5:]) == home / ".local/opt/jarvis/jarvis" and Path(exec_line[5:]).is_file()
    assert (home / ".config/autostart/jarvis.desktop").is_file()
    launcher = home / ".local/bin/jarvis"
    answer = subprocess.run([str(launcher), "ask", "what time is it"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert answer.returncode == 0 and answer.stdout.startswith("It's "), answer.stdout + answer.stderr
    user_logs = [p for p in home.rglob("jarvis.log")]
    assert user_logs, "the installed app logged nothing in the user's folders"
    removed = subprocess.run([str(folder / "install.sh"), "--uninstall"], env=env, capture_output=True, text=True,
                             timeout=120)
    assert removed.returncode == 0, removed.stderr
    assert not (home / ".local/opt/jarvis").exists() and not launcher.exists()
    assert not (home / ".local/share/applications/jarvis.desktop").exists()
    assert all(p.exists() for p in user_logs), "uninstalling removed the user's data"
    wrong = subprocess.run([str(folder / "install.sh"), "--bogus"], env=env, capture_output=True, text=True)
    assert wrong.returncode == 2 and wrong.stderr.startswith("usage: ")


def test_the_frozen_app_serves_speech_and_transcribes_it_back(bundle, tmp_path):
    """`jarvis serve` in the bundle (uvicorn, FastAPI, python-multipart and PyAV frozen with it): Piper's speech
    over the OpenAI API, then Whisper hears it back through the upload endpoint."""
    import json
    import socket
    import time
    import urllib.request

    app, _ = bundle
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = "frozen-test-token-" + "x" * 20
    env = bare_env(tmp_path, JARVIS_API_TOKEN=token)
    server = subprocess.Popen([str(app / "jarvis"), "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    base, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"}
    try:
        deadline = time.monotonic() + 240
        while True:
            assert server.poll() is None, server.stdout.read()[-3000:]
            try:
                with urllib.request.urlopen(urllib.request.Request(base + "/health", headers=auth), timeout=5):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the frozen server did not start"
                time.sleep(1)
        speech = urllib.request.Request(base + "/v1/audio/speech", method="POST", headers={
            **auth, "Content-Type": "application/json"}, data=json.dumps(
            {"model": "tts-1", "voice": "jarvis", "input": "What time is it?", "response_format": "wav"}).encode())
        with urllib.request.urlopen(speech, timeout=120) as response:
            assert response.headers["x-jarvis-engine"] == "piper"
            wav = response.read()
        boundary = "frozenboundary"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"q.wav\"\r\n\r\n").encode()
        body += wav + f"\r\n--{boundary}--\r\n".encode()
        upload = urllib.request.Request(base + "/v1/audio/transcriptions", method="POST", data=body, headers={
            **auth, "Content-Type": f"multipart/form-data; boundary={boundary}"})
        with urllib.request.urlopen(upload, timeout=120) as response:
            assert "time" in json.loads(response.read())["text"].lower()
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
