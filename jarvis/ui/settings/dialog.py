"""The settings window: Voices, Backends, Brain, Audio and Models tabs; OK / Apply / Cancel.

A performance preset chosen on the Models tab fills in the fields it sets, on every tab; editing one of them
afterwards saves the settings as Custom.

OK and Apply build a new ``Settings`` (a deep copy of the controller's, with every tab's edits) and
hand it to ``Controller.apply_settings``, which saves it atomically and applies it. A bad value is one
line at the bottom and nothing is saved. Cancel drops the edits. A typed-but-unsaved API key is
(Backends: the OpenAI TTS key; Brain: the LLM server key) is stored in the OS keyring first, off the GUI
thread; if that fails, nothing is saved either.
"""
from __future__ import annotations

import copy

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTabWidget, QVBoxLayout, QWidget

from jarvis import presets
from jarvis.config import Settings
from jarvis.errors import BadInput
from jarvis.ui.settings.audio_tab import AudioTab
from jarvis.ui.settings.backends_tab import BackendsTab
from jarvis.ui.settings.brain_tab import BrainTab
from jarvis.ui.settings.common import combo_value, message_label, show_message
from jarvis.ui.settings.models_tab import ModelsTab
from jarvis.ui.settings.voices_tab import VoicesTab


# The preset settings the tabs show; the others (block size, end-of-turn silences) only the preset sets here.
SHOWN_PRESET_KEYS = {"listen.stt_model", "listen.beam_size", "listen.end_of_turn", "listen.post_speech_silence",
                     "tts.engines"}


class SettingsDialog(QDialog):
    def __init__(self, controller, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        self.setWindowTitle("Jarvis settings")
        self.voices_tab = VoicesTab(controller, self.draft)
        self.backends_tab = BackendsTab(controller)
        self.brain_tab = BrainTab(controller)
        self.audio_tab = AudioTab(controller)
        self.models_tab = ModelsTab(controller)
        self.tabs = QTabWidget()
        for tab, title in ((self.voices_tab, "Voices"), (self.backends_tab, "Backends"), (self.brain_tab, "Brain"),
                           (self.audio_tab, "Audio"), (self.models_tab, "Models")):
            self.tabs.addTab(tab, title)
        self.message = message_label()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Apply
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.apply_button = self.buttons.button(QDialogButtonBox.StandardButton.Apply)
        self.cancel_button = self.buttons.button(QDialogButtonBox.StandardButton.Cancel)
        self.ok_button.clicked.connect(lambda: self.commit(close=True))
        self.apply_button.clicked.connect(lambda: self.commit(close=False))
        self.cancel_button.clicked.connect(self.reject)
        self.models_tab.preset.activated.connect(lambda _i: self.choose_preset(combo_value(self.models_tab.preset)))
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.resize(680, 600)
        self.reload()

    @property
    def _tabs(self):
        return (self.voices_tab, self.backends_tab, self.brain_tab, self.audio_tab, self.models_tab)

    @property
    def key_boxes(self):
        return (self.backends_tab.key_box, self.brain_tab.key_box)

    def reload(self) -> None:
        """Show the settings in effect (every time the window opens)."""
        settings = self.controller.settings
        for tab in self._tabs:
            tab.load(settings)
        show_message(self.message, "")

    def draft(self) -> Settings:
        """A new Settings: the controller's with every tab's edits; BadInput (one line) for a bad value. A preset
        whose shown fields were all kept gives the rest of its values too; one that was edited becomes Custom."""
        settings = copy.deepcopy(self.controller.settings)
        for tab in self._tabs:
            tab.apply_to(settings)
        if settings.preset in presets.PRESETS:
            if presets.differences(settings, settings.preset, SHOWN_PRESET_KEYS):
                settings.preset = presets.CUSTOM
            else:
                presets.apply(settings, settings.preset)
        return settings

    def choose_preset(self, name: str) -> None:
        """Show preset ``name``'s values in the fields it sets (nothing is saved until OK or Apply)."""
        if name not in presets.PRESETS:
            return
        try:
            settings = self.draft()
        except BadInput:  # a bad value elsewhere is reported on OK / Apply; the preset still shows
            settings = copy.deepcopy(self.controller.settings)
        presets.apply(settings, name)
        self.models_tab.load(settings)
        self.audio_tab.post_speech_silence.setValue(settings.listen.post_speech_silence)
        self.backends_tab.show_engines(settings.tts.engines)

    def commit(self, close: bool) -> bool:
        """Validate, store the typed API keys, save and apply. False (with one line shown) when it failed."""
        try:
            settings = self.draft()
        except BadInput as exc:
            show_message(self.message, exc.message, error=True)
            return False
        self._set_busy(True)
        self._store_keys([box for box in self.key_boxes if box.pending], settings, close)
        return True

    def _store_keys(self, boxes: list, settings: Settings, close: bool) -> None:
        """Store each typed key in turn, then save; the first failure stops it (nothing saved)."""
        if not boxes:
            self._set_busy(False)
            self._finish(settings, close)
            return
        box = boxes[0]

        def stored(ok: bool) -> None:
            if ok:
                self._store_keys(boxes[1:], settings, close)
                return
            self._set_busy(False)
            show_message(self.message, f"The {box.what} was not stored, so nothing was saved: {box.status.text()}",
                         error=True)

        box.save_key(then=stored)

    def _finish(self, settings: Settings, close: bool) -> None:
        try:
            self.controller.apply_settings(settings)
        except OSError as exc:
            show_message(self.message, f"Could not save the settings ({exc.strerror or exc}).", error=True)
            return
        show_message(self.message, "" if close else "Saved and applied.", ok=True)
        if close:
            self.accept()

    def _set_busy(self, busy: bool) -> None:
        for button in (self.ok_button, self.apply_button):
            button.setEnabled(not busy)

    def showEvent(self, event) -> None:
        if not event.spontaneous():
            self.reload()
        super().showEvent(event)

    def done(self, result: int) -> None:
        self.voices_tab.stop()
        super().done(result)
