"""The Qt binding must not leak references to None/True/False (PySide6 6.12.0 on Python 3.11 did:
every void call and every signal emit took one away, and the tray app aborted with
"Fatal Python error: bool_dealloc" after a few minutes of level-meter updates)."""
import sys

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel


class Emitter(QObject):
    changed = Signal(int)


def test_signals_and_void_calls_keep_none_and_bools_alive(qapp):
    label, emitter, seen = QLabel(), Emitter(), []
    emitter.changed.connect(seen.append)
    before = {obj: sys.getrefcount(obj) for obj in (None, True, False)}
    for i in range(20000):
        label.setText("level")
        emitter.changed.emit(i)
    qapp.processEvents()
    after = {obj: sys.getrefcount(obj) for obj in (None, True, False)}
    assert len(seen) == 20000
    for obj in before:
        assert after[obj] - before[obj] > -100, (obj, before[obj], after[obj])
