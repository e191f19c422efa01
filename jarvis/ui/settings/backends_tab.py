"""Backends tab: the TTS fallback order (on/off, up/down, health), cloud keys (OS keyring only), cloud voices.

API keys never touch settings.json: they go to ``jarvis.secrets`` (the OS keyring) on a pool thread,
and the key field is cleared once stored.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QFormLayout, QGroupBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPushButton,
                               QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget)

from jarvis import secrets
from jarvis.config import Settings
from jarvis.errors import BadInput
from jarvis.speak import registry
from jarvis.ui.settings.common import hint, show_message
from jarvis.ui.settings.workers import run_async

DESCRIPTIONS = {
    "csm": "Sesame CSM-1b, on this machine",
    "piper": "Piper, on this machine",
    "system": "System voice (espeak-ng)",
    "openai": "OpenAI speech (cloud, needs a key)",
    "edge": "Microsoft Edge voices (cloud)",
}


def _store_key(value: str) -> str:
    secrets.set_secret(secrets.OPENAI_API_KEY, value)
    return "set"


def _key_state() -> str:
    return "set" if secrets.get_secret(secrets.OPENAI_API_KEY) else "not set"


def _delete_key() -> str:
    secrets.delete_secret(secrets.OPENAI_API_KEY)
    return "not set"


class BackendsTab(QWidget):
    def __init__(self, controller, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        self.key_state = "unknown"      # "set" | "not set" | "unavailable" | "unknown"
        layout = QVBoxLayout(self)
        layout.addWidget(self._engines_box())
        layout.addWidget(self._cloud_box())
        layout.addStretch(1)
        controller.tts_status.connect(self.show_health)

    # -- engine order ------------------------------------------------------------------------------
    def _engines_box(self) -> QGroupBox:
        box = QGroupBox("Voice engines, in fallback order")
        self.engines = QTreeWidget()
        self.engines.setColumnCount(3)
        self.engines.setHeaderLabels(["Engine", "What it is", "Health"])
        self.engines.setRootIsDecorated(False)
        self.engines.setUniformRowHeights(True)
        header = self.engines.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.up_button = QPushButton("Up")
        self.down_button = QPushButton("Down")
        self.up_button.clicked.connect(lambda: self.move(-1))
        self.down_button.clicked.connect(lambda: self.move(1))
        buttons = QVBoxLayout()
        buttons.addWidget(self.up_button)
        buttons.addWidget(self.down_button)
        buttons.addStretch(1)
        row = QHBoxLayout()
        row.addWidget(self.engines, 1)
        row.addLayout(buttons)
        layout = QVBoxLayout(box)
        layout.addLayout(row)
        layout.addWidget(hint("Jarvis speaks with the first ticked engine that works; when it fails, "
                              "the next one takes over."))
        return box

    def engine_order(self) -> list[str]:
        """Every engine name in the shown order."""
        return [self.engines.topLevelItem(i).text(0) for i in range(self.engines.topLevelItemCount())]

    def enabled_engines(self) -> list[str]:
        return [item.text(0) for item in self._items() if item.checkState(0) == Qt.CheckState.Checked]

    def set_enabled(self, name: str, on: bool) -> None:
        for item in self._items():
            if item.text(0) == name:
                item.setCheckState(0, Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    def select_engine(self, name: str) -> None:
        for item in self._items():
            if item.text(0) == name:
                self.engines.setCurrentItem(item)

    def move(self, step: int) -> None:
        item = self.engines.currentItem()
        if item is None:
            return
        row = self.engines.indexOfTopLevelItem(item)
        target = row + step
        if not 0 <= target < self.engines.topLevelItemCount():
            return
        self.engines.takeTopLevelItem(row)
        self.engines.insertTopLevelItem(target, item)
        self.engines.setCurrentItem(item)

    def _items(self) -> list[QTreeWidgetItem]:
        return [self.engines.topLevelItem(i) for i in range(self.engines.topLevelItemCount())]

    def _fill_engines(self, enabled: list[str]) -> None:
        self.engines.clear()
        known = registry.names()
        order = [n for n in enabled if n in known] + [n for n in known if n not in enabled]
        for name in order:
            item = QTreeWidgetItem([name, DESCRIPTIONS.get(name, ""), ""])
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(0, Qt.CheckState.Checked if name in enabled else Qt.CheckState.Unchecked)
            self.engines.addTopLevelItem(item)
        self.show_health(self.controller.last_tts_status)
        rows = self.engines.topLevelItemCount()
        self.engines.setFixedHeight(self.engines.header().sizeHint().height() + rows * self.engines.sizeHintForRow(0)
                                    + 2 * self.engines.frameWidth() + 2)

    def show_health(self, status: list) -> None:
        by_name = {row.get("name"): row for row in status or []}
        for item in self._items():
            row = by_name.get(item.text(0))
            if row is None:
                text, tip = ("not loaded" if item.checkState(0) == Qt.CheckState.Checked else "off"), ""
            elif row.get("healthy"):
                text, tip = "working", ""
            else:
                text, tip = f"down: {row.get('reason', '')}", row.get("reason", "")
            item.setText(2, text)
            item.setToolTip(2, tip)

    # -- cloud -------------------------------------------------------------------------------------
    def _cloud_box(self) -> QGroupBox:
        box = QGroupBox("Cloud voices (used only when ticked above)")
        self.key_edit = QLineEdit()
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setPlaceholderText("paste a key to store it in the OS keyring")
        self.save_key_button = QPushButton("Save key")
        self.remove_key_button = QPushButton("Remove key")
        self.save_key_button.clicked.connect(self.save_key)
        self.remove_key_button.clicked.connect(self.remove_key)
        key_row = QHBoxLayout()
        key_row.addWidget(self.key_edit, 1)
        key_row.addWidget(self.save_key_button)
        key_row.addWidget(self.remove_key_button)
        self.key_status = QLabel("checking the keyring…")   # "key set" / "key not set" / why not, in red
        self.key_status.setWordWrap(True)
        self.openai_model = QLineEdit()
        self.openai_voice = QLineEdit()
        self.openai_url = QLineEdit()
        self.openai_url.setPlaceholderText("https://api.openai.com/v1")
        self.edge_voice = QLineEdit()
        form = QFormLayout(box)
        form.addRow("OpenAI API key:", key_row)
        form.addRow("", self.key_status)
        form.addRow("OpenAI model:", self.openai_model)
        form.addRow("OpenAI voice:", self.openai_voice)
        form.addRow("OpenAI server:", self.openai_url)
        form.addRow("Edge voice:", self.edge_voice)
        return box

    def check_key(self) -> None:
        run_async(_key_state, self._key_done, self._key_unavailable, self)

    def save_key(self, then=None) -> None:
        """Store the typed key (off the GUI thread); ``then(ok)`` runs when the keyring answered."""
        value = self.key_edit.text()
        if not value.strip():
            show_message(self.key_status, "Paste the key first.", error=True)
            if then:
                then(False)
            return
        self._busy_key(True)

        def stored(state: str) -> None:
            self.key_edit.clear()
            self._key_done(state)
            if then:
                then(True)

        def failed(line: str) -> None:
            self._key_unavailable(line)
            if then:
                then(False)

        run_async(lambda: _store_key(value), stored, failed, self)

    def remove_key(self) -> None:
        self._busy_key(True)
        run_async(_delete_key, self._key_done, self._key_unavailable, self)

    @property
    def key_pending(self) -> bool:
        return bool(self.key_edit.text().strip())

    def _busy_key(self, busy: bool) -> None:
        self.save_key_button.setEnabled(not busy)
        self.remove_key_button.setEnabled(not busy and self.key_state == "set")

    def _key_done(self, state: str) -> None:
        self.key_state = state
        show_message(self.key_status, "key set (in the OS keyring)" if state == "set" else "key not set")
        self._busy_key(False)

    def _key_unavailable(self, line: str) -> None:
        if self.key_state == "unknown":
            self.key_state = "unavailable"
        show_message(self.key_status, line, error=True)
        self._busy_key(False)

    # -- settings ----------------------------------------------------------------------------------
    def load(self, settings: Settings) -> None:
        self._fill_engines(list(settings.tts.engines))
        cloud = settings.tts.cloud
        self.openai_model.setText(cloud.openai_model)
        self.openai_voice.setText(cloud.openai_voice)
        self.openai_url.setText(cloud.openai_base_url)
        self.edge_voice.setText(cloud.edge_voice)
        self.key_edit.clear()
        self.check_key()

    def apply_to(self, settings: Settings) -> None:
        engines = self.enabled_engines()
        if not engines:
            raise BadInput("no_engine", "Tick at least one voice engine (Backends tab); \"system\" needs no download.")
        settings.tts.engines = engines
        cloud = settings.tts.cloud
        for field, edit in (("openai_model", self.openai_model), ("openai_voice", self.openai_voice),
                            ("edge_voice", self.edge_voice)):
            value = edit.text().strip()
            if not value and field.split("_")[0] in engines:
                raise BadInput("bad_cloud", f"Give the {field.replace('_', ' ')} (Backends tab).")
            setattr(cloud, field, value or getattr(cloud, field))
        url = self.openai_url.text().strip()
        if url and not url.startswith(("http://", "https://")):
            raise BadInput("bad_cloud", f"The OpenAI server must be an http(s) URL (got {url!r}).")
        cloud.openai_base_url = url
