"""Microphones for the windows when the voice loop does not have them open (first run, another device picked in
Settings → Audio, a listener restart under way): one capture per device, shared by every tap on it, owned by the
model host. Opening and closing happen on a thread of its own, so no caller (the GUI thread, the host thread while
models load) ever waits for a device."""
from __future__ import annotations

import logging
import queue
import threading
from typing import Callable

log = logging.getLogger(__name__)

Tap = Callable  # tap(int16 block), on the capture thread
OnError = Callable[[str], None]  # one line for the user


class SharedMic:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._taps: dict[Tap, tuple[str, OnError | None]] = {}   # tap -> (device, on_error)
        self._captures: dict[str, object] = {}                     # device -> MicCapture (started or starting)
        self._jobs: queue.Queue = queue.Queue()
        self._worker = threading.Thread(target=self._run, name="shared-mic", daemon=True)
        self._worker.start()

    def add(self, tap: Tap, device: str, on_error: OnError | None = None) -> None:
        with self._lock:
            self._taps[tap] = (device, on_error)
            opened = device in self._captures
            if not opened:
                self._captures[device] = self._capture_for(device)
        if not opened:
            self._jobs.put(("start", device))

    def remove(self, tap: Tap) -> None:
        with self._lock:
            device, _ = self._taps.pop(tap, ("", None))
            unused = device and not any(d == device for d, _ in self._taps.values())
        if unused:
            self._jobs.put(("stop", device))

    def taps(self, device: str | None = None) -> list[Tap]:
        with self._lock:
            return [tap for tap, (d, _) in self._taps.items() if device is None or d == device]

    def close(self, wait: float = 3.0) -> None:
        with self._lock:
            self._taps.clear()
            devices = list(self._captures)
        for device in devices:
            self._jobs.put(("stop", device))
        self._jobs.put(("end", ""))
        self._worker.join(wait)

    # -- the device thread ---------------------------------------------------------------------------------
    def _capture_for(self, device: str):
        from jarvis.audio.capture import MicCapture

        return MicCapture(lambda block: self._fan_out(device, block), device=device,
                          on_error=lambda exc: self._failed(device, getattr(exc, "message", str(exc))))

    def _fan_out(self, device: str, block) -> None:
        for tap in self.taps(device):
            try:
                tap(block)
            except Exception:
                log.exception("microphone tap failed; removing it")
                self.remove(tap)

    def _failed(self, device: str, message: str) -> None:
        with self._lock:
            self._captures.pop(device, None)
            gone = [(tap, on_error) for tap, (d, on_error) in self._taps.items() if d == device]
            for tap, _ in gone:
                del self._taps[tap]
        for _, on_error in gone:
            if on_error is not None:
                on_error(message)

    def _run(self) -> None:
        while True:
            job, device = self._jobs.get()
            if job == "end":
                return
            with self._lock:
                capture = self._captures.get(device)
                if job == "stop" and capture is not None and not any(d == device for d, _ in self._taps.values()):
                    del self._captures[device]
                else:
                    capture = capture if job == "start" else None
            if capture is None:
                continue
            if job == "stop":
                capture.stop()
                continue
            try:
                capture.start()
            except Exception as exc:  # NotAvailable with its one line; the taps on it hear it
                self._failed(device, getattr(exc, "message", f"The microphone could not open ({exc})."))
