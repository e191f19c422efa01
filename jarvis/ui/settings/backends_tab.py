"""Backends tab: the TTS fallback order (on/off, up/down, health), cloud keys (OS keyring only), cloud voices, and
the speech server (serving Jarvis's loaded voices and Whisper to other apps, with its token shown on request).

API keys and the server's token never touch settings.json: they live in the OS keyring (``key_box.KeyBox``,
``jarvis.serve.security``), read and written off the GUI thread.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QApplication, QCheckBox, QFormLayout, QGroupBox, QHBoxLayout, QHeaderView, QLineEdit,
                               QPushButton, QSpinBox, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget)

from jarvis import secrets
from jarvis.config import Settings
from jarvis.errors import BadInput
from jarvis.speak import registry
from jarvis.ui.settings.common import field_with_buttons, hint, show_message, wrapping_label
from jarvis.ui.settings.key_box import KeyBox
from jarvis.ui.settings.workers import run_async

DESCRIPTIONS = {
    "csm": "Sesame CSM-1b, on this machine",
    "piper": "Piper, on this machine",
    "system": "System voice (espeak-ng)",
    "openai": "OpenAI speech (cloud, needs a key)",
    "edge": "Microsoft Edge voices (cloud)",
}


class BackendsTab(QWidget):
    def __init__(self, controller, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        layout = QVBoxLayout(self)
        layout.addWidget(self._engines_box())
        layout.addWidget(self._cloud_box())
        layout.addWidget(self._server_box())
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

    def show_engines(self, enabled: list[str]) -> None:
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
        self.key_box = KeyBox(secrets.OPENAI_API_KEY, "OpenAI API key")
        self.key_edit, self.key_status = self.key_box.edit, self.key_box.status
        self.save_key_button, self.remove_key_button = self.key_box.save_button, self.key_box.remove_button
        self.openai_model = QLineEdit()
        self.openai_voice = QLineEdit()
        self.openai_url = QLineEdit()
        self.openai_url.setPlaceholderText("https://api.openai.com/v1")
        self.edge_voice = QLineEdit()
        form = QFormLayout(box)
        form.addRow("OpenAI API key:", self.key_box)
        form.addRow("OpenAI model:", self.openai_model)
        form.addRow("OpenAI voice:", self.openai_voice)
        form.addRow("OpenAI server:", self.openai_url)
        form.addRow("Edge voice:", self.edge_voice)
        return box

    # -- speech server ------------------------------------------------------------------------------
    def _server_box(self) -> QGroupBox:
        box = QGroupBox("Speech server")
        self.serve_enabled = QCheckBox("Serve Jarvis's voices and speech recognition to other apps "
                                       "(OpenAI speech API)")
        self.serve_host = QLineEdit()
        self.serve_port = QSpinBox()
        self.serve_port.setRange(1, 65535)
        self.serve_wyoming = QCheckBox("Also Home Assistant's Wyoming protocol (TTS 10200, speech-to-text 10300)")
        self.token = QLineEdit()
        self.token.setReadOnly(True)
        self.token.setPlaceholderText("hidden")
        self.show_token_button = QPushButton("Show token")
        self.copy_token_button = QPushButton("Copy")
        self.show_token_button.clicked.connect(self.show_token)
        self.copy_token_button.clicked.connect(lambda: QApplication.clipboard().setText(self.token.text()))
        self.token_status = wrapping_label()
        form = QFormLayout(box)
        form.addRow(self.serve_enabled)
        form.addRow("Address:", self.serve_host)
        form.addRow("Port:", self.serve_port)
        form.addRow(self.serve_wyoming)
        form.addRow("Token:", field_with_buttons(self.token, self.show_token_button, self.copy_token_button))
        form.addRow(self.token_status)
        form.addRow(hint("The same loaded models as the assistant, which always goes first. Keep the address "
                         "127.0.0.1 unless other machines must reach it: every request needs the token."))
        return box

    def show_token(self) -> None:
        """Read (or make, as the server does on first start) the token off the GUI thread and show it."""
        from jarvis.serve import security

        def shown(token: str) -> None:
            self.token.setText(token)
            show_message(self.token_status, "Use it as the API key: Authorization: Bearer <token>.")

        run_async(lambda: security.api_token(create=True), shown,
                  lambda line: show_message(self.token_status, line, error=True), self)

    @property
    def key_state(self) -> str:
        return self.key_box.state

    # -- settings ----------------------------------------------------------------------------------
    def load(self, settings: Settings) -> None:
        self.show_engines(list(settings.tts.engines))
        cloud = settings.tts.cloud
        self.openai_model.setText(cloud.openai_model)
        self.openai_voice.setText(cloud.openai_voice)
        self.openai_url.setText(cloud.openai_base_url)
        self.edge_voice.setText(cloud.edge_voice)
        self.key_box.check()
        self.serve_enabled.setChecked(settings.serve.enabled)
        self.serve_host.setText(settings.serve.host)
        self.serve_port.setValue(settings.serve.port)
        self.serve_wyoming.setChecked(settings.serve.wyoming)
        self.token.clear()
        show_message(self.token_status, "")

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
        host = self.serve_host.text().strip()
        if not host:
            raise BadInput("bad_serve_host", "Give the speech server an address to listen on (127.0.0.1 keeps it to "
                                             "this machine).")
        settings.serve.enabled, settings.serve.host = self.serve_enabled.isChecked(), host
        settings.serve.port, settings.serve.wyoming = self.serve_port.value(), self.serve_wyoming.isChecked()
