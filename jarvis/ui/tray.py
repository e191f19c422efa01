"""The tray icon: state at a glance, a menu for everything, notifications when something degrades."""
from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from jarvis.ui.controller import Controller
from jarvis.ui.icons import state_icon
from jarvis.ui.state import DESCRIPTIONS


class Tray(QObject):
    status_requested = Signal()
    settings_requested = Signal()
    quit_requested = Signal()

    def __init__(self, controller: Controller, parent: QObject | None = None):
        super().__init__(parent)
        self.controller = controller
        self.icon = QSystemTrayIcon(state_icon("loading"), self)
        self.menu = QMenu()
        self.state_action = self.menu.addAction(DESCRIPTIONS["loading"])
        self.state_action.setEnabled(False)
        self.menu.addSeparator()
        self.mute_action = QAction("Mute microphone", self.menu, checkable=True)
        self.mute_action.toggled.connect(controller.set_muted)
        self.menu.addAction(self.mute_action)
        self.talk_action = self.menu.addAction("Push to talk")
        self.talk_action.triggered.connect(controller.push_to_talk)
        self.menu.addSeparator()
        self.menu.addAction("Status window").triggered.connect(self.status_requested)
        self.menu.addAction("Settings…").triggered.connect(self.settings_requested)
        self.menu.addSeparator()
        self.menu.addAction("Quit Jarvis").triggered.connect(self.quit_requested)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._activated)
        controller.state_changed.connect(self.show_state)
        controller.notify.connect(self.notify)
        self.show_state(controller.tray_state.state)

    @property
    def state(self) -> str:
        return self._state

    def show(self) -> None:
        self.icon.show()

    def show_state(self, state: str) -> None:
        self._state = state
        self.icon.setIcon(state_icon(state))
        text = DESCRIPTIONS.get(state, state)
        self.state_action.setText(text)
        self.icon.setToolTip(f"Jarvis: {text}")
        self.talk_action.setEnabled(state not in ("loading", "muted", "error"))
        if self.mute_action.isChecked() != self.controller.muted:
            self.mute_action.setChecked(self.controller.muted)

    def notify(self, title: str, message: str) -> None:
        if QSystemTrayIcon.supportsMessages():
            self.icon.showMessage(title, message, QSystemTrayIcon.MessageIcon.Warning, 8000)

    def _activated(self, reason) -> None:
        if reason in (QSystemTrayIcon.ActivationReason.Trigger, QSystemTrayIcon.ActivationReason.DoubleClick):
            self.status_requested.emit()
