"""The tray app: QApplication + qasync loop, the controller (model host in a QThread), tray, windows.

Without a system tray (e.g. GNOME without AppIndicator) the status window opens instead and closing
it quits, so Jarvis always stays visible and quittable.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox, QSystemTrayIcon

from jarvis import config
from jarvis.config import Settings
from jarvis.ui.controller import Controller
from jarvis.ui.icons import app_icon

log = logging.getLogger(__name__)


class TrayApp(QObject):
    def __init__(self, settings: Settings, app: QApplication):
        super().__init__()
        from jarvis.ui.status_window import StatusWindow

        self.app = app
        self.controller = Controller(settings)
        self.status = StatusWindow(self.controller)
        self.status.setWindowIcon(app_icon())
        self.status.settings_requested.connect(self.open_settings)
        self.status.quit_requested.connect(self.quit)
        self.settings_dialog = None
        self.tray = None
        if QSystemTrayIcon.isSystemTrayAvailable():
            from jarvis.ui.tray import Tray
            self.tray = Tray(self.controller, self)
            self.tray.status_requested.connect(self.open_status)
            self.tray.settings_requested.connect(self.open_settings)
            self.tray.quit_requested.connect(self.quit)
            self.tray.show()
        else:
            log.info("no system tray here: showing the status window instead")
            self.status.installEventFilter(self)  # closing the window quits
            self.open_status()
        self.controller.failed.connect(self._start_failed)

    def start(self) -> None:
        settings = self.controller.settings
        if settings.notice:
            QMessageBox.warning(None, "Jarvis settings", settings.notice)
        self.controller.start()
        if not settings.ui.first_run_done:
            QTimer.singleShot(0, self.open_first_run)

    def open_status(self) -> None:
        self.status.show()
        self.status.raise_()
        self.status.activateWindow()

    def open_settings(self) -> None:
        from jarvis.ui.settings.dialog import SettingsDialog
        if self.settings_dialog is None:
            self.settings_dialog = SettingsDialog(self.controller)
            self.settings_dialog.setWindowIcon(app_icon())
        self.settings_dialog.show()
        self.settings_dialog.raise_()

    def open_first_run(self) -> None:
        from jarvis.ui.first_run import FirstRunDialog
        self.first_run = FirstRunDialog(self.controller)
        self.first_run.setWindowIcon(app_icon())
        self.first_run.show()

    def quit(self) -> None:
        self.app.quit()

    def shutdown(self, timeout_ms: int = 6000) -> str:
        """"stopped", or why the host thread is still running ("loading", "hung": see Controller.shutdown)."""
        if self.tray is not None:
            self.tray.icon.hide()
        return self.controller.shutdown(timeout_ms)

    def _start_failed(self, message: str) -> None:
        self.open_status()

    def eventFilter(self, watched, event) -> bool:
        if watched is self.status and event.type() == QEvent.Type.Close:
            self.quit()
        return False


def run(settings: Settings | None = None, argv: list[str] | None = None) -> int:
    import qasync

    settings = settings or config.load()
    app = QApplication.instance() or QApplication([sys.argv[0], *(argv or [])])
    app.setApplicationName("Jarvis")
    app.setQuitOnLastWindowClosed(False)
    app.setWindowIcon(app_icon())
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    tray_app = TrayApp(settings, app)
    signal.signal(signal.SIGINT, lambda *_: app.quit())
    signal.signal(signal.SIGTERM, lambda *_: app.quit())
    wake_python = QTimer()  # lets Python run its signal handlers while Qt waits
    wake_python.start(200)
    wake_python.timeout.connect(lambda: None)
    closing = asyncio.Event()
    app.aboutToQuit.connect(closing.set)
    tray_app.start()
    with loop:
        loop.run_until_complete(closing.wait())
    return finish(tray_app.shutdown())


def finish(how: str) -> int:
    """The exit code for how the host thread ended. While it still runs, Qt would abort the process when the
    thread object is destroyed on the way out, so the process ends now, saying why."""
    if how == "stopped":
        return 0
    from jarvis.cli import EXIT_HUNG

    if how == "loading":
        line = "quit while the models were still loading (a load cannot be interrupted): exiting without waiting"
        code = 0  # what the user asked for; nothing went wrong
    else:
        line = "the voice loop did not stop in time and was cut short; please report it with the log (jarvis doctor)"
        code = EXIT_HUNG
    log.log(logging.INFO if code == 0 else logging.ERROR, "%s", line)
    if code:
        print(f"error: {line}", file=sys.stderr, flush=True)
    logging.shutdown()
    sys.stdout.flush()
    os._exit(code)


def display_available() -> bool:
    """A screen Qt can open: always on Windows/macOS; on Linux only with X11 or Wayland."""
    import os
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
