"""A benchmark's own temporary Jarvis folder: its clips, enrolled voices and settings, never the user's."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def scratch_home(prefix: str) -> Iterator[Path]:
    """A new temporary folder; ``JARVIS_HOME`` points at its ``home`` inside while the ``with`` lasts.

    On leaving, ``JARVIS_HOME`` is restored and the folder removed (a run left ~1 MB of clips and enrolled
    voice signatures in /tmp each time before)."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    before = os.environ.get("JARVIS_HOME")
    os.environ["JARVIS_HOME"] = str(work / "home")
    try:
        yield work
    finally:
        if before is None:
            os.environ.pop("JARVIS_HOME", None)
        else:
            os.environ["JARVIS_HOME"] = before
        shutil.rmtree(work, ignore_errors=True)
