"""The status window: what Jarvis is doing, the last turn and its latency, GPU memory, models, voice.

Everything on it comes from the controller's signals (and, when it opens, the controller's cached
state); it never touches a model or a device, so the GUI thread never waits on one. Closing the
window only hides it: Jarvis keeps running in the tray.
"""
from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QCloseEvent, QColor, QFont, QKeyEvent, QPainter, QPalette
from PySide6.QtWidgets import (QFrame, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QProgressBar,
                               QPushButton, QScrollArea, QSizePolicy, QToolButton, QVBoxLayout, QWidget)

from jarvis import events
from jarvis.ui.controller import Controller
from jarvis.ui.icons import COLOURS, app_icon
from jarvis.ui.latency import HEADLINE, TURN_EVENTS, TurnTracker
from jarvis.ui.state import DESCRIPTIONS

GIB = 2 ** 30
MIB = 2 ** 20

JARVIS_COLOUR = "#159e9e"   # Jarvis's share of a GPU
OTHER_COLOUR = "#8796ab"    # everything else on that GPU
OK_COLOUR = "#2e9d5b"
WARN_COLOUR = "#c7820e"
BAD_COLOUR = "#d64545"

PART_NAMES = {"listen": "Speech recognition", "speakers": "Speaker ID", "tts": "Voice",
              "brain": "Language model", "restart": "Restart"}

NO_TURN = "Nothing yet. Say \u201cJarvis\u201d and a command."


def settled(state: str) -> bool:
    """A part's load progress has ended: ready, off, or failed."""
    return state in ("ready", "off") or state.startswith(("failed", "ready on "))


def part_name(part: str) -> str:
    """``tts:csm`` -> ``Voice · csm``; known parts get a friendly name, anything else is shown as is."""
    if part.startswith("tts:"):
        return f"Voice \u00b7 {part[4:]}"
    return PART_NAMES.get(part, part)


def gib(n: int) -> str:
    return f"{n / GIB:.1f}"


def format_ms(ms: int | None) -> str:
    if ms is None:
        return "\u2014"
    return f"{ms:,} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"


def speaker_text(name: str, score: float) -> str:
    if name == "unknown":
        if score <= 0:
            return "Unknown voice (too little speech to tell)"
        return f"Unknown voice \u00b7 closest match {score:.2f}"
    return f"{name} \u00b7 match {score:.2f}"


def jarvis_bytes(row: dict) -> int | None:
    """This process plus its children on one GPU, from what NVML could tell; None when it could not."""
    parts = [row.get("process_bytes"), row.get("children_bytes")]
    known = [p for p in parts if p is not None]
    return sum(known) if known else None


# -- small painted widgets ------------------------------------------------------------------------

class StatusDot(QWidget):
    """A coloured dot with a soft halo."""

    def __init__(self, size: int = 16, parent: QWidget | None = None):
        super().__init__(parent)
        self.color = QColor(COLOURS["loading"])
        self.setFixedSize(size + 8, size + 8)

    def set_color(self, color: str | QColor) -> None:
        self.color = QColor(color)
        self.update()

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(Qt.PenStyle.NoPen)
        halo = QColor(self.color)
        halo.setAlpha(60)
        p.setBrush(halo)
        p.drawEllipse(QRectF(0, 0, self.width(), self.height()))
        p.setBrush(self.color)
        p.drawEllipse(QRectF(4, 4, self.width() - 8, self.height() - 8))
        p.end()


class MiniBar(QWidget):
    """A thin rounded bar: ``fraction`` of the width filled."""

    def __init__(self, color: str = JARVIS_COLOUR, parent: QWidget | None = None):
        super().__init__(parent)
        self.fraction = 0.0
        self.color = QColor(color)
        self.setFixedHeight(6)
        self.setMinimumWidth(60)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_fraction(self, fraction: float) -> None:
        self.fraction = max(0.0, min(1.0, fraction))
        self.update()

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(Qt.PenStyle.NoPen)
        track = self.palette().color(QPalette.ColorRole.WindowText)
        track.setAlpha(28)
        r = self.height() / 2
        p.setBrush(track)
        p.drawRoundedRect(QRectF(0, 0, self.width(), self.height()), r, r)
        if self.fraction > 0:
            p.setBrush(self.color)
            p.drawRoundedRect(QRectF(0, 0, max(self.height(), self.width() * self.fraction), self.height()), r, r)
        p.end()


class GpuGauge(QProgressBar):
    """Used / total memory of one GPU (value and maximum in MiB), Jarvis's share drawn in its own colour."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.jarvis_mib: int | None = None
        self.setTextVisible(False)
        self.setFixedHeight(14)
        self.setRange(0, 1)
        self.setValue(0)

    def set_memory(self, used: int, total: int, jarvis: int | None) -> None:
        total_mib = max(1, total // MIB)
        self.setRange(0, total_mib)
        self.setValue(min(total_mib, used // MIB))
        self.jarvis_mib = None if jarvis is None else min(self.value(), jarvis // MIB)
        self.setFormat(f"{gib(used)} / {gib(total)} GiB")
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(300, 14)

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(Qt.PenStyle.NoPen)
        w, h, r = self.width(), self.height(), self.height() / 2
        track = self.palette().color(QPalette.ColorRole.WindowText)
        track.setAlpha(28)
        p.setBrush(track)
        p.drawRoundedRect(QRectF(0, 0, w, h), r, r)
        span = max(1, self.maximum() - self.minimum())
        used_w = w * self.value() / span
        if used_w > 0:
            p.setBrush(QColor(OTHER_COLOUR))
            p.drawRoundedRect(QRectF(0, 0, max(h, used_w), h), r, r)
        if self.jarvis_mib:
            p.setBrush(QColor(JARVIS_COLOUR))
            p.drawRoundedRect(QRectF(0, 0, max(h, w * self.jarvis_mib / span), h), r, r)
        p.end()


class GpuRow(QWidget):
    """One GPU: name and figures, the gauge, Jarvis's share."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        top = QHBoxLayout()
        self.title = QLabel()
        bold = self.title.font()
        bold.setBold(True)
        self.title.setFont(bold)
        self.figures = QLabel()
        self.figures.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        top.addWidget(self.title, 1)
        top.addWidget(self.figures)
        layout.addLayout(top)
        self.gauge = GpuGauge()
        layout.addWidget(self.gauge)
        self.share = QLabel()
        self.share.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.share)

    def set_row(self, row: dict) -> None:
        used, total = int(row.get("used_bytes") or 0), int(row.get("total_bytes") or 0)
        mine = jarvis_bytes(row)
        self.title.setText(f"GPU {row.get('index', 0)} \u00b7 {row.get('name', 'NVIDIA GPU')}")
        pct = f" ({100 * used / total:.0f}%)" if total else ""
        self.figures.setText(f"{gib(used)} / {gib(total)} GiB{pct}")
        self.gauge.set_memory(used, total, mine)
        if mine is None:
            share = "n/a (per-process use is not visible here)"
            other = ""
        else:
            process, children = row.get("process_bytes"), row.get("children_bytes")
            detail = " + ".join(f"{what} {gib(n)}" for what, n in (("process", process), ("children", children))
                                if n is not None)
            share = f"{gib(mine)} GiB ({detail})"
            other = f" {gib(max(0, used - mine))} GiB"
        self.share.setText(f"<span style='color:{JARVIS_COLOUR}'>\u25cf</span> Jarvis {share}"
                           f"&nbsp;&nbsp;&nbsp;<span style='color:{OTHER_COLOUR}'>\u25cf</span> other{other}")
        self.share_text = f"Jarvis: {share}"
        reserved = row.get("torch_reserved_bytes")
        tip = [f"source: {row.get('source', '?')}"]
        if reserved is not None:
            tip.append(f"torch reserved: {gib(reserved)} GiB")
        self.setToolTip("\n".join(tip))


# -- the window -----------------------------------------------------------------------------------

class StatusWindow(QWidget):
    settings_requested = Signal()
    quit_requested = Signal()

    def __init__(self, controller: Controller, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        self.setWindowTitle("Jarvis")
        self.setWindowIcon(app_icon())
        self.resize(560, 520)
        self.setMinimumSize(440, 360)

        self.tracker = TurnTracker()
        self.progress_states: dict[str, str] = {}
        self.engines: list[dict] = []        # {"name", "healthy", "reason"} in fallback order
        self.spoke: str | None = None        # the engine that last actually spoke
        self.gpu_rows: list[GpuRow] = []
        self._details_open = False

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        outer.addWidget(self._build_header())
        outer.addWidget(_hline())

        body = QWidget()
        self.body_layout = content = QVBoxLayout(body)
        content.setContentsMargins(14, 10, 14, 10)
        content.setSpacing(6)
        content.addWidget(self._build_error_banner())
        content.addWidget(self._build_models())
        content.addWidget(self._build_turn())
        content.addWidget(self._build_gpu())
        content.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(body)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        outer.addWidget(scroll, 1)
        outer.addWidget(_hline())
        outer.addWidget(self._build_footer())

        # initial state from the controller's cache, then live updates
        self._on_state(controller.tray_state.state)
        for part, state in controller.last_progress.items():
            self._on_progress(part, state)
        self._on_tts_status(controller.last_tts_status)
        for engine, reason in controller.tray_state.degraded.items():
            if engine != "llm":  # the language model's state is its row under Models
                self._mark_engine(engine, False, reason)
        self._refresh_voice()
        if controller.last_gpu:
            self._on_gpu(controller.last_gpu)
        if controller.tray_state.error:
            self._show_error(controller.tray_state.error)
        self._show_echo(*controller.tray_state.echo)
        self._refresh_latency()

        controller.state_changed.connect(self._on_state)
        controller.event.connect(self._on_event)
        controller.progress.connect(self._on_progress)
        controller.gpu_memory.connect(self._on_gpu)
        controller.tts_status.connect(self._on_tts_status)
        controller.failed.connect(self._show_error)

    # -- building ---------------------------------------------------------------------------------
    def _build_header(self) -> QWidget:
        header = QWidget()
        header.setObjectName("header")
        layout = QHBoxLayout(header)
        layout.setContentsMargins(16, 14, 16, 12)
        layout.setSpacing(12)
        self.dot = StatusDot(16)
        layout.addWidget(self.dot, 0, Qt.AlignmentFlag.AlignTop)
        text = QVBoxLayout()
        text.setSpacing(3)
        top = QHBoxLayout()
        top.setSpacing(10)
        self.state_label = QLabel()
        big = QFont(self.state_label.font())
        big.setPointSizeF(big.pointSizeF() * 1.45)
        big.setBold(True)
        self.state_label.setFont(big)
        top.addWidget(self.state_label)
        self.muted_badge = QLabel("Microphone muted")
        self.muted_badge.setStyleSheet(
            f"QLabel {{ color: white; background: {COLOURS['muted']}; border-radius: 9px; padding: 2px 9px; }}")
        self.muted_badge.hide()
        top.addWidget(self.muted_badge, 0, Qt.AlignmentFlag.AlignVCenter)
        top.addStretch(1)
        text.addLayout(top)
        self.voice_label = QLabel()
        self.voice_label.setWordWrap(True)
        self.voice_label.setTextFormat(Qt.TextFormat.RichText)
        text.addWidget(self.voice_label)
        self.echo_label = QLabel()
        self.echo_label.setWordWrap(True)
        text.addWidget(self.echo_label)
        layout.addLayout(text, 1)
        return header

    def _build_error_banner(self) -> QWidget:
        self.error_banner = QFrame()
        self.error_banner.setObjectName("errorBanner")
        self.error_banner.setStyleSheet(
            f"#errorBanner {{ background: rgba(214, 69, 69, 30); border: 1px solid {BAD_COLOUR};"
            " border-radius: 6px; }")
        layout = QHBoxLayout(self.error_banner)
        layout.setContentsMargins(10, 6, 6, 6)
        icon = QLabel("\u26a0")
        icon.setStyleSheet(f"color: {BAD_COLOUR}; font-weight: bold;")
        layout.addWidget(icon, 0, Qt.AlignmentFlag.AlignTop)
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.error_label, 1)
        dismiss = QToolButton()
        dismiss.setText("\u2715")
        dismiss.setAutoRaise(True)
        dismiss.setToolTip("Dismiss")
        dismiss.clicked.connect(self.clear_error)
        layout.addWidget(dismiss, 0, Qt.AlignmentFlag.AlignTop)
        self.error_banner.hide()
        return self.error_banner

    def _build_models(self) -> QWidget:
        self.models_box = box = QGroupBox("Models")
        layout = QVBoxLayout(box)
        layout.setSpacing(6)
        top = QHBoxLayout()
        self.models_summary = QLabel()
        self.models_summary.setWordWrap(True)
        top.addWidget(self.models_summary, 1)
        self.models_toggle = QToolButton()
        self.models_toggle.setAutoRaise(True)
        self.models_toggle.setText("Details")
        self.models_toggle.clicked.connect(self._toggle_details)
        top.addWidget(self.models_toggle, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(top)
        self.models_details = QWidget()
        self.models_grid = QGridLayout(self.models_details)
        self.models_grid.setContentsMargins(0, 0, 0, 0)
        self.models_grid.setHorizontalSpacing(10)
        self.models_grid.setVerticalSpacing(3)
        self.models_grid.setColumnStretch(2, 1)
        layout.addWidget(self.models_details)
        self.model_rows: dict[str, tuple[QLabel, QLabel, QLabel]] = {}
        box.hide()
        return box

    def _build_turn(self) -> QWidget:
        box = QGroupBox("Last turn")
        layout = QVBoxLayout(box)
        layout.setSpacing(6)

        top = QHBoxLayout()
        top.setSpacing(16)
        grid = QGridLayout()
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(5)
        grid.setColumnStretch(1, 1)
        self.transcript_label, self.speaker_label, self.reply_label = QLabel(), QLabel(), QLabel()
        for row, (caption, label) in enumerate((("You said", self.transcript_label),
                                                ("Speaker", self.speaker_label),
                                                ("Jarvis said", self.reply_label))):
            cap = _caption(caption)
            grid.addWidget(cap, row, 0, Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            grid.addWidget(label, row, 1)
        top.addLayout(grid, 1)

        headline = QVBoxLayout()
        headline.setSpacing(0)
        self.headline_value = QLabel("\u2014")
        big = QFont(self.headline_value.font())
        big.setPointSizeF(big.pointSizeF() * 1.9)
        big.setBold(True)
        self.headline_value.setFont(big)
        self.headline_value.setAlignment(Qt.AlignmentFlag.AlignRight)
        headline.addWidget(self.headline_value)
        cap = _caption(HEADLINE)
        cap.setAlignment(Qt.AlignmentFlag.AlignRight)
        headline.addWidget(cap)
        headline.addStretch(1)
        top.addLayout(headline)
        layout.addLayout(top)
        self._reset_turn_texts(NO_TURN)

        layout.addWidget(_hline())
        lat = QGridLayout()
        lat.setHorizontalSpacing(12)
        lat.setVerticalSpacing(2)
        lat.setColumnStretch(1, 1)
        self.latency_rows: dict[str, tuple[MiniBar | None, QLabel]] = {}
        for row, (label, _ms) in enumerate(self.tracker.latencies()):
            name = QLabel(label)
            value = QLabel("\u2014")
            value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            value.setMinimumWidth(70)
            if label == HEADLINE:
                bold = name.font()
                bold.setBold(True)
                name.setFont(bold)
                value.setFont(bold)
                bar = None
            else:
                bar = MiniBar()
            lat.addWidget(name, row, 0)
            if bar is not None:
                lat.addWidget(bar, row, 1, Qt.AlignmentFlag.AlignVCenter)
            lat.addWidget(value, row, 2)
            self.latency_rows[label] = (bar, value)
        layout.addLayout(lat)
        return box

    def _build_gpu(self) -> QWidget:
        box = QGroupBox("GPU memory")
        self.gpu_layout = QVBoxLayout(box)
        self.gpu_layout.setSpacing(10)
        self.gpu_empty = _caption("No GPU reading yet")
        self.gpu_layout.addWidget(self.gpu_empty)
        return box

    def _build_footer(self) -> QWidget:
        footer = QWidget()
        layout = QHBoxLayout(footer)
        layout.setContentsMargins(16, 8, 16, 10)
        hint = _caption("Closing this window keeps Jarvis running in the tray.")
        layout.addWidget(hint, 1)
        self.settings_button = QPushButton("Settings\u2026")
        self.settings_button.clicked.connect(self.settings_requested.emit)
        self.quit_button = QPushButton("Quit")
        self.quit_button.clicked.connect(self.quit_requested.emit)
        layout.addWidget(self.settings_button)
        layout.addWidget(self.quit_button)
        return footer

    # -- state --------------------------------------------------------------------------------
    def _on_state(self, state: str) -> None:
        self.state = state
        self.state_label.setText(DESCRIPTIONS.get(state, state))
        self.dot.set_color(COLOURS.get(state, COLOURS["loading"]))
        self.dot.setToolTip(state)
        self.muted_badge.setVisible(self.controller.muted and state != "muted")

    @property
    def muted_shown(self) -> bool:
        """True when the window tells the user the microphone is muted (title or badge)."""
        return self.state == "muted" or not self.muted_badge.isHidden()

    # -- events -------------------------------------------------------------------------------
    def _on_event(self, event: events.Event) -> None:
        kind = event.type
        if self.tracker.feed(event):
            self._reset_turn_texts(None)
        # An earlier turn's late words (a cut-off LLM reply, sent when its speech ended) stay off the turn shown.
        earlier = event.turn is not None and self.tracker.turn is not None and event.turn != self.tracker.turn
        if earlier and kind in ("transcript", "speaker", "reply"):
            return
        if kind == "transcript":
            self.transcript_label.setText(f"\u201c{event.text}\u201d" if event.text else "(nothing heard)")
        elif kind == "speaker":
            self.speaker_label.setText(speaker_text(event.name, float(event.score)))
        elif kind == "reply":
            self.reply_label.setText(event.text if event.text else "(stopped)")
        elif kind == "tts_first_chunk":
            self.spoke = event.engine
            self._mark_engine(event.engine, True, "")
            self._refresh_voice()
        elif kind == "degraded" and event.engine != "llm":
            self._mark_engine(event.engine, False, event.reason)
            self._refresh_voice()
        elif kind == "error":
            self._show_error(event.message, event.code)
        elif kind == "echo":
            self._show_echo(event.state, event.message)
        elif kind == "ready":
            self.clear_error()
            for part, state in list(self.progress_states.items()):
                if not settled(state):
                    self._on_progress(part, "ready")
        if kind in TURN_EVENTS:
            self._refresh_latency()

    def _show_echo(self, state: str, message: str) -> None:
        """One line under the voice: echo cancellation on, off (a choice) or down (why, in the warning colour)."""
        self.echo_label.setVisible(bool(state))
        if state == "on":
            self.echo_label.setText("Echo cancellation: on")
            self.echo_label.setStyleSheet("")
        elif state:
            self.echo_label.setText(message or f"Echo cancellation: {state}")
            colour = COLOURS["muted"] if state == "off" else COLOURS["degraded"]
            self.echo_label.setStyleSheet(f"color: {colour};")

    def _reset_turn_texts(self, placeholder: str | None) -> None:
        self.transcript_label.setText(placeholder or "Listening\u2026")
        self.speaker_label.setText("\u2014")
        self.reply_label.setText("\u2014")

    def _refresh_latency(self) -> None:
        figures = self.tracker.latencies()
        stage_max = max((ms for label, ms in figures if label != HEADLINE and ms), default=0)
        for label, ms in figures:
            bar, value = self.latency_rows[label]
            value.setText(format_ms(ms))
            if bar is not None:
                bar.set_fraction((ms or 0) / stage_max if stage_max else 0.0)
            if label == HEADLINE:
                self.headline_value.setText(format_ms(ms))
        self.latency = dict(figures)

    # -- errors -------------------------------------------------------------------------------
    def _show_error(self, message: str, code: str = "") -> None:
        self.error_label.setText(message)
        self.error_label.setToolTip(code)
        self.error_banner.show()

    def clear_error(self) -> None:
        self.error_label.setText("")
        self.error_banner.hide()

    # -- model loading ----------------------------------------------------------------------------
    def _on_progress(self, part: str, state: str) -> None:
        self.progress_states[part] = state
        if part not in self.model_rows:
            row = len(self.model_rows)
            glyph, name, text = QLabel(), QLabel(part_name(part)), QLabel()
            glyph.setFixedWidth(16)
            glyph.setAlignment(Qt.AlignmentFlag.AlignCenter)
            text.setWordWrap(True)
            self.models_grid.addWidget(glyph, row, 0, Qt.AlignmentFlag.AlignTop)
            self.models_grid.addWidget(name, row, 1, Qt.AlignmentFlag.AlignTop)
            self.models_grid.addWidget(text, row, 2)
            self.model_rows[part] = (glyph, name, text)
        glyph, _name, text = self.model_rows[part]
        if state == "off" or state == "ready" or state.startswith("ready on "):
            glyph.setText("\u2013" if state == "off" else "\u2713")
            glyph.setStyleSheet(f"color: {OK_COLOUR}; font-weight: bold;")
            text.setText(state)
        elif state.startswith("failed"):
            glyph.setText("\u2715")
            glyph.setStyleSheet(f"color: {BAD_COLOUR}; font-weight: bold;")
            text.setText(state)
        else:
            glyph.setText("\u25cc")
            glyph.setStyleSheet(f"color: {COLOURS['hearing']}; font-weight: bold;")
            text.setText(state)
        text.setToolTip(state)
        self._refresh_models()

    @property
    def models_loading(self) -> bool:
        return any(not settled(s) for s in self.progress_states.values())

    def _refresh_models(self) -> None:
        states = self.progress_states
        self.models_box.setVisible(bool(states))
        failed = [p for p, s in states.items() if s.startswith("failed")]
        if self.models_loading:
            busy = sum(1 for s in states.values() if not settled(s))
            self.models_summary.setText(f"Loading\u2026 {len(states) - busy} of {len(states)} done")
            self.models_summary.setStyleSheet("")
        elif failed:
            names = ", ".join(part_name(p) for p in failed)
            self.models_summary.setText(f"Ready, except {names} (failed)")
            self.models_summary.setStyleSheet(f"color: {WARN_COLOUR};")
        else:
            self.models_summary.setText("All models ready")
            self.models_summary.setStyleSheet(f"color: {OK_COLOUR};")
        show = self.models_loading or self._details_open
        self.models_details.setVisible(show)
        self.models_toggle.setVisible(not self.models_loading)
        self.models_toggle.setText("Hide" if show else "Details")

    def _toggle_details(self) -> None:
        self._details_open = not self._details_open
        self._refresh_models()

    # -- voice ------------------------------------------------------------------------------------
    def _on_tts_status(self, status: list) -> None:
        self.engines = [dict(name=s.get("name", "?"), healthy=bool(s.get("healthy")), reason=s.get("reason", ""))
                        for s in status]
        self._refresh_voice()

    def _mark_engine(self, name: str, healthy: bool, reason: str) -> None:
        for engine in self.engines:
            if engine["name"] == name:
                engine["healthy"], engine["reason"] = healthy, "" if healthy else reason
                return
        self.engines.append({"name": name, "healthy": healthy, "reason": "" if healthy else reason})

    def voice_summary(self) -> tuple[str | None, list[tuple[str, str]]]:
        """(the engine that speaks now, [(engine, reason) for each engine ahead of it that is down])."""
        active = next((e["name"] for e in self.engines if e["healthy"]), None)
        down = []
        for engine in self.engines:
            if engine["name"] == active:
                break
            if not engine["healthy"]:
                down.append((engine["name"], engine["reason"] or "unavailable"))
        return active, down

    def _refresh_voice(self) -> None:
        active, down = self.voice_summary()
        notes = "; ".join(f"{name} is down: {reason}" for name, reason in down)
        if not self.engines:
            plain = "Voice: not loaded yet"
            html = f"<span style='color:{COLOURS['loading']}'>{plain}</span>"
        elif active is None:
            plain = f"Voice: none available ({notes})"
            html = f"<b>Voice:</b> none available <span style='color:{BAD_COLOUR}'>({_esc(notes)})</span>"
        elif down:
            plain = f"Voice: {active} ({notes})"
            html = f"<b>Voice:</b> {_esc(active)} <span style='color:{WARN_COLOUR}'>({_esc(notes)})</span>"
        else:
            plain = f"Voice: {active}"
            html = f"<b>Voice:</b> {_esc(active)}"
        self.voice_text = plain
        self.voice_label.setText(html)
        self.voice_label.setToolTip("Fallback order: " + " \u2192 ".join(
            f"{e['name']}{'' if e['healthy'] else ' (down)'}" for e in self.engines) if self.engines else "")

    # -- GPU ----------------------------------------------------------------------------------
    def _on_gpu(self, rows: list) -> None:
        if not rows:
            for row in self.gpu_rows:
                row.deleteLater()
            self.gpu_rows = []
            self.gpu_empty.setText("No NVIDIA GPU")
            self.gpu_empty.show()
            return
        self.gpu_empty.hide()
        while len(self.gpu_rows) > len(rows):
            self.gpu_rows.pop().deleteLater()
        while len(self.gpu_rows) < len(rows):
            row = GpuRow()
            self.gpu_layout.addWidget(row)
            row.show()
            self.gpu_rows.append(row)
        for widget, row in zip(self.gpu_rows, rows):
            widget.set_row(row)

    # -- window -------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        """Closing only hides the window; Jarvis keeps running in the tray."""
        event.ignore()
        self.hide()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.hide()
        else:
            super().keyPressEvent(event)

    def show_and_raise(self) -> None:
        self.show()
        self.raise_()
        self.activateWindow()


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _caption(text: str) -> QLabel:
    """A secondary label: the text colour, toned down (readable, unlike a disabled label)."""
    label = QLabel(text)
    palette = label.palette()
    color = palette.color(QPalette.ColorRole.WindowText)
    color.setAlphaF(0.62)
    palette.setColor(QPalette.ColorRole.WindowText, color)
    label.setPalette(palette)
    return label


def _hline() -> QFrame:
    line = QFrame()
    line.setFrameShape(QFrame.Shape.HLine)
    line.setFrameShadow(QFrame.Shadow.Sunken)
    return line
