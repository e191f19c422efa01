"""The first-run guide: 1. check the microphone, 2. enroll your voice, 3. pick a voice.

Finish saves the choices; Skip saves only that the guide was seen. Either way
``settings.ui.first_run_done`` becomes True and the settings are applied through the controller.
Closing the window saves nothing, so the guide comes back next time.
"""
from __future__ import annotations

import copy

from PySide6.QtWidgets import (QButtonGroup, QComboBox, QDialog, QFormLayout, QHBoxLayout, QLabel, QPushButton,
                               QRadioButton, QStackedWidget, QVBoxLayout, QWidget)

from jarvis.config import Settings
from jarvis.ui.settings.audio_tab import device_combo, select_device
from jarvis.ui.settings.common import HINT_STYLE, combo_value, hint, message_label, show_message
from jarvis.ui.settings.enroll import EnrollWidget
from jarvis.ui.settings.mic import LevelMeter, MicTap

PRESETS = [
    ("best", "Best quality: Sesame CSM on this machine (a GPU helps), then Piper, then the system voice",
     ["csm", "piper", "system"]),
    ("light", "Light and quick: Piper, then the system voice (no download, any computer)", ["piper", "system"]),
    ("basic", "System voice only (espeak-ng)", ["system"]),
]
TITLES = ["1. Check the microphone", "2. Teach Jarvis your voice", "3. Pick Jarvis's voice"]
STEPS = ["Microphone", "Your voice", "Jarvis's voice"]


class FirstRunDialog(QDialog):
    def __init__(self, controller, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        self.setWindowTitle("Welcome to Jarvis")
        self.title = QLabel()
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.title.setFont(font)
        self.steps = QLabel()
        self.pages = QStackedWidget()
        self.pages.addWidget(self._mic_page())
        self.pages.addWidget(self._enroll_page())
        self.pages.addWidget(self._voice_page())

        self.skip_button = QPushButton("Skip")
        self.back_button = QPushButton("Back")
        self.next_button = QPushButton("Next")
        self.next_button.setDefault(True)
        self.skip_button.clicked.connect(self.skip)
        self.back_button.clicked.connect(lambda: self.go(self.pages.currentIndex() - 1))
        self.next_button.clicked.connect(self._next)
        buttons = QHBoxLayout()
        buttons.addWidget(self.skip_button)
        buttons.addStretch(1)
        buttons.addWidget(self.back_button)
        buttons.addWidget(self.next_button)
        self.message = message_label()
        layout = QVBoxLayout(self)
        layout.addWidget(self.steps)
        layout.addWidget(self.title)
        layout.addWidget(self.pages, 1)
        layout.addWidget(self.message)
        layout.addLayout(buttons)
        self.setMinimumSize(580, 400)
        self.go(0)

    # -- pages -------------------------------------------------------------------------------------
    def _mic_page(self) -> QWidget:
        page = QWidget()
        self.device = device_combo("input")
        select_device(self.device, self.controller.settings.audio.input_device)
        self.device.currentIndexChanged.connect(lambda *_: self._listen())
        self.meter = LevelMeter()
        self.mic_message = message_label()
        self.tap = MicTap(self.controller, self)
        self.tap.block.connect(self.meter.feed)
        self.tap.failed.connect(lambda line: show_message(self.mic_message, line, error=True))
        form = QFormLayout()
        form.addRow("Microphone:", self.device)
        form.addRow("Level:", self.meter)
        layout = QVBoxLayout(page)
        layout.addWidget(hint("Jarvis listens for its name all the time, on this machine only. Pick your "
                              "microphone and say something: the bar should move."))
        layout.addLayout(form)
        layout.addWidget(self.mic_message)
        layout.addStretch(1)
        return page

    def _enroll_page(self) -> QWidget:
        page = QWidget()
        self.enroll = EnrollWidget(self.controller, page)
        layout = QVBoxLayout(page)
        layout.addWidget(hint("Read a few phrases so Jarvis knows who is speaking. Only a voice signature "
                              "is kept, never the recording. You can also do this later in Settings."))
        layout.addWidget(self.enroll)
        layout.addStretch(1)
        return page

    def _voice_page(self) -> QWidget:
        page = QWidget()
        self.presets = QButtonGroup(page)
        layout = QVBoxLayout(page)
        layout.addWidget(hint("Jarvis speaks with the first voice that works on this machine and falls "
                              "back to the next one. You can change this later in Settings."))
        engines = self.controller.settings.tts.engines
        for i, (key, label, order) in enumerate(PRESETS):
            button = QRadioButton(label)
            button.setObjectName(key)
            self.presets.addButton(button, i)
            layout.addWidget(button)
            button.setChecked(order == engines or (i == 0 and self.presets.checkedButton() is None))
        self.csm_voice = QComboBox()
        self.csm_voice.addItem("CSM speaker (no cloned voice)", "")
        for name in sorted(self.controller.settings.tts.voices):
            self.csm_voice.addItem(f"{name} (cloned)", name)
        self.csm_voice.setCurrentIndex(max(0, self.csm_voice.findData(self.controller.settings.tts.csm.voice)))
        form = QFormLayout()
        form.addRow("CSM voice:", self.csm_voice)
        layout.addLayout(form)
        layout.addStretch(1)
        return page

    # -- navigation ----------------------------------------------------------------------------------
    def go(self, index: int) -> None:
        index = max(0, min(index, self.pages.count() - 1))
        if self.enroll.busy and index != 1:
            show_message(self.message, "Wait for the enrollment to finish, or press Stop.", error=True)
            return
        show_message(self.message, "")
        self.pages.setCurrentIndex(index)
        self.title.setText(TITLES[index])
        steps = [f"<b>{step}</b>" if i == index else f"<span style='{HINT_STYLE}'>{step}</span>"
                 for i, step in enumerate(STEPS)]
        self.steps.setText("  ›  ".join(steps))
        self.back_button.setEnabled(index > 0)
        self.next_button.setText("Finish" if index == self.pages.count() - 1 else "Next")
        if index == 0:
            self._listen()
        else:
            self.tap.stop()

    def _next(self) -> None:
        if self.pages.currentIndex() == self.pages.count() - 1:
            self.finish()
        else:
            self.go(self.pages.currentIndex() + 1)

    def _listen(self) -> None:
        show_message(self.mic_message, "")
        self.meter.setValue(0)
        if self.isVisible() and self.pages.currentIndex() == 0:
            self.tap.start(combo_value(self.device))

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not event.spontaneous() and self.pages.currentIndex() == 0:
            self._listen()

    # -- the end ----------------------------------------------------------------------------------------
    def choices(self) -> Settings:
        settings = copy.deepcopy(self.controller.settings)
        settings.audio.input_device = combo_value(self.device)
        checked = self.presets.checkedId()
        if checked >= 0:
            settings.tts.engines = list(PRESETS[checked][2])
        settings.tts.csm.voice = self.csm_voice.currentData() or ""
        settings.ui.first_run_done = True
        return settings

    def finish(self) -> None:
        self._save(self.choices())

    def skip(self) -> None:
        settings = copy.deepcopy(self.controller.settings)
        settings.ui.first_run_done = True
        self._save(settings)

    def _save(self, settings: Settings) -> None:
        if self.enroll.busy:
            self.enroll.cancel()
        try:
            self.controller.apply_settings(settings)
        except OSError as exc:
            show_message(self.message, f"Could not save the settings ({exc.strerror or exc}).", error=True)
            return
        self.accept()

    def done(self, result: int) -> None:
        self.tap.stop()
        if self.enroll.state in ("waiting", "recording"):
            self.enroll.cancel()
        super().done(result)
