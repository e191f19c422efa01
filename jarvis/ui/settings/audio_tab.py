"""Audio tab: microphone and speaker, echo cancellation, wake-word sensitivity, end-of-speech timing, follow-ups."""
from __future__ import annotations

import logging

from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QGroupBox, QPushButton, QVBoxLayout, QWidget

from jarvis.config import Settings
from jarvis.errors import JarvisError
from jarvis.ui.settings.common import align_forms, combo_value, hint, select_data, spin

log = logging.getLogger(__name__)

DEFAULT = "System default"


def device_names(kind: str, devices: list[dict] | None = None) -> list[str]:
    """Names of the input (or output) devices in ``devices`` (default: what a fresh PortAudio sees now, devices
    plugged in since Jarvis started included); empty when they cannot be listed."""
    from jarvis.audio.devices import scan
    try:
        devices = scan() if devices is None else devices
    except JarvisError as exc:
        log.warning("cannot list audio devices: %s", exc)
        return []
    return list(dict.fromkeys(d["name"] for d in devices if d[f"max_{kind}_channels"] > 0))


def device_combo(kind: str, devices: list[dict] | None = None) -> QComboBox:
    combo = QComboBox()
    fill_devices(combo, kind, devices)
    return combo


def fill_devices(combo: QComboBox, kind: str, devices: list[dict] | None = None) -> None:
    """(Re)fill ``combo`` with the devices, keeping the one chosen (marked "not connected" if it is gone)."""
    chosen = combo.currentData() if combo.count() else None
    combo.clear()
    combo.addItem(DEFAULT, "")
    for name in device_names(kind, devices):
        combo.addItem(name, name)
    if chosen:
        select_device(combo, chosen)


def select_device(combo: QComboBox, name: str) -> None:
    select_data(combo, name, f"{name} (not connected)")


class AudioTab(QWidget):
    def __init__(self, controller, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        from jarvis.audio.devices import scan
        found = scan()   # one child process for both lists
        self.input_device = device_combo("input", found)
        self.output_device = device_combo("output", found)
        self.refresh_devices = QPushButton("Refresh")
        self.refresh_devices.setToolTip("List the devices again (one plugged in since the dialog opened)")
        self.refresh_devices.clicked.connect(self._refresh_devices)
        devices = QGroupBox("Devices")
        device_form = QFormLayout(devices)
        device_form.addRow("Microphone:", self.input_device)
        device_form.addRow("Speaker:", self.output_device)
        device_form.addRow("", self.refresh_devices)
        self.echo_cancellation = QCheckBox("Echo cancellation")
        self.echo_cancellation.setToolTip("Removes Jarvis's own voice from the microphone, so you can interrupt it "
                                          "on open speakers. Switch off only with headphones.")
        self.noise_suppression = QCheckBox("Noise suppression")
        self.noise_suppression.setToolTip("Quiets steady background noise (fans, hum); can dull quiet speech")
        self.pause_when_spoken_over = QCheckBox("Pause when spoken over (experimental)")
        self.pause_when_spoken_over.setToolTip("With echo cancellation: Jarvis goes quiet as soon as you talk over "
                                               "it; \"Jarvis…\" then cuts the reply, anything else lets it go on. "
                                               "On loud open speakers its own echo can pause it too.")
        self.echo_cancellation.toggled.connect(self.pause_when_spoken_over.setEnabled)
        device_form.addRow("", self.echo_cancellation)
        device_form.addRow("", self.pause_when_spoken_over)
        device_form.addRow("", self.noise_suppression)

        self.wake_sensitivity = spin(0.0, 1.0, 0.05)
        self.wake_sensitivity.setToolTip("Higher wakes more easily, but also on words that only sound like it")
        self.silero_sensitivity = spin(0.0, 1.0, 0.05)
        self.silero_sensitivity.setToolTip("How readily a sound counts as speech")
        self.post_speech_silence = spin(0.1, 5.0, 0.1, suffix=" s")
        self.post_speech_silence.setToolTip("Silence that ends a command")
        self.min_recording = spin(0.0, 5.0, 0.1, suffix=" s")
        self.min_recording.setToolTip("Shorter sounds are ignored")
        self.follow_up = spin(0.0, 30.0, 0.5, suffix=" s")
        self.follow_up.setToolTip("After a reply, a question asked within this time needs no \"Jarvis\" (0 = off)")
        listening = QGroupBox("Listening")
        form = QFormLayout(listening)
        form.addRow("Wake-word sensitivity:", self.wake_sensitivity)
        form.addRow("Speech detection sensitivity:", self.silero_sensitivity)
        form.addRow("End of speech after:", self.post_speech_silence)
        form.addRow("Shortest command:", self.min_recording)
        form.addRow("Listen for a follow-up:", self.follow_up)
        align_forms(device_form, form)

        layout = QVBoxLayout(self)
        layout.addWidget(devices)
        layout.addWidget(listening)
        layout.addWidget(hint("Changes on this tab (except the follow-up time) restart the listener when you press "
                              "OK or Apply."))
        layout.addStretch(1)

    def _refresh_devices(self) -> None:
        from jarvis.audio.devices import scan
        found = scan()
        fill_devices(self.input_device, "input", found)
        fill_devices(self.output_device, "output", found)

    def load(self, settings: Settings) -> None:
        select_device(self.input_device, settings.audio.input_device)
        select_device(self.output_device, settings.audio.output_device)
        listen = settings.listen
        self.wake_sensitivity.setValue(listen.wake_sensitivity)
        self.silero_sensitivity.setValue(listen.silero_sensitivity)
        self.post_speech_silence.setValue(listen.post_speech_silence)
        self.min_recording.setValue(listen.min_recording)
        self.follow_up.setValue(listen.follow_up_s)
        self.echo_cancellation.setChecked(settings.audio.echo_cancellation)
        self.noise_suppression.setChecked(settings.audio.noise_suppression)
        self.pause_when_spoken_over.setChecked(settings.audio.pause_when_spoken_over)
        self.pause_when_spoken_over.setEnabled(settings.audio.echo_cancellation)

    def apply_to(self, settings: Settings) -> None:
        settings.audio.input_device = combo_value(self.input_device)
        settings.audio.output_device = combo_value(self.output_device)
        listen = settings.listen
        listen.wake_sensitivity = round(self.wake_sensitivity.value(), 2)
        listen.silero_sensitivity = round(self.silero_sensitivity.value(), 2)
        listen.post_speech_silence = round(self.post_speech_silence.value(), 2)
        listen.min_recording = round(self.min_recording.value(), 2)
        listen.follow_up_s = round(self.follow_up.value(), 2)
        settings.audio.echo_cancellation = self.echo_cancellation.isChecked()
        settings.audio.noise_suppression = self.noise_suppression.isChecked()
        settings.audio.pause_when_spoken_over = self.pause_when_spoken_over.isChecked()
