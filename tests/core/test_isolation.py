"""The suite writes only to temporary folders, never to the user's own Jarvis folders: whoever runs the tests keeps
their settings, voices, caches and logs as they were."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def home_outside_a_test() -> str | None:
    """JARVIS_HOME as a module's fixture sees it: it is set up before any test's own ``jarvis_home``."""
    return os.environ.get("JARVIS_HOME")


def test_what_runs_outside_a_test_gets_a_temporary_jarvis_folder(home_outside_a_test, jarvis_home):
    assert home_outside_a_test, "a module's fixture (an engine made once) would write into the user's folders"
    assert Path(tempfile.gettempdir()).resolve() in Path(home_outside_a_test).resolve().parents
    assert Path(home_outside_a_test) != jarvis_home   # each test still gets its own
    assert os.environ["JARVIS_HOME"] == str(jarvis_home)
