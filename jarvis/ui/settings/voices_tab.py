"""Voices tab: the people Jarvis recognises (enroll, rename, delete, test) and the voice Jarvis speaks with."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QComboBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QInputDialog,
                               QLineEdit, QListWidget, QListWidgetItem, QMessageBox, QPushButton, QSpinBox,
                               QVBoxLayout, QWidget)

from jarvis.config import Settings
from jarvis.errors import BadInput, JarvisError
from jarvis.speakers.store import SpeakerStore
from jarvis.ui.settings import speaker_work
from jarvis.ui.settings.common import hint, message_label, show_message
from jarvis.ui.settings.enroll import EnrollDialog
from jarvis.ui.settings.mic import LevelMeter, Recorder
from jarvis.ui.settings.workers import run_async

CLIP_RATE = 24000   # CSM's rate: what the engine will read the clip at


class VoicesTab(QWidget):
    def __init__(self, controller, draft: Callable[[], Settings], parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        self.draft = draft                  # the settings as edited in the dialog (for Preview)
        self.voices: dict = {}              # tts.voices as edited here
        self.identify_seconds = 3.0
        self.enroll_dialog: EnrollDialog | None = None
        self.names: list[str] = []
        self.rename_dialog: QInputDialog | None = None
        self.confirm_box: QMessageBox | None = None
        layout = QVBoxLayout(self)
        layout.addWidget(self._people_box())
        layout.addWidget(self._voice_box())
        layout.addStretch(1)

    # -- people ------------------------------------------------------------------------------------
    def _people_box(self) -> QGroupBox:
        box = QGroupBox("People Jarvis recognises")
        self.people = QListWidget()
        self.people.setMinimumHeight(96)
        self.people.setMaximumHeight(150)
        self.people.currentItemChanged.connect(lambda *_: self._update_buttons())
        self.enroll_button = QPushButton("Enroll…")
        self.rename_button = QPushButton("Rename…")
        self.delete_button = QPushButton("Delete")
        self.identify_button = QPushButton("Test identification")
        self.enroll_button.clicked.connect(self.open_enroll)
        self.rename_button.clicked.connect(self.ask_rename)
        self.delete_button.clicked.connect(self.ask_delete)
        self.identify_button.clicked.connect(self.test_identification)
        buttons = QVBoxLayout()
        for button in (self.enroll_button, self.rename_button, self.delete_button, self.identify_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        row = QHBoxLayout()
        row.addWidget(self.people, 1)
        row.addLayout(buttons)
        self.id_meter = LevelMeter()
        self.id_meter.setVisible(False)
        self.people_message = message_label()
        self.recorder = Recorder(self.controller, self)
        self.recorder.level.connect(self.id_meter.feed)
        self.recorder.take_done.connect(self._identify_take)
        self.recorder.failed.connect(self._identify_failed)
        layout = QVBoxLayout(box)
        layout.addLayout(row)
        layout.addWidget(self.id_meter)
        layout.addWidget(self.people_message)
        return box

    def refresh_people(self) -> None:
        selected = self.selected_person()
        self.people.clear()
        store = SpeakerStore()
        self.names = store.names()
        for name in self.names:
            try:
                count = store.embedding_count(name)
            except JarvisError:
                count = 0
            item = QListWidgetItem(f"{name}  ·  {count} sample{'s' if count != 1 else ''}")
            item.setData(Qt.ItemDataRole.UserRole, name)
            self.people.addItem(item)
            if name == selected:
                self.people.setCurrentItem(item)
        if not self.people.count():
            item = QListWidgetItem("Nobody enrolled yet: press Enroll… and read a few phrases.")
            item.setFlags(Qt.ItemFlag.NoItemFlags)
            self.people.addItem(item)
        problems = store.problems()
        if problems:
            show_message(self.people_message, problems[0], error=True)
        self._update_buttons()

    def selected_person(self) -> str | None:
        item = self.people.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def select_person(self, name: str) -> None:
        for row in range(self.people.count()):
            if self.people.item(row).data(Qt.ItemDataRole.UserRole) == name:
                self.people.setCurrentRow(row)

    def _update_buttons(self) -> None:
        chosen = self.selected_person() is not None
        self.rename_button.setEnabled(chosen)
        self.delete_button.setEnabled(chosen)
        self.identify_button.setEnabled(bool(self.names) and not self.recorder.is_open)

    def open_enroll(self) -> None:
        if self.enroll_dialog is None:
            self.enroll_dialog = EnrollDialog(self.controller, self)
            self.enroll_dialog.widget.enrolled.connect(self._enrolled)
        self.enroll_dialog.show()
        self.enroll_dialog.raise_()

    def _enrolled(self, name: str, count: int) -> None:
        self.refresh_people()
        self.select_person(name)
        show_message(self.people_message, f"Enrolled {name}.", ok=True)

    def ask_rename(self) -> None:
        old = self.selected_person()
        if old is None:
            return
        dialog = QInputDialog(self)
        dialog.setWindowTitle("Rename")
        dialog.setLabelText(f"New name for {old}:")
        dialog.setTextValue(old)
        dialog.textValueSelected.connect(lambda new: self.rename(old, new))
        self.rename_dialog = dialog
        dialog.open()

    def rename(self, old: str, new: str) -> None:
        try:
            SpeakerStore().rename(old, new)
        except BadInput as exc:
            show_message(self.people_message, exc.message, error=True)
            return
        self.refresh_people()
        self.select_person(" ".join(new.split()))
        show_message(self.people_message, f"Renamed {old} to {' '.join(new.split())}.", ok=True)

    def ask_delete(self) -> None:
        name = self.selected_person()
        if name is None:
            return
        box = QMessageBox(QMessageBox.Icon.Question, "Delete voice",
                          f"Delete {name}'s voice signature? Jarvis will no longer recognise {name}.",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.button(QMessageBox.StandardButton.Yes).setText("Delete")
        box.button(QMessageBox.StandardButton.Yes).clicked.connect(lambda: self.delete(name))
        self.confirm_box = box
        box.open()

    def delete(self, name: str) -> None:
        try:
            SpeakerStore().remove(name)
        except BadInput as exc:
            show_message(self.people_message, exc.message, error=True)
            return
        self.refresh_people()
        show_message(self.people_message, f"Deleted {name}.", ok=True)

    def test_identification(self) -> None:
        self.id_meter.setVisible(True)
        self.id_meter.setValue(0)
        show_message(self.people_message, f"Listening for {self.identify_seconds:g} s: say something…")
        self.recorder.open()
        self.recorder.record(self.identify_seconds)
        self._update_buttons()

    def _identify_take(self, samples) -> None:
        self.recorder.close()
        self.id_meter.setVisible(False)
        show_message(self.people_message, "Comparing the voice…")
        threshold = self.controller.settings.speakers.threshold
        encoder = self.controller.speaker_encoder
        run_async(lambda: speaker_work.identify(encoder(), samples, threshold), self._identified,
                  self._identify_failed, self)

    def _identified(self, match) -> None:
        if match.known:
            text = f"Heard {match.name} (score {match.score:.2f})."
        elif match.nearest:
            text = f"Not recognised: closest is {match.nearest} (score {match.score:.2f}, needs " \
                   f"{self.controller.settings.speakers.threshold:.2f})."
        else:
            text = "Not recognised: nobody is enrolled yet."
        show_message(self.people_message, text, ok=match.known)
        self._update_buttons()

    def _identify_failed(self, line: str) -> None:
        self.recorder.close()
        self.id_meter.setVisible(False)
        show_message(self.people_message, line, error=True)
        self._update_buttons()

    # -- the voice Jarvis speaks with ---------------------------------------------------------------
    def _voice_box(self) -> QGroupBox:
        box = QGroupBox("Jarvis's voice (CSM)")
        self.voice_combo = QComboBox()
        self.voice_combo.currentIndexChanged.connect(lambda *_: self._update_voice_buttons())
        self.remove_voice_button = QPushButton("Remove")
        self.remove_voice_button.clicked.connect(self.remove_voice)
        voice_row = QHBoxLayout()
        voice_row.addWidget(self.voice_combo, 1)
        voice_row.addWidget(self.remove_voice_button)
        self.speaker_id = QSpinBox()
        self.speaker_id.setRange(0, 31)
        self.speaker_id.setMaximumWidth(110)
        self.speaker_id.setToolTip("CSM's built-in speaker; also used with a cloned voice")

        self.new_name = QLineEdit()
        self.new_name.setPlaceholderText("e.g. narrator")
        self.clip_edit = QLineEdit()
        self.clip_edit.setPlaceholderText("a 1–30 s WAV or FLAC of clear speech")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self.browse_clip)
        clip_row = QHBoxLayout()
        clip_row.addWidget(self.clip_edit, 1)
        clip_row.addWidget(browse)
        self.transcript = QLineEdit()
        self.transcript.setPlaceholderText("exactly what is said in the clip")
        self.add_voice_button = QPushButton("Add cloned voice")
        self.add_voice_button.clicked.connect(self.add_voice)
        self.voice_message = message_label()
        self.preview_button = QPushButton("Preview the voice")
        self.preview_button.clicked.connect(self.preview)
        self.preview_message = message_label()

        preview_row = QHBoxLayout()
        preview_row.addWidget(self.preview_button)
        preview_row.addWidget(self.preview_message, 1)
        preview_row.addStretch(0)
        add_row = QHBoxLayout()
        add_row.addWidget(self.voice_message, 1)
        add_row.addStretch(0)
        add_row.addWidget(self.add_voice_button)
        form = QFormLayout()
        form.addRow("Active voice:", voice_row)
        form.addRow("CSM speaker:", self.speaker_id)
        form.addRow("", preview_row)
        form.addRow(hint("Clone a voice from a short clip of someone speaking and its transcript:"))
        form.addRow("Name:", self.new_name)
        form.addRow("Clip:", clip_row)
        form.addRow("Transcript:", self.transcript)
        form.addRow("", add_row)
        box.setLayout(form)
        return box

    def _fill_voices(self, active: str) -> None:
        self.voice_combo.blockSignals(True)
        self.voice_combo.clear()
        self.voice_combo.addItem("CSM speaker (no cloned voice)", "")
        for name in sorted(self.voices):
            self.voice_combo.addItem(f"{name} (cloned)", name)
        if active and active not in self.voices:
            self.voice_combo.addItem(f"{active} (missing)", active)
        self.voice_combo.setCurrentIndex(max(0, self.voice_combo.findData(active)))
        self.voice_combo.blockSignals(False)
        self._update_voice_buttons()

    def _update_voice_buttons(self) -> None:
        self.remove_voice_button.setEnabled(bool(self.voice_combo.currentData()))

    def browse_clip(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Voice clip", str(Path.home()),
                                              "Audio (*.wav *.flac *.ogg);;All files (*)")
        if path:
            self.clip_edit.setText(path)

    def add_voice(self) -> None:
        from jarvis.speak.csm.voices import read_clip

        name, text = self.new_name.text().strip(), " ".join(self.transcript.text().split())
        clip_text = self.clip_edit.text().strip()
        problem = ("Give the new voice a name." if not name else
                   "Pick the voice clip." if not clip_text else
                   "Type what is said in the clip (its transcript)." if not text else "")
        if problem:
            show_message(self.voice_message, problem, error=True)
            return
        clip = Path(clip_text).expanduser().resolve()
        self.add_voice_button.setEnabled(False)
        show_message(self.voice_message, "Checking the clip…")
        run_async(lambda: read_clip(clip, CLIP_RATE), lambda _: self._voice_ok(name, clip, text),
                  self._voice_bad, self)

    def _voice_ok(self, name: str, clip: Path, text: str) -> None:
        self.add_voice_button.setEnabled(True)
        self.voices[name] = {"clip": str(clip), "text": text}
        self._fill_voices(name)
        for edit in (self.new_name, self.clip_edit, self.transcript):
            edit.clear()
        show_message(self.voice_message, f"Added voice {name}; press OK or Apply to keep it.", ok=True)

    def _voice_bad(self, line: str) -> None:
        self.add_voice_button.setEnabled(True)
        show_message(self.voice_message, line, error=True)

    def remove_voice(self) -> None:
        name = self.voice_combo.currentData()
        if name:
            self.voices.pop(name, None)
            self._fill_voices("")
            show_message(self.voice_message, f"Removed voice {name}; press OK or Apply to keep the change.")

    def preview(self) -> None:
        try:
            settings = self.draft()
        except BadInput as exc:
            show_message(self.preview_message, exc.message, error=True)
            return
        self.preview_button.setEnabled(False)
        show_message(self.preview_message, "Loading the voice and speaking…")
        run_async(lambda: self.controller.preview_voice(settings), self._previewed, self._preview_failed, self)

    def _previewed(self, line: str) -> None:
        self.preview_button.setEnabled(True)
        show_message(self.preview_message, line, ok=True)

    def _preview_failed(self, line: str) -> None:
        self.preview_button.setEnabled(True)
        show_message(self.preview_message, line, error=True)

    # -- settings ----------------------------------------------------------------------------------
    def load(self, settings: Settings) -> None:
        self.voices = copy.deepcopy(settings.tts.voices)
        self._fill_voices(settings.tts.csm.voice)
        self.speaker_id.setValue(settings.tts.csm.speaker_id)
        for label in (self.voice_message, self.preview_message, self.people_message):
            show_message(label, "")
        self.refresh_people()

    def apply_to(self, settings: Settings) -> None:
        settings.tts.voices = copy.deepcopy(self.voices)
        settings.tts.csm.voice = self.voice_combo.currentData() or ""
        settings.tts.csm.speaker_id = self.speaker_id.value()

    def stop(self) -> None:
        """The dialog closed: stop any recording."""
        if self.recorder.is_open:
            self.recorder.close()
            self.id_meter.setVisible(False)
            self._update_buttons()
