"""Small helpers shared by the settings tabs and the first-run guide."""
from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel, QWidget

ERROR_STYLE = "color: #b3261e;"
OK_STYLE = "color: #1e7b34;"
HINT_STYLE = "color: #5f6368;"


def field_with_buttons(field: QWidget, *buttons: QWidget) -> QHBoxLayout:
    """A field that takes the row's width, with its buttons after it."""
    row = QHBoxLayout()
    row.addWidget(field, 1)
    for button in buttons:
        row.addWidget(button)
    return row


def wrapping_label(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    return label


def message_label() -> QLabel:
    """A one-line (wrapping) message under a form: errors in red, confirmations in green."""
    label = QLabel()
    label.setWordWrap(True)
    label.setVisible(False)
    return label


def show_message(label: QLabel, text: str, error: bool = False, ok: bool = False) -> None:
    label.setText(text)
    label.setStyleSheet(ERROR_STYLE if error else OK_STYLE if ok else "")
    label.setVisible(bool(text))


def hint(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setStyleSheet(HINT_STYLE)
    return label


def select_data(combo: QComboBox, value: str, missing_label: str | None = None) -> None:
    """Select the item whose data is ``value``; an editable combo shows unknown values as text,
    a fixed one gets an item for it (``missing_label`` or the value itself)."""
    index = combo.findData(value)
    if index < 0 and combo.isEditable():
        index = combo.findText(value)
        if index < 0:
            combo.setEditText(value)
            return
    if index < 0:
        combo.addItem(missing_label or value, value)
        index = combo.count() - 1
    combo.setCurrentIndex(index)


def combo_value(combo: QComboBox) -> str:
    """The data of the chosen item; for an editable combo, what is typed (or the item's data)."""
    if combo.isEditable():
        text = combo.currentText().strip()
        index = combo.findText(text)
        if index >= 0 and combo.itemData(index) is not None:
            return str(combo.itemData(index))
        return text
    data = combo.currentData()
    return "" if data is None else str(data)


def align_forms(*forms: QFormLayout) -> None:
    """Give the label columns of several forms (one per group box) the same width, so fields line up."""
    labels = []
    for form in forms:
        for row in range(form.rowCount()):
            item = form.itemAt(row, QFormLayout.ItemRole.LabelRole)
            if item is not None and item.widget() is not None:
                labels.append(item.widget())
    width = max((label.sizeHint().width() for label in labels), default=0)
    for label in labels:
        label.setMinimumWidth(width)


def spin(low: float, high: float, step: float, decimals: int = 2, suffix: str = "") -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setMaximumWidth(110)
    box.setRange(low, high)
    box.setSingleStep(step)
    box.setDecimals(decimals)
    if suffix:
        box.setSuffix(suffix)
    return box
