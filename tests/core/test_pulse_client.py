"""Jarvis's PulseAudio client settings: the user's own, read as libpulse would, with shared memory off; and a real
libpulse (through PortAudio's ALSA plugin) that uses them."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from jarvis.audio import pulse_client
from jarvis.audio.pulse_client import HEADER, client_conf, use_without_shared_memory, users_file


@pytest.fixture
def no_global_file(monkeypatch, tmp_path):
    monkeypatch.setattr(pulse_client, "GLOBAL_FILE", tmp_path / "etc-pulse-client.conf")


def test_the_users_file_is_found_where_libpulse_looks_first(tmp_path, no_global_file):
    home = tmp_path / "home"
    assert users_file({}, home) is None
    pulse_client.GLOBAL_FILE.write_text("autospawn = no\n")
    assert users_file({}, home) == pulse_client.GLOBAL_FILE
    (home / ".config" / "pulse").mkdir(parents=True)
    (home / ".config" / "pulse" / "client.conf").write_text("")
    assert users_file({}, home) == home / ".config" / "pulse" / "client.conf"
    (home / ".pulse").mkdir()
    (home / ".pulse" / "client.conf").write_text("")
    assert users_file({}, home) == home / ".pulse" / "client.conf"
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "client.conf").write_text("")
    assert users_file({"PULSE_CONFIG_PATH": str(tmp_path / "cfg")}, home) == tmp_path / "cfg" / "client.conf"
    named = tmp_path / "named.conf"   # named by the variable: libpulse reads only it, even when it is missing
    assert users_file({"PULSE_CLIENTCONFIG": str(named), "PULSE_CONFIG_PATH": str(tmp_path / "cfg")}, home) == named


def test_the_settings_include_the_users_file_and_its_folder_in_order_then_turn_shared_memory_off(tmp_path):
    user = tmp_path / "client.conf"
    user.write_text("default-server = unix:/somewhere\n")
    extra = tmp_path / "client.conf.d"
    extra.mkdir()
    for name in ("50-b.conf", "10-a.conf", "notes.txt"):
        (extra / name).write_text("")
    assert client_conf(user).splitlines() == [HEADER, f".include {user}", f".include {extra / '10-a.conf'}",
                                              f".include {extra / '50-b.conf'}", "enable-shm = no"]
    assert client_conf(None).splitlines() == [HEADER, "enable-shm = no"]
    assert client_conf(tmp_path / "missing.conf").splitlines() == [HEADER, "enable-shm = no"]


def test_a_child_of_jarvis_keeps_the_settings_it_was_given_without_including_them_in_themselves(tmp_path):
    environ = {"PULSE_CLIENTCONFIG": str(tmp_path / "user.conf")}
    (tmp_path / "user.conf").write_text("autospawn = no\n")
    (tmp_path / "parent").mkdir()
    parent = use_without_shared_memory(tmp_path / "parent", environ)
    assert environ["PULSE_CLIENTCONFIG"] == str(parent)
    (tmp_path / "child").mkdir()
    child = use_without_shared_memory(tmp_path / "child", environ)
    assert child.read_text() == parent.read_text() == client_conf(tmp_path / "user.conf")
    assert ".include" in parent.read_text() and str(parent) not in parent.read_text()
    again = child.stat().st_mtime_ns
    assert use_without_shared_memory(tmp_path / "child", environ) == child and child.stat().st_mtime_ns == again


def test_an_unwritable_folder_changes_nothing(tmp_path):
    environ = {"PULSE_CLIENTCONFIG": "/keep/this.conf"}
    (tmp_path / "a-file").write_text("")
    assert use_without_shared_memory(tmp_path / "a-file" / "folder", environ) is None
    assert environ == {"PULSE_CLIENTCONFIG": "/keep/this.conf"}


_OPEN_THE_MIC = """
from jarvis.audio import devices
sd = devices._sd()
stream = sd.InputStream(device=devices.resolve_input("jarvis_mic"), samplerate=16000, channels=1)
stream.start(); stream.stop(); stream.close()
print("opened")
"""


@pytest.mark.e2e
def test_jarvis_reaches_the_audio_server_without_shared_memory_and_with_the_users_settings(virtual_audio, tmp_path):
    """libpulse's own debug log (PULSE_LOG=4) says what it negotiated. The server is named only in the user's file
    (no PULSE_SERVER), so the connection proves that file was read through Jarvis's."""
    user = tmp_path / "client.conf"
    user.write_text(f"autospawn = no\ndefault-server = {virtual_audio.env['PULSE_SERVER']}\n")
    env = {**virtual_audio.subprocess_env(), "PULSE_CLIENTCONFIG": str(user), "PULSE_LOG": "4",
           "JARVIS_HOME": str(tmp_path / "home")}
    env.pop("PULSE_SERVER")
    done = subprocess.run([sys.executable, "-c", _OPEN_THE_MIC], env=env, capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2], timeout=60)
    assert done.stdout.strip() == "opened", done.stderr[-2000:]
    negotiated = [line for line in done.stderr.splitlines() if line.startswith("Negotiated SHM:")]
    assert negotiated and set(negotiated) == {"Negotiated SHM: no"}, done.stderr[-2000:]


def test_the_settings_go_to_the_runtime_folder_not_among_stored_data(monkeypatch, tmp_path, jarvis_home):
    from jarvis import paths

    assert paths.runtime_dir() == jarvis_home / "run"
    monkeypatch.delenv("JARVIS_HOME")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "xdg"))
    assert paths.runtime_dir() == tmp_path / "xdg" / "jarvis" and (tmp_path / "xdg" / "jarvis").is_dir()
