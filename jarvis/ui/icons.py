"""Tray and window icons, drawn at run time: one colour and mark per state, crisp at any size."""
from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap

from jarvis import paths

COLOURS = {
    "loading": "#8a8f98", "listening": "#2e9d5b", "follow_up": "#2f9dc1", "hearing": "#2f7de1", "thinking": "#8e5bd6",
    "speaking": "#159e9e", "muted": "#5a5f66", "degraded": "#d9961a", "error": "#d64545",
}


def colour(state: str) -> QColor:
    return QColor(COLOURS.get(state, COLOURS["loading"]))


def _pixmap(state: str, size: int) -> QPixmap:
    pm = QPixmap(size, size)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    s = size / 64.0
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(colour(state))
    p.drawEllipse(QRectF(2 * s, 2 * s, 60 * s, 60 * s))
    pen = QPen(QColor("white"), 7 * s, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap)
    p.setPen(pen)
    p.setBrush(Qt.BrushStyle.NoBrush)
    hook = QPainterPath(QPointF(38 * s, 15 * s))           # the "J"
    hook.lineTo(38 * s, 38 * s)
    hook.arcTo(QRectF(20 * s, 29 * s, 18 * s, 18 * s), 0, -180)
    p.drawPath(hook)
    if state == "muted":                                    # a slash through it
        p.setPen(QPen(QColor("white"), 5 * s, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
        p.drawLine(QPointF(14 * s, 50 * s), QPointF(50 * s, 14 * s))
    elif state in ("degraded", "error"):                    # a badge
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor("white"))
        p.drawEllipse(QRectF(42 * s, 42 * s, 20 * s, 20 * s))
        p.setBrush(colour(state))
        p.drawRect(QRectF(50.5 * s, 45 * s, 3 * s, 9 * s))
        p.drawEllipse(QRectF(50.5 * s, 55.5 * s, 3 * s, 3 * s))
    elif state in ("hearing", "speaking", "follow_up"):     # sound waves
        p.setPen(QPen(QColor("white"), 3 * s, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
        for r in (8, 14):
            p.drawArc(QRectF((46 - r) * s, (32 - r) * s, 2 * r * s, 2 * r * s), -40 * 16, 80 * 16)
    p.end()
    return pm


def state_icon(state: str) -> QIcon:
    icon = QIcon()
    for size in (16, 22, 24, 32, 48, 64):
        icon.addPixmap(_pixmap(state, size))
    return icon


def app_icon() -> QIcon:
    svg = paths.resource("icons", "jarvis.svg")
    return QIcon(str(svg)) if svg.exists() else state_icon("listening")
