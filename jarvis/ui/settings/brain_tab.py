"""Brain tab: where open questions go (a local GGUF model, an OpenAI-compatible server, or nowhere),
the server's API key (OS keyring only, as ``llm_api_key``), and the conversation: memory, cache, length,
temperature and the system prompt. Brain changes apply live, without restarting the listener."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit,
                               QPlainTextEdit, QPushButton, QRadioButton, QVBoxLayout, QWidget)

from jarvis import secrets
from jarvis.config import Settings
from jarvis.errors import BadInput
from jarvis.ui.settings.common import align_forms, hint, spin
from jarvis.ui.settings.key_box import KeyBox

BACKENDS = (("local", "Local model (on this machine)"),
            ("openai", "OpenAI-compatible server (Ollama, LM Studio, llama.cpp, vLLM, OpenAI)"),
            ("off", "Off (built-in skills only)"))
BUNDLED = "empty = the bundled SmolLM2-135M"


def _row(*items) -> QWidget:
    """Widgets (and label strings) side by side on one form row."""
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    for item in items:
        layout.addWidget(QLabel(item) if isinstance(item, str) else item, 1 if isinstance(item, QLineEdit) else 0)
    if not any(isinstance(item, QLineEdit) for item in items):
        layout.addStretch(1)
    return row


def _indented_form(*rows) -> tuple[QWidget, QFormLayout]:
    """Fields under a radio button, indented like its label."""
    widget = QWidget()
    form = QFormLayout(widget)
    form.setContentsMargins(24, 0, 0, 4)
    for label, field in rows:
        form.addRow(label, field)
    return widget, form


def _int_spin(low: int, high: int, step: int = 1, suffix: str = "", special: str = ""):
    box = spin(low, high, step, decimals=0, suffix=suffix)
    if special:
        box.setSpecialValueText(special)   # shown for the minimum
    return box


class BrainTab(QWidget):
    def __init__(self, controller, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        self.backend_buttons = {value: QRadioButton(label) for value, label in BACKENDS}
        self.local_model = QLineEdit()
        self.local_model.setPlaceholderText(BUNDLED)
        self.browse_button = QPushButton("Browse…")
        self.browse_button.clicked.connect(self._browse)
        self.local_threads = _int_spin(0, 64, special="auto")
        self.local_threads.setMinimumWidth(80)
        self.local_threads.setToolTip("CPU threads for the local model; auto = one per core, at most 8")
        self.base_url = QLineEdit()
        self.base_url.setPlaceholderText("http://localhost:11434/v1")
        self.model = QLineEdit()
        self.model.setPlaceholderText("e.g. llama3.2")
        self.timeout = spin(1, 600, 5, decimals=0, suffix=" s")
        self.timeout.setToolTip("Longest wait for the server (to connect, and between words)")
        self.key_box = KeyBox(secrets.LLM_API_KEY, "LLM server API key")
        self.local_fields, local_form = _indented_form(
            ("Model file:", _row(self.local_model, self.browse_button, "Threads:", self.local_threads)))
        self.server_fields, server_form = _indented_form(
            ("Server URL:", self.base_url), ("Model:", _row(self.model, "Timeout:", self.timeout)),
            ("API key:", self.key_box))
        answers = QGroupBox("Open questions are answered by")
        box = QVBoxLayout(answers)
        for value, fields in (("local", self.local_fields), ("openai", self.server_fields), ("off", None)):
            self.backend_buttons[value].toggled.connect(self._enable)
            box.addWidget(self.backend_buttons[value])
            if fields is not None:
                box.addWidget(fields)

        conversation = QGroupBox("Conversation")
        form = QFormLayout(conversation)
        self.memory_turns = _int_spin(0, 50, special="none")
        self.memory_turns.setToolTip("Up to this many question/answer pairs remembered per speaker; when full, the "
                                     "oldest half is forgotten at once (the local model reuses what it evaluated)")
        self.memory_idle = _int_spin(10, 86400, 30, suffix=" s")
        self.memory_idle.setToolTip("A speaker's conversation is forgotten after this much silence")
        self.cache_size = _int_spin(0, 10000, 16, special="off")
        self.cache_size.setToolTip("Repeated questions (in a fresh conversation) are answered from a cache")
        self.cache_ttl = _int_spin(0, 604800, 60, suffix=" s")
        self.max_tokens = _int_spin(16, 4096, 16)
        self.temperature = spin(0.0, 2.0, 0.1)
        self.temperature.setToolTip("Higher gives more varied answers")
        self.system_prompt = QPlainTextEdit()
        self.system_prompt.setFixedHeight(self.system_prompt.fontMetrics().lineSpacing() * 3 + 12)
        form.addRow("Remember:", _row(self.memory_turns, "turns, forgotten after", self.memory_idle))
        form.addRow("Answer cache:", _row(self.cache_size, "answers, kept for", self.cache_ttl))
        form.addRow("Longest answer:", _row(self.max_tokens, "tokens;  temperature", self.temperature))
        form.addRow("System prompt:", self.system_prompt)
        form.addRow("", hint("{speaker} is replaced by the speaker's name. Changes here apply at once."))
        align_forms(local_form, server_form, form)

        layout = QVBoxLayout(self)
        layout.addWidget(answers)
        layout.addWidget(conversation)
        layout.addStretch(1)

    def backend(self) -> str:
        return next((v for v, b in self.backend_buttons.items() if b.isChecked()), "off")

    def set_backend(self, value: str) -> None:
        self.backend_buttons.get(value, self.backend_buttons["off"]).setChecked(True)

    def _enable(self) -> None:
        self.local_fields.setEnabled(self.backend() == "local")
        self.server_fields.setEnabled(self.backend() == "openai")

    def _browse(self) -> None:
        start = self.local_model.text().strip() or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Local LLM model", start, "GGUF models (*.gguf);;All files (*)")
        if path:
            self.local_model.setText(path)

    def load(self, settings: Settings) -> None:
        brain = settings.brain
        self.set_backend(brain.backend)
        self._enable()
        self.local_model.setText(brain.local_model)
        self.local_threads.setValue(brain.local_threads)
        self.base_url.setText(brain.base_url)
        self.model.setText(brain.model)
        self.timeout.setValue(brain.timeout_s)
        self.memory_turns.setValue(brain.memory_turns)
        self.memory_idle.setValue(brain.memory_idle_s)
        self.cache_size.setValue(brain.cache_size)
        self.cache_ttl.setValue(brain.cache_ttl_s)
        self.max_tokens.setValue(brain.max_tokens)
        self.temperature.setValue(brain.temperature)
        self.system_prompt.setPlainText(brain.system_prompt)
        self.key_box.check()

    def apply_to(self, settings: Settings) -> None:
        backend = self.backend()
        local_model, url, model = (e.text().strip() for e in (self.local_model, self.base_url, self.model))
        prompt = self.system_prompt.toPlainText().strip()
        if backend == "local" and local_model and not Path(local_model).expanduser().is_file():
            raise BadInput("bad_brain", f"The local model file {local_model} does not exist (Brain tab); "
                                        "choose a .gguf file, or leave it empty for the bundled model.")
        if (url or backend == "openai") and not url.startswith(("http://", "https://")):
            raise BadInput("bad_brain", f"The server URL must be an http(s) URL (got {url!r}; Brain tab).")
        if backend == "openai" and not model:
            raise BadInput("bad_brain", "Give the model name the server knows, e.g. llama3.2 (Brain tab).")
        if not prompt:
            raise BadInput("bad_brain", "The system prompt is empty (Brain tab); say who Jarvis is and how to answer.")
        brain = settings.brain
        brain.backend, brain.local_model = backend, local_model
        brain.base_url, brain.model = url or brain.base_url, model or brain.model
        brain.system_prompt = prompt
        brain.local_threads, brain.memory_turns = int(self.local_threads.value()), int(self.memory_turns.value())
        brain.cache_size, brain.max_tokens = int(self.cache_size.value()), int(self.max_tokens.value())
        brain.timeout_s, brain.memory_idle_s = float(self.timeout.value()), float(self.memory_idle.value())
        brain.cache_ttl_s, brain.temperature = float(self.cache_ttl.value()), round(self.temperature.value(), 2)
