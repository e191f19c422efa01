"""The GUI thread's single handle on Jarvis: signals out to widgets, queued requests in to the host.

Widgets connect to the controller's signals and call its methods; none of them touches a model,
a device or the voice loop. Every request crosses to the ``HostWorker`` thread as a queued signal, except the
microphone taps, which must work while that thread loads models (``HostWorker.add_tap`` is thread-safe).
"""
from __future__ import annotations

import copy
import logging

from PySide6.QtCore import QObject, QThread, Signal

from jarvis import config, events
from jarvis.config import Settings
from jarvis.ui.host_thread import HostWorker
from jarvis.ui.state import TrayState

log = logging.getLogger(__name__)

# Degraded parts that are not a voice: the notification's title (the reason is the message).
OWN_WORDS = {"gpu_memory": "Jarvis: GPU memory is nearly full", "speech_server": "Jarvis speech server is off"}


class Controller(QObject):
    # out: to widgets (always delivered on the GUI thread)
    event = Signal(object)             # every jarvis.events.Event, in order
    state_changed = Signal(str)        # one of jarvis.ui.state.STATES
    progress = Signal(str, str)        # model load progress (part, state)
    started = Signal()
    failed = Signal(str)
    gpu_memory = Signal(list)
    tts_status = Signal(list)
    settings_changed = Signal(object)  # a copy of the Settings in effect
    notify = Signal(str, str)          # (title, message) worth a desktop notification

    # in: queued to the host thread
    _start = Signal()
    _stop = Signal()
    _apply = Signal(object)
    _mute = Signal(bool)
    _ptt = Signal()
    _event_any_thread = Signal(object)

    def __init__(self, settings: Settings, bus: events.EventBus | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.settings = settings
        self.bus = bus or events.EventBus()
        self.tray_state = TrayState()
        self.last_progress: dict[str, str] = {}
        self.last_tts_status: list[dict] = []
        self.last_gpu: list[dict] = []
        self.running = False
        self._thread = QThread()
        self._thread.setObjectName("model-host")
        self.worker = HostWorker(copy.deepcopy(settings), self.bus)
        self.worker.moveToThread(self._thread)
        self._start.connect(self.worker.start_loop)
        self._stop.connect(self.worker.stop_loop)
        self._apply.connect(self.worker.apply_settings)
        self._mute.connect(self.worker.set_muted)
        self._ptt.connect(self.worker.push_to_talk)
        self.worker.progress.connect(self._on_progress)
        self.worker.started.connect(self._on_started)
        self.worker.failed.connect(self._on_failed)
        self.worker.gpu_memory.connect(self._on_gpu)
        self.worker.tts_status.connect(self._on_tts_status)
        self.worker.settings_applied.connect(self._on_settings_applied)
        self._event_any_thread.connect(self._on_event)  # emitted from any thread, delivered here
        self.bus.subscribe(self._event_any_thread.emit)
        self._thread.start()

    # -- requests --------------------------------------------------------------------------------
    def start(self) -> None:
        self._start.emit()

    def shutdown(self, timeout_ms: int = 6000) -> str:
        """Stop the voice loop and the host thread (blocks the GUI briefly, at quit only). Returns "stopped";
        "loading" when models were still loading (a load cannot be interrupted: the thread is still running, and
        the process must end without destroying it); "hung" when stopping did not finish in time."""
        self._stop.emit()
        self._thread.quit()
        self.worker.close_microphones()
        if self._thread.wait(timeout_ms):
            return "stopped"
        if self.worker.loading:
            return "loading"
        log.error("the model host thread did not stop in %d ms", timeout_ms)
        return "hung"

    @property
    def muted(self) -> bool:
        return self.tray_state.muted

    def set_muted(self, muted: bool) -> None:
        self.tray_state.muted = bool(muted)
        self._mute.emit(bool(muted))
        self.state_changed.emit(self.tray_state.state)

    def push_to_talk(self) -> None:
        self._ptt.emit()

    def speaker_encoder(self):
        """The model host's speaker encoder, for enrollment and identification (call it off the GUI thread: the
        first embedding loads the model when the voice loop has not)."""
        return self.worker.host.speaker_encoder()

    def preview_voice(self, settings: Settings) -> str:
        """Speak a sample in the draft ``settings``' voices through the model host (call it off the GUI thread);
        one line saying which engine spoke. Through the voice loop's player when it plays to the same device."""
        from jarvis.speak.preview import speak_sample

        loop = self.worker.loop
        same_device = loop is not None and loop.settings.audio.output_device == settings.audio.output_device
        return speak_sample(self.worker.host, settings, loop.player if same_device else None)

    def add_tap(self, tap, device: str | None = None, on_error=None) -> None:
        """``tap(int16 block)`` runs on a capture thread for every block of ``device``'s microphone (None: the one in
        the settings): the voice loop's stream when it listens there, else the host's own (first run, another
        device); ``on_error(line)`` when that one fails. Through a listener restart the tap goes on."""
        self.worker.add_tap(tap, device, on_error)

    def remove_tap(self, tap) -> None:
        self.worker.remove_tap(tap)

    def apply_settings(self, settings: Settings, save: bool = True) -> None:
        """Save (atomically) and apply; the host restarts the loop only when it must."""
        if save:
            config.save(settings)
        self.settings = copy.deepcopy(settings)
        self._apply.emit(copy.deepcopy(settings))

    # -- from the host thread -------------------------------------------------------------------
    def _on_event(self, event: events.Event) -> None:
        before = self.tray_state.state
        after = self.tray_state.on_event(event)
        self.event.emit(event)
        if event.type == "degraded" and event.engine == "llm":
            self.notify.emit("Jarvis language model unavailable", event.reason)
        elif event.type == "degraded" and event.engine in OWN_WORDS:
            self.notify.emit(OWN_WORDS[event.engine], event.reason)   # the reason says it all
        elif event.type == "degraded":
            self.notify.emit("Jarvis voice degraded", f"{event.engine} is down: {event.reason}")
        elif event.type == "error" and event.code in ("audio_device_lost", "listener_failed", "start_failed"):
            self.notify.emit("Jarvis needs attention", event.message)
        if after != before:
            self.state_changed.emit(after)

    def _on_progress(self, part: str, state: str) -> None:
        self.last_progress[part] = state
        self.progress.emit(part, state)

    def _on_started(self) -> None:
        self.running = True
        self.started.emit()

    def _on_failed(self, message: str) -> None:
        self.running = False
        self.failed.emit(message)

    def _on_gpu(self, rows: list) -> None:
        self.last_gpu = rows
        self.gpu_memory.emit(rows)

    def _on_tts_status(self, status: list) -> None:
        self.last_tts_status = status
        self.tts_status.emit(status)

    def _on_settings_applied(self, settings) -> None:
        self.settings_changed.emit(settings)
