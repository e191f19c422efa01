"""Jarvis's folders are private (0700), its log 0600, and a write cut off in the middle leaves nothing behind
after the next start: the real `jarvis` CLI in a subprocess, under a permissive umask (022)."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jarvis import storage

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def run_jarvis(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jarvis", *args], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, JARVIS_HOME=str(home)), timeout=120,
                          preexec_fn=lambda: os.umask(0o022))


def test_folders_are_0700_and_the_log_0600_even_when_an_older_version_made_them_open(tmp_path):
    home = tmp_path / "jarvis"
    (home / "data" / "speakers").mkdir(parents=True, mode=0o755)   # as an older Jarvis left them
    (home / "logs").mkdir(mode=0o755)
    (home / "logs" / "jarvis.log").write_text("2026-12-01 old line\n")
    (home / "logs" / "jarvis.log").chmod(0o644)
    ran = run_jarvis(home, "speakers", "list")
    assert ran.returncode == 0, ran.stderr
    for folder in ("config", "data", "logs", "data/speakers"):
        assert mode(home / folder) == 0o700, folder
    assert mode(home / "logs" / "jarvis.log") == 0o600
    assert (home / "logs" / "jarvis.log").read_text().startswith("2026-12-01 old line\n")


def test_a_write_cut_off_leaves_only_its_temp_file_which_the_next_start_removes(tmp_path):
    home = tmp_path / "jarvis"
    config = home / "config"
    config.mkdir(parents=True)
    settings = config / "settings.json"
    settings.write_text('{"schema_version": 2, "listen": {"follow_up_s": 3.0}}\n')
    before = settings.read_bytes()
    # A write killed before os.replace: exactly what atomic_write_bytes leaves (its mkstemp name).
    child = subprocess.run([sys.executable, "-c", (
        "import os, sys, tempfile\n"
        "from jarvis import storage\n"
        "from pathlib import Path\n"
        "os.replace = lambda *a: os._exit(9)\n"  # the process dies where a power cut would stop it
        f"storage.atomic_write_bytes(Path({str(settings)!r}), b'half')\n")], capture_output=True, timeout=60)
    assert child.returncode == 9, child.stderr
    left = [p for p in config.iterdir() if p.name != "settings.json"]
    assert len(left) == 1 and left[0].name.startswith(".settings.json.") and left[0].name.endswith(".tmp")
    old = time.time() - 2 * storage.LEFTOVER_AGE_S
    os.utime(left[0], (old, old))
    young = config / ".voices.json.abcd1234.tmp"  # another Jarvis process writing right now: kept
    young.write_bytes(b"in progress")
    mine = config / ".notes.tmp"  # not an atomic write's name: not Jarvis's to delete
    mine.write_bytes(b"x")
    os.utime(mine, (old, old))

    ran = run_jarvis(home, "speakers", "list")
    assert ran.returncode == 0, ran.stderr
    assert not left[0].exists()
    assert young.exists() and mine.exists()
    assert settings.read_bytes() == before


def test_atomic_writes_work_without_os_fchmod_as_on_windows(tmp_path, monkeypatch):
    """Windows' Python before 3.13 has no os.fchmod (the Windows build runs 3.11): that branch, run here."""
    monkeypatch.delattr(os, "fchmod")
    target = tmp_path / "settings.json"
    storage.atomic_write_json(target, {"schema_version": 2})
    assert target.read_text() == '{\n  "schema_version": 2\n}\n'
    assert mode(target) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]
