"""`jarvis listen --events jsonl` as a child process on the virtual audio devices, and the events it prints."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import psutil

ROOT = Path(__file__).resolve().parents[2]


class EventStream:
    """Reads `jarvis listen --events jsonl` stdout on a thread; every line must be a JSON event."""

    def __init__(self, proc: subprocess.Popen):
        self.proc, self.events, self.bad_lines = proc, [], []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                self.bad_lines.append(line)
                continue
            with self._cond:
                self.events.append(event)
                self._cond.notify_all()

    def wait_for(self, type_: str, after: int = 0, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events[after:]:
                    if event["type"] == type_:
                        return event
                if event_error := next((e for e in self.events[after:] if e["type"] == "error"), None):
                    raise AssertionError(f"jarvis reported an error: {event_error}")
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(f"no {type_!r} event within {timeout} s; got {self.events[after:]}; "
                                         f"exit code {self.proc.poll()}")
                self._cond.wait(min(left, 0.5))

    def first(self, type_: str, after: int = 0, timeout: float = 60, **fields) -> dict:
        """The first ``type_`` event after index ``after`` whose fields equal ``fields`` (an ``error`` event
        does not end the wait, unlike ``wait_for``)."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events[after:]:
                if event["type"] == type_ and all(event.get(k) == v for k, v in fields.items()):
                    return event
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"no {type_} {fields} within {timeout} s; got {self.events[after:]}; "
                                     f"exit code {self.proc.poll()}")
            time.sleep(0.05)


@contextmanager
def jarvis_listen(env: dict, log: Path, ready_timeout: float = 240,
                  wrap: Callable[[list[str]], list[str]] | None = None, verbose: bool = False) -> Iterator[EventStream]:
    """Start `jarvis listen` on jarvis_mic / jarvis_speaker, wait for ``ready``; killed on leaving.
    ``wrap`` runs it under another command (a recorder such as strace): Ctrl+C then goes to Jarvis itself.
    ``verbose``: debug lines (the echo canceller's alignment, playback underflows) go to ``log``."""
    command = [sys.executable, "-m", "jarvis", *(["-v"] if verbose else []), "listen", "--input-device",
               "jarvis_mic", "--output-device", "jarvis_speaker", "--events", "jsonl"]
    proc = subprocess.Popen(wrap(command) if wrap else command,
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=open(log, "w"), text=True)
    stream = EventStream(proc)
    stream.log = log
    try:
        stream.wait_for("ready", timeout=ready_timeout)
        yield stream
    finally:
        if proc.poll() is None:  # stopped as a user stops it (Ctrl+C), killed only if that hangs
            _jarvis_process(proc, command).send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _jarvis_process(proc: subprocess.Popen, command: list[str]) -> psutil.Process:
    """The process running ``command``: ``proc`` itself, or its descendant when ``proc`` is a wrapper."""
    top = psutil.Process(proc.pid)
    for candidate in [top, *top.children(recursive=True)]:
        try:
            if candidate.cmdline()[:len(command)] == command:
                return candidate
        except psutil.Error:
            continue
    return top
