"""The PyInstaller builds that the installer tests check, made side by side before the first of those tests.

Each build is about 4 minutes of one busy core (PyInstaller's module analysis runs in one thread), so on 2 cores the
CPU app and the CUDA build's part for Whisper together take about as long as one of them. The suite waits for both
before either module's first test, so no test runs beside a build. Only the builds that the selected tests use are
made; ``JARVIS_TEST_BUNDLE`` names a dist/jarvis/ already built from this tree instead of the CPU build.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT_S = 1800


class Build:
    """One build running in the background; ``result()`` waits for it and gives (its app folder, its output)."""

    def __init__(self, command: list[str], env: dict[str, str], app: Path, log: Path):
        self.app, self.log = app, log
        with open(log, "w") as out:
            self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)

    def wait(self) -> None:
        try:
            self.proc.wait(BUILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def result(self) -> tuple[Path, str]:
        self.wait()
        output = self.log.read_text(errors="replace")
        assert self.proc.returncode == 0, f"{self.proc.args} exited {self.proc.returncode}:\n{output[-6000:]}"
        return self.app, output


class NotBuilt:
    """A build that could not start: ``result()`` raises why."""

    def __init__(self, error: Exception):
        self.error = error

    def wait(self) -> None:
        pass

    def result(self) -> tuple[Path, str]:
        raise self.error


def _selected_tests_use(request, fixture: str) -> bool:
    return any(fixture in getattr(item, "fixturenames", ()) for item in request.session.items)


def _cpu_build(tmp_path_factory) -> Build:
    """installer/build.sh: the app as users get it, then its self-test."""
    dist = tmp_path_factory.mktemp("dist")
    return Build([str(ROOT / "installer" / "build.sh"), str(dist)], dict(os.environ), dist / "jarvis",
                 dist.parent / f"{dist.name}.log")


def _cuda_build(tmp_path_factory, cublas_site: Path) -> Build:
    """installer/jarvis.spec's CUDA variant, run as build.sh --cuda runs it, in this .venv with NVIDIA's cuBLAS 12
    wheel on the path (tests/installer/test_cuda_bundle.py says why)."""
    dist, work = tmp_path_factory.mktemp("dist-cuda"), tmp_path_factory.mktemp("work-cuda")
    # PYTHONUSERBASE: the wheel's folder is a site-packages folder to PyInstaller too, as in .venv-cuda (it keeps a
    # site-packages library's folders and links it from the top; any other library it would copy to the top).
    env = {**os.environ, "PYTHONPATH": str(cublas_site), "PYTHONUSERBASE": str(cublas_site.parents[2]),
           "JARVIS_BUILD_VARIANT": "cuda"}
    command = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN", "--distpath", str(dist),
               "--workpath", str(work), "installer/jarvis.spec"]
    return Build(command, env, dist / "jarvis", dist.parent / f"{dist.name}.log")


@pytest.fixture(scope="session")
def frozen_builds(request, tmp_path_factory) -> dict[str, Build | NotBuilt]:
    """{"cpu": ..., "cuda": ...}, each only where a selected test uses it, all finished."""
    builds = {}
    if _selected_tests_use(request, "bundle") and not os.environ.get("JARVIS_TEST_BUNDLE"):
        builds["cpu"] = _cpu_build(tmp_path_factory)
    if _selected_tests_use(request, "cuda_app"):
        try:
            builds["cuda"] = _cuda_build(tmp_path_factory, request.getfixturevalue("cublas_site"))
        except Exception as exc:   # e.g. no cuBLAS wheel: the CUDA tests fail with it, the CPU build goes on
            builds["cuda"] = NotBuilt(exc)
    for build in builds.values():
        build.wait()
    return builds
