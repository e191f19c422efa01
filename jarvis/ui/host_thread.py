"""The model host's thread: the voice loop loads, listens and speaks here, never on the GUI thread.

``HostWorker`` lives in a ``QThread``. The GUI talks to it only through queued signals (the
controller's requests), and it answers only through signals.
"""
from __future__ import annotations

import copy
import logging
import threading

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from jarvis import events
from jarvis.config import Settings
from jarvis.errors import JarvisError
from jarvis.host import ModelHost

log = logging.getLogger(__name__)


class HostWorker(QObject):
    progress = Signal(str, str)        # (part, state) while models load
    started = Signal()                 # models warm, listening
    failed = Signal(str)               # start failed: one line for the user
    stopped = Signal()
    gpu_memory = Signal(list)          # jarvis.devices.gpu_memory() rows, about once a second
    tts_status = Signal(list)          # TtsChain.status() after load or a settings change
    settings_applied = Signal(object)  # the Settings now in use

    def __init__(self, settings: Settings, bus: events.EventBus):
        super().__init__()
        self.settings = settings
        self.bus = bus
        self.loop = None
        # The one owner of every model, across voice-loop restarts and before the first start (the windows'
        # speaker encoder): handed to each VoiceLoop.
        self.host = ModelHost(copy.deepcopy(settings), bus)
        self._timer: QTimer | None = None
        # The windows' microphone taps (level meter, enrollment): tap -> (device or None for the settings' one,
        # on_error). On the loop's stream when it runs on that device, else on the host's shared microphone; a
        # take being recorded goes on through a listener restart. Called from any thread (the GUI's, or this one
        # while it loads models), hence the lock.
        self.taps: dict = {}
        self._taps_lock = threading.Lock()
        self._shared_mic = None
        self.loading = False   # read from the GUI thread at quit: models load here and cannot be interrupted

    @Slot()
    def start_loop(self) -> None:
        """Load what the host lacks, open the devices and listen."""
        from jarvis.pipeline import VoiceLoop

        if self.loop is not None:
            return
        self._start_gpu_timer()
        self.host.settings = copy.deepcopy(self.settings)
        loop = VoiceLoop(copy.deepcopy(self.settings), self.bus, host=self.host)
        loop.host.progress = lambda part, state: self.progress.emit(part, state)
        self.loading = True
        try:
            loop.start()
        except JarvisError as exc:
            loop.stop()
            self.bus.emit(events.Error(code="start_failed", message=exc.message))
            self.failed.emit(exc.message)
            return
        except Exception as exc:
            log.exception("voice loop failed to start")
            loop.stop()
            message = f"Jarvis could not start ({type(exc).__name__}: {exc}). Run: jarvis doctor"
            self.bus.emit(events.Error(code="start_failed", message=message))
            self.failed.emit(message)
            return
        finally:
            self.loading = False
        with self._taps_lock:  # the loop's stream is open now: its device's taps leave the shared capture
            self.loop = loop
            moved = [tap for tap, (device, _) in self.taps.items() if self._on_loop(device)]
            for tap in moved:
                loop.add_tap(tap)
        for tap in moved:
            if self._shared_mic is not None:
                self._shared_mic.remove(tap)
        self.started.emit()
        self.tts_status.emit(loop.host.tts.status())
        self._emit_gpu()

    @Slot()
    def stop_loop(self) -> None:
        if self._timer is not None:  # a timer must be stopped and freed in its own thread
            self._timer.stop()
            self._timer.setParent(None)
            self._timer = None
        if self.loop is not None:
            self._taps_off_the_loop(lambda loop: loop.stop())
        self.stopped.emit()

    @Slot(object)
    def apply_settings(self, settings: Settings) -> None:
        self.settings = copy.deepcopy(settings)
        if self.loop is not None:
            try:
                restart = self.loop.apply_settings(copy.deepcopy(settings))
            except JarvisError as exc:
                self.bus.emit(events.Error(code=exc.code, message=exc.message))
                restart = False
            if restart:
                self.progress.emit("restart", "applying audio and listening settings")
                self._taps_off_the_loop(lambda loop: loop.stop(keep_models=True))
                kept = self.host.release_for(copy.deepcopy(self.settings))
                log.info("restarting the voice loop for new audio/listening settings; kept loaded: %s",
                         ", ".join(kept) or "nothing")
                self.loop = None
                self.start_loop()
            elif self.loop is not None:
                self.tts_status.emit(self.loop.host.tts.status())
        self.settings_applied.emit(copy.deepcopy(self.settings))

    @Slot(bool)
    def set_muted(self, muted: bool) -> None:
        if self.loop is not None:
            self.loop.set_muted(muted)

    @Slot()
    def push_to_talk(self) -> None:
        if self.loop is not None:
            self.loop.push_to_talk()

    def add_tap(self, tap, device: str | None = None, on_error=None) -> None:
        """``tap(int16 block)`` for every block of ``device``'s microphone (None: the one in the settings); any
        thread. ``on_error(line)`` hears when the host's own capture of it fails."""
        with self._taps_lock:
            self.taps[tap] = (device, on_error)
            loop = self.loop if self._on_loop(device) else None
            if loop is not None:
                loop.add_tap(tap)
                return
        self._shared().add(tap, self._device(device), on_error)

    def remove_tap(self, tap) -> None:
        with self._taps_lock:
            self.taps.pop(tap, None)
            loop = self.loop
        if loop is not None:
            loop.remove_tap(tap)
        if self._shared_mic is not None:
            self._shared_mic.remove(tap)

    def close_microphones(self) -> None:
        if self._shared_mic is not None:
            self._shared_mic.close()

    def _device(self, device: str | None) -> str:
        return self.settings.audio.input_device if device is None else device

    def _on_loop(self, device: str | None) -> bool:
        """The loop (running or starting) listens on this tap's device."""
        return self.loop is not None and self._device(device) == self.loop.settings.audio.input_device

    def _shared(self):
        from jarvis.audio.shared_mic import SharedMic

        with self._taps_lock:
            if self._shared_mic is None:
                self._shared_mic = SharedMic()
            return self._shared_mic

    def _taps_off_the_loop(self, stop) -> None:
        """Stop the loop (``stop(loop)``); its taps go on with the host's shared microphone meanwhile."""
        with self._taps_lock:
            loop, self.loop = self.loop, None
            moved = [(tap, device, on_error) for tap, (device, on_error) in self.taps.items()]
        for tap, device, on_error in moved:
            loop.remove_tap(tap)
        stop(loop)
        for tap, device, on_error in moved:
            if tap in self.taps:
                self._shared().add(tap, self._device(device), on_error)

    def _start_gpu_timer(self) -> None:
        if self._timer is None:
            self._timer = QTimer(self)
            self._timer.setInterval(1000)
            self._timer.timeout.connect(self._emit_gpu)
        self._timer.start()

    @Slot()
    def _emit_gpu(self) -> None:
        from jarvis.devices import gpu_memory
        try:
            self.gpu_memory.emit(gpu_memory())
        except Exception:
            log.debug("GPU memory probe failed", exc_info=True)
