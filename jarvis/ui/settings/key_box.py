"""An API-key field backed by the OS keyring: password field, Save key / Remove key, and a status line.

The key never touches settings.json: it goes to ``jarvis.secrets`` on a pool thread (the keyring may
block), and the field is cleared once it is stored. The status line says "key set (in the OS keyring)",
"key not set", or the keyring's one-line error (in red).
"""
from __future__ import annotations

from PySide6.QtWidgets import QLineEdit, QPushButton, QVBoxLayout, QWidget

from jarvis import secrets
from jarvis.ui.settings.common import field_with_buttons, show_message, wrapping_label
from jarvis.ui.settings.workers import run_async

SET, NOT_SET = "key set (in the OS keyring)", "key not set"


def _remove(name: str) -> str:
    secrets.delete_secret(name)
    return "not set"


class KeyBox(QWidget):
    def __init__(self, name: str, what: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.name, self.what = name, what     # the keyring name; what the key is, for messages
        self.state = "unknown"                # "set" | "not set" | "unavailable" | "unknown"
        self.edit = QLineEdit()
        self.edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.edit.setPlaceholderText("paste a key to store it in the OS keyring")
        self.save_button = QPushButton("Save key")
        self.remove_button = QPushButton("Remove key")
        self.save_button.clicked.connect(lambda: self.save_key())
        self.remove_button.clicked.connect(self.remove_key)
        self.status = wrapping_label("checking the keyring…")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(field_with_buttons(self.edit, self.save_button, self.remove_button))
        layout.addWidget(self.status)

    @property
    def pending(self) -> bool:
        """A key is typed but not stored yet."""
        return bool(self.edit.text().strip())

    def check(self) -> None:
        self.edit.clear()
        run_async(lambda: "set" if secrets.get_secret(self.name) else "not set", self._done, self._failed, self)

    def save_key(self, then=None) -> None:
        """Store the typed key (off the GUI thread); ``then(ok)`` runs when the keyring answered."""
        value, name = self.edit.text(), self.name
        if not value.strip():
            show_message(self.status, "Paste the key first.", error=True)
            if then:
                then(False)
            return
        self._busy(True)

        def store() -> str:
            secrets.set_secret(name, value)
            return "set"

        def stored(state: str) -> None:
            self.edit.clear()
            self._done(state)
            if then:
                then(True)

        def failed(line: str) -> None:
            self._failed(line)
            if then:
                then(False)

        run_async(store, stored, failed, self)

    def remove_key(self) -> None:
        self._busy(True)
        run_async(lambda: _remove(self.name), self._done, self._failed, self)

    def _busy(self, busy: bool) -> None:
        self.save_button.setEnabled(not busy)
        self.remove_button.setEnabled(not busy and self.state == "set")

    def _done(self, state: str) -> None:
        self.state = state
        show_message(self.status, SET if state == "set" else NOT_SET)
        self._busy(False)

    def _failed(self, line: str) -> None:
        if self.state == "unknown":
            self.state = "unavailable"
        show_message(self.status, line, error=True)
        self._busy(False)
