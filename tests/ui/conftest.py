"""GUI tests: real Qt windows on a private Xvfb display with a tray (trayer), on a private D-Bus.

The display and its environment are set before pytest-qt creates the QApplication (``qapp``), so
every Qt window in these tests is a real X11 window and ``QSystemTrayIcon`` finds a real tray.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.desktop import Desktop, screenshot_path

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def desktop():
    """Xvfb + trayer, and a private session bus with an unlocked GNOME Keyring (the app's keyring)."""
    import keyring

    from tests.conftest import _forget_viable_keyrings
    from tests.keyring_server import PrivateKeyring

    desk = Desktop()
    bus = PrivateKeyring()
    keys = ("DISPLAY", "QT_QPA_PLATFORM", "WAYLAND_DISPLAY", "PYTHON_KEYRING_BACKEND", *bus.client_env)
    previous = {k: os.environ.get(k) for k in keys}
    os.environ["DISPLAY"] = desk.display
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    os.environ.pop("WAYLAND_DISPLAY", None)
    os.environ.pop("PYTHON_KEYRING_BACKEND", None)
    os.environ.update(bus.client_env)
    previous_keyring = keyring.get_keyring()
    _forget_viable_keyrings()
    keyring.core.init_backend()
    desk.keyring = bus
    try:
        yield desk
    finally:  # the display itself stays up until this process ends (Qt would exit without it)
        bus.stop()
        _forget_viable_keyrings()
        keyring.set_keyring(previous_keyring)
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def qapp_args():
    return ["jarvis-tests"]


@pytest.fixture(scope="session")
def qapp(desktop, qapp_args):
    """pytest-qt's QApplication, created only after the display exists."""
    from PySide6.QtWidgets import QApplication
    app = QApplication.instance() or QApplication(qapp_args)
    app.setQuitOnLastWindowClosed(False)
    yield app


@pytest.fixture
def controller(qapp):
    """A Controller over default settings that is never started: no models load."""
    from jarvis import events
    from jarvis.config import Settings
    from jarvis.ui.controller import Controller
    from jarvis.ui.settings.workers import wait_all

    ctl = Controller(Settings(), events.EventBus())
    yield ctl
    wait_all()  # background jobs (recordings, keyring calls) end before the host thread stops
    ctl.shutdown()


def save_screenshot(widget, name: str) -> Path:
    """A widget's own pixels (``QWidget.grab``) saved as NAME.png (see ``tests.desktop.screenshot_path``)."""
    path = screenshot_path(name)
    assert widget.grab().save(str(path)), path
    return path
