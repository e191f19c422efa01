"""Microphone audio for the windows: a level meter and a tap on the microphone.

``MicTap`` forwards 16 kHz mono int16 blocks to the GUI thread through its ``block`` signal. The model host owns
the microphone (``Controller.add_tap``): the voice loop's stream when it listens on that device, else the host's
shared capture (first run, another device picked); a tap goes on through a listener restart.
"""
from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QProgressBar


def block_level(block: np.ndarray) -> float:
    """0..1 loudness of an int16 block on a -60..0 dBFS scale."""
    if block.size == 0:
        return 0.0
    rms = float(np.sqrt(np.mean((block.astype(np.float32) / 32768.0) ** 2)))
    if rms <= 1e-6:
        return 0.0
    return min(1.0, max(0.0, (20 * math.log10(rms) + 60) / 60))


class MicTap(QObject):
    block = Signal(object)      # int16 numpy block, delivered on the GUI thread
    failed = Signal(str)        # the microphone could not open or was lost: one line

    def __init__(self, controller, parent: QObject | None = None):
        super().__init__(parent)
        self.controller = controller
        self.active = False

    def start(self, device: str | None = None) -> None:
        """Start delivering blocks from ``device`` (None = the input device in the settings)."""
        self.stop()
        self.active = True
        self.controller.add_tap(self._on_block, device, self._on_failed)

    def stop(self) -> None:
        if self.active:
            self.active = False
            self.controller.remove_tap(self._on_block)

    # capture thread
    def _on_block(self, block) -> None:
        try:
            self.block.emit(block)
        except RuntimeError:  # this tap's window is gone; stop() follows
            pass

    def _on_failed(self, message: str) -> None:
        try:
            self.failed.emit(message)
        except RuntimeError:
            pass


class LevelMeter(QProgressBar):
    """Live input level: jumps up at once, falls back smoothly."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setRange(0, 100)
        self.setValue(0)
        self.setTextVisible(False)
        self.setFixedHeight(12)
        self.setToolTip("Microphone level")
        self.peak = 0.0             # loudest level seen since reset_peak()

    def feed(self, block: np.ndarray) -> None:
        level = block_level(block)
        self.peak = max(self.peak, level)
        shown = max(level, self.value() / 100 * 0.85)
        self.setValue(int(round(shown * 100)))

    def reset_peak(self) -> None:
        self.peak = 0.0


class Recorder(QObject):
    """Takes of a given length from a ``MicTap``: ``open()``, then ``record(seconds)`` once or more, ``close()``."""

    level = Signal(object)      # every block while open (for a level meter)
    progress = Signal(float)    # 0..1 of the current take
    take_done = Signal(object)  # float32 16 kHz mono samples in [-1, 1]
    failed = Signal(str)

    RATE = 16000
    NO_AUDIO_S = 5.0    # a take may run this much longer than its length before it fails

    def __init__(self, controller, parent: QObject | None = None):
        super().__init__(parent)
        self.tap = MicTap(controller, self)
        self.tap.block.connect(self._on_block)
        self.tap.failed.connect(self._on_failed)
        self._need = 0
        self._blocks: list[np.ndarray] = []
        self._got = 0
        self._watchdog = QTimer(self)           # a take that gets no audio fails instead of waiting forever
        self._watchdog.setSingleShot(True)
        self._watchdog.timeout.connect(self._no_audio)

    @property
    def is_open(self) -> bool:
        return self.tap.active

    @property
    def recording(self) -> bool:
        return self._need > 0

    def open(self, device: str | None = None) -> None:
        self.tap.start(device)

    def close(self) -> None:
        self.cancel_take()
        self.tap.stop()

    def record(self, seconds: float) -> None:
        self._blocks, self._got = [], 0
        self._need = max(1, int(round(seconds * self.RATE)))
        self._watchdog.start(int((seconds + self.NO_AUDIO_S) * 1000))

    def cancel_take(self) -> None:
        self._need, self._blocks, self._got = 0, [], 0
        self._watchdog.stop()

    def _no_audio(self) -> None:
        if self.recording:
            self._on_failed("The microphone delivered no audio. Check it is connected (or your audio server "
                            "is running) and pick it on the Audio tab.")

    def _on_block(self, block: np.ndarray) -> None:
        if not self.tap.active:
            return
        self.level.emit(block)
        if not self._need:
            return
        self._blocks.append(block)
        self._got += block.size
        self.progress.emit(min(1.0, self._got / self._need))
        if self._got >= self._need:
            samples = np.concatenate(self._blocks)[: self._need].astype(np.float32) / 32768.0
            self.cancel_take()
            self.take_done.emit(samples)

    def _on_failed(self, message: str) -> None:
        self.cancel_take()
        self.tap.stop()
        self.failed.emit(message)
