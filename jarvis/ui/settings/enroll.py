"""Enroll a person: read prompted phrases aloud while a level meter and per-phrase progress show.

``EnrollWidget`` records one take per phrase from the one microphone stream (``Recorder``), then
stores them through the core enrollment (``jarvis.speakers.enroll``) on a pool thread. It is used by
the settings dialog (inside ``EnrollDialog``) and by the first-run guide.
"""
from __future__ import annotations

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QGridLayout, QHBoxLayout, QLabel, QLineEdit,
                               QProgressBar, QPushButton, QVBoxLayout, QWidget)

from jarvis.errors import BadInput
from jarvis.speakers.enroll import DEFAULT_PHRASES
from jarvis.speakers.store import SpeakerStore
from jarvis.ui.settings import speaker_work
from jarvis.ui.settings.common import message_label, show_message
from jarvis.ui.settings.mic import LevelMeter, Recorder
from jarvis.ui.settings.workers import run_async


class EnrollWidget(QWidget):
    enrolled = Signal(str, int)     # (name, samples stored)
    phrase_started = Signal(int)    # recording of phrase N (0-based) began

    def __init__(self, controller, parent: QWidget | None = None, phrases=DEFAULT_PHRASES,
                 phrase_seconds: float = 4.0, gap_s: float = 1.0):
        super().__init__(parent)
        self.controller = controller
        self.phrases = list(phrases)
        self.phrase_seconds = phrase_seconds
        self.gap_s = gap_s              # time to read the next phrase before its recording starts
        self.state = "idle"             # idle | waiting | recording | saving | done
        self.index = -1                 # the phrase being read
        self.takes: list = []
        self.recorder = Recorder(controller, self)
        self.recorder.level.connect(self._on_level)
        self.recorder.progress.connect(self._on_progress)
        self.recorder.take_done.connect(self._on_take)
        self.recorder.failed.connect(self._fail)

        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("Name, e.g. Alice")
        self.start_button = QPushButton("Start recording")
        self.start_button.clicked.connect(self.toggle)
        self.name_edit.returnPressed.connect(self.start)
        name_row = QHBoxLayout()
        name_row.addWidget(QLabel("Name:"))
        name_row.addWidget(self.name_edit, 1)
        name_row.addWidget(self.start_button)

        self.prompt = QLabel("Type the name, press Start, then read each phrase aloud when it is highlighted.")
        self.prompt.setWordWrap(True)
        self.phrase_grid = QGridLayout()
        self.phrase_grid.setColumnStretch(0, 1)
        self.meter = LevelMeter()
        self.message = message_label()

        layout = QVBoxLayout(self)
        layout.addLayout(name_row)
        layout.addWidget(self.prompt)
        layout.addLayout(self.phrase_grid)
        level_row = QHBoxLayout()
        level_row.addWidget(QLabel("Level:"))
        level_row.addWidget(self.meter, 1)
        layout.addLayout(level_row)
        layout.addWidget(self.message)
        self._build_phrases()

    # -- phrases ---------------------------------------------------------------------------------
    def _build_phrases(self) -> None:
        while self.phrase_grid.count():
            item = self.phrase_grid.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.phrase_labels, self.phrase_bars = [], []
        for row, phrase in enumerate(self.phrases):
            label = QLabel(f"{row + 1}. “{phrase}”")
            label.setWordWrap(True)
            bar = QProgressBar()
            bar.setRange(0, 100)
            bar.setValue(0)
            bar.setFixedWidth(90)
            bar.setFormat("%p%")
            self.phrase_grid.addWidget(label, row, 0)
            self.phrase_grid.addWidget(bar, row, 1)
            self.phrase_labels.append(label)
            self.phrase_bars.append(bar)

    def _highlight(self, index: int) -> None:
        for i, label in enumerate(self.phrase_labels):
            font = label.font()
            font.setBold(i == index)
            label.setFont(font)

    # -- flow ------------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.state in ("waiting", "recording", "saving")

    def toggle(self) -> None:
        if self.state in ("waiting", "recording"):
            self.cancel()
        else:
            self.start()

    def start(self) -> None:
        if self.busy:
            return
        try:
            name = SpeakerStore().check_add(self.name_edit.text())
        except BadInput as exc:
            show_message(self.message, exc.message, error=True)
            return
        if len(self.phrase_labels) != len(self.phrases):
            self._build_phrases()
        for bar in self.phrase_bars:
            bar.setValue(0)
        self.name = name
        self.takes = []
        show_message(self.message, "")
        self.name_edit.setEnabled(False)
        self.start_button.setText("Stop")
        self.recorder.open()
        self._next(0)

    def cancel(self) -> None:
        self.recorder.close()
        if self.state in ("waiting", "recording"):
            show_message(self.message, "Stopped; nothing was enrolled.")
        self._reset()

    def _reset(self) -> None:
        self.state, self.index = "idle", -1
        self._highlight(-1)
        self.name_edit.setEnabled(True)
        self.start_button.setEnabled(True)
        self.start_button.setText("Start recording")
        self.meter.setValue(0)

    def _next(self, index: int) -> None:
        if index >= len(self.phrases):
            self._save()
            return
        self.state, self.index = "waiting", index
        self._highlight(index)
        self.prompt.setText(f"Get ready to read phrase {index + 1} of {len(self.phrases)}…")
        QTimer.singleShot(int(self.gap_s * 1000), lambda: self._record(index))

    def _record(self, index: int) -> None:
        if self.state != "waiting" or self.index != index:
            return  # stopped meanwhile
        self.state = "recording"
        self.prompt.setText(f"Read phrase {index + 1} of {len(self.phrases)} aloud now.")
        self.recorder.record(self.phrase_seconds)
        self.phrase_started.emit(index)

    def _on_level(self, block) -> None:
        self.meter.feed(block)

    def _on_progress(self, fraction: float) -> None:
        if self.state == "recording":
            self.phrase_bars[self.index].setValue(int(fraction * 100))

    def _on_take(self, samples) -> None:
        if self.state != "recording":
            return
        self.takes.append(samples)
        self._next(self.index + 1)

    def _save(self) -> None:
        self.recorder.close()
        self.state = "saving"
        self._highlight(-1)
        self.start_button.setEnabled(False)
        self.prompt.setText("Learning the voice…")
        name, takes, phrases, seconds = self.name, list(self.takes), list(self.phrases), self.phrase_seconds
        encoder = self.controller.speaker_encoder
        run_async(lambda: speaker_work.enroll(encoder(), name, takes, phrases, seconds), self._saved, self._fail,
                  self)

    def _saved(self, count: int) -> None:
        self._reset()
        self.state = "done"
        self.prompt.setText("Done. Enroll someone else, or close this window.")
        self.name_edit.clear()
        show_message(self.message, f"Enrolled {self.name} with {count} recordings.", ok=True)
        self.enrolled.emit(self.name, count)

    def _fail(self, line: str) -> None:
        self.recorder.close()
        self._reset()
        self.prompt.setText("Press Start to try again.")
        show_message(self.message, line, error=True)

    def hideEvent(self, event) -> None:
        if self.state in ("waiting", "recording"):
            self.cancel()
        super().hideEvent(event)


class EnrollDialog(QDialog):
    """The enroll widget in its own window, with a Close button."""

    def __init__(self, controller, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Enroll a voice")
        self.widget = EnrollWidget(controller, self)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.widget)
        layout.addWidget(buttons)
        self.setMinimumWidth(560)

    def done(self, result: int) -> None:
        if self.widget.state in ("waiting", "recording"):
            self.widget.cancel()
        super().done(result)

