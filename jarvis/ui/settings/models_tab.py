"""Models tab: the performance preset, speech-to-text model, device, beam and end of turn, the CSM model, device and
precision, speaker threshold."""
from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QPushButton,
                               QSpinBox, QVBoxLayout, QWidget)

from jarvis import presets
from jarvis.config import Settings
from jarvis.errors import BadInput
from jarvis.ui.settings.common import align_forms, combo_value, hint, select_data, spin

STT_MODELS = [("tiny.en (bundled, offline)", "tiny.en"), ("base.en", "base.en"), ("small.en", "small.en"),
              ("medium.en", "medium.en"), ("large-v3", "large-v3"), ("distil-large-v3", "distil-large-v3")]
STT_DEVICES = ["cpu", "cuda", "auto"]
STT_COMPUTE = ["int8", "int8_float16", "float16", "float32", "default"]
END_OF_TURN = [("by the end-of-turn model (Smart Turn)", "model"), ("by silence alone", "silence")]
CSM_MODELS = [("sesame/csm-1b", "sesame/csm-1b")]
CSM_DEVICES = [("auto (CUDA, then MPS, then CPU)", "auto"), ("cuda", "cuda"), ("mps", "mps"), ("cpu", "cpu")]
CSM_DTYPES = [("auto (bfloat16 where supported)", "auto"), ("bfloat16", "bfloat16"), ("float16", "float16"),
              ("float32", "float32")]
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def _combo(items, editable: bool = False) -> QComboBox:
    combo = QComboBox()
    combo.setEditable(editable)
    for item in items:
        label, value = item if isinstance(item, tuple) else (item, item)
        combo.addItem(label, value)
    return combo


def _looks_like_path(value: str) -> bool:
    return value.startswith(("/", "~", ".")) or "\\" in value or Path(value).expanduser().is_dir()


class ModelsTab(QWidget):
    def __init__(self, controller, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        self.preset = _combo([(presets.LABELS[name], name) for name in presets.NAMES])
        self.preset.setToolTip("Low latency, balanced or high quality; Custom keeps your own values")
        performance = QGroupBox("Performance")
        form = QFormLayout(performance)
        forms = [form]
        form.addRow("Preset:", self.preset)
        form.addRow("", hint("A preset sets the speech-to-text model and beam, the end of a command (here and "
                             "Audio → End of speech after), the voice engines' order (Backends) and the microphone "
                             "block size. Editing one of them makes it Custom."))

        self.stt_model = _combo(STT_MODELS, editable=True)
        self.stt_model.setToolTip("A faster-whisper model name, or a local CTranslate2 model folder")
        self.stt_device = _combo(STT_DEVICES, editable=True)
        self.stt_compute = _combo(STT_COMPUTE, editable=True)
        self.beam_size = QSpinBox()
        self.beam_size.setRange(1, 20)
        self.beam_size.setMaximumWidth(110)
        self.beam_size.setToolTip("1 = greedy (fastest); larger searches more and is slower")
        self.end_of_turn = _combo(END_OF_TURN)
        self.end_of_turn.setToolTip("How Jarvis knows a command is over: a model hears whether the sentence was "
                                    "finished (a pause mid-sentence is not the end), or any pause is")
        self.short_window = QCheckBox("Short window first (faster; what Whisper is unsure of gets the full window)")
        self.short_window.setToolTip("A command is first decoded on a 10 s window (~0.16 s on 2 cores instead of "
                                     "~0.43 s); the full 30 s window decides when that pass is unsure")
        self.prepare_replies = QCheckBox("Answer ahead: the time, the date or the status is ready as the command ends")
        self.prepare_replies.setToolTip("While the last pause of a command is still being heard, an answer that only "
                                        "reads is worked out and its first sentence synthesized (Piper)")
        stt = QGroupBox("Speech to text")
        form = QFormLayout(stt)
        forms.append(form)
        form.addRow("Model:", self._with_folder(self.stt_model, "Speech-to-text model folder"))
        form.addRow("Device:", self.stt_device)
        form.addRow("Compute type:", self.stt_compute)
        form.addRow("Beam size:", self.beam_size)
        form.addRow("", self.short_window)
        form.addRow("End of a command:", self.end_of_turn)
        form.addRow("", self.prepare_replies)

        self.csm_model = _combo(CSM_MODELS, editable=True)
        self.csm_model.setToolTip("A Hugging Face model id (from the local cache) or a model folder")
        self.csm_device = _combo(CSM_DEVICES, editable=True)
        self.csm_dtype = _combo(CSM_DTYPES)
        self.allow_download = QCheckBox("Allow downloading the weights from Hugging Face (about 4.5 GB)")
        csm = QGroupBox("CSM voice model")
        form = QFormLayout(csm)
        forms.append(form)
        form.addRow("Model:", self._with_folder(self.csm_model, "CSM model folder"))
        form.addRow("Device:", self.csm_device)
        form.addRow("Precision:", self.csm_dtype)
        form.addRow("", self.allow_download)

        self.threshold = spin(0.0, 1.0, 0.01)
        self.threshold.setToolTip("Cosine similarity needed to name a speaker; below it they are 'unknown'")
        speakers = QGroupBox("Speaker identification")
        form = QFormLayout(speakers)
        form.addRow("Match threshold:", self.threshold)
        align_forms(*forms, form)

        layout = QVBoxLayout(self)
        for box in (performance, stt, csm, speakers):
            layout.addWidget(box)
        layout.addStretch(1)

    def _with_folder(self, combo: QComboBox, title: str) -> QWidget:
        button = QPushButton("Folder…")
        button.clicked.connect(lambda: self._pick_folder(combo, title))
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(combo, 1)
        layout.addWidget(button)
        return row

    def _pick_folder(self, combo: QComboBox, title: str) -> None:
        folder = QFileDialog.getExistingDirectory(self, title, str(Path.home()))
        if folder:
            combo.setEditText(folder)

    def load(self, settings: Settings) -> None:
        listen, csm = settings.listen, settings.tts.csm
        select_data(self.preset, settings.preset)
        select_data(self.stt_model, listen.stt_model)
        self.beam_size.setValue(listen.beam_size)
        self.short_window.setChecked(listen.stt_short_window)
        select_data(self.end_of_turn, listen.end_of_turn)
        self.prepare_replies.setChecked(settings.tts.prepare_replies)
        select_data(self.stt_device, listen.stt_device)
        select_data(self.stt_compute, listen.stt_compute_type)
        select_data(self.csm_model, csm.model)
        select_data(self.csm_device, csm.device)
        select_data(self.csm_dtype, csm.dtype)
        self.allow_download.setChecked(csm.allow_download)
        self.threshold.setValue(settings.speakers.threshold)

    def apply_to(self, settings: Settings) -> None:
        stt_model, csm_model = combo_value(self.stt_model), combo_value(self.csm_model)
        stt_device, csm_device = combo_value(self.stt_device), combo_value(self.csm_device)
        for what, value in (("speech-to-text model", stt_model), ("CSM model", csm_model)):
            if not value:
                raise BadInput("bad_model", f"Give the {what} (Models tab).")
            if _looks_like_path(value) and not Path(value).expanduser().is_dir():
                raise BadInput("bad_model", f"The {what} folder {value} does not exist (Models tab).")
        for what, value in (("speech-to-text", stt_device), ("CSM", csm_device)):
            if not _DEVICE.match(value):
                raise BadInput("bad_device", f"The {what} device must be auto, cpu, cuda, cuda:N or mps "
                                             f"(got {value!r}; Models tab).")
        compute = combo_value(self.stt_compute)
        if not re.fullmatch(r"[a-z0-9_]+", compute):
            raise BadInput("bad_compute", f"Unknown compute type {compute!r} (Models tab); e.g. int8 or float16.")
        listen, csm = settings.listen, settings.tts.csm
        listen.stt_model, listen.stt_device, listen.stt_compute_type = stt_model, stt_device, compute
        listen.beam_size, listen.end_of_turn = self.beam_size.value(), combo_value(self.end_of_turn)
        listen.stt_short_window = self.short_window.isChecked()
        settings.tts.prepare_replies = self.prepare_replies.isChecked()
        settings.preset = combo_value(self.preset)  # the dialog checks it against the fields (jarvis.presets)
        csm.model, csm.device, csm.dtype = csm_model, csm_device, combo_value(self.csm_dtype)
        csm.allow_download = self.allow_download.isChecked()
        settings.speakers.threshold = round(self.threshold.value(), 2)
