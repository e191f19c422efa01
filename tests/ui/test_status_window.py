"""The status window on a real X11 display, driven only through a real Controller.

Events go onto the real event bus (from another thread, as the pipeline does); GPU memory, model load
progress and TTS status come through the controller's signals with representative rows (this machine
has no GPU: those rows are the widget's input, in the shape jarvis.devices.gpu_memory() returns).
The controller is never started, so no model loads.
"""
from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import Qt

from jarvis import events
from jarvis.ui.controller import Controller
from jarvis.ui.icons import COLOURS
from jarvis.ui.latency import HEADLINE
from jarvis.ui.state import DESCRIPTIONS
from jarvis.ui.status_window import StatusWindow
from tests.ui.conftest import save_screenshot

GIB = 2 ** 30

H100 = {"index": 0, "name": "NVIDIA H100 80GB HBM3", "total_bytes": 80 * GIB, "used_bytes": 12 * GIB,
        "process_bytes": 5 * GIB, "children_bytes": 1 * GIB, "torch_reserved_bytes": 4 * GIB, "source": "torch"}
A10 = {"index": 1, "name": "NVIDIA A10", "total_bytes": 24 * GIB, "used_bytes": 3 * GIB,
       "process_bytes": None, "children_bytes": None, "torch_reserved_bytes": None, "source": "nvml"}

TTS_OK = [{"name": "csm", "healthy": True, "reason": ""}, {"name": "piper", "healthy": True, "reason": ""},
          {"name": "system", "healthy": True, "reason": ""}]



@pytest.fixture
def window(controller, qtbot):
    w = StatusWindow(controller)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def emit_from_thread(bus: events.EventBus, evs: list[events.Event]) -> None:
    """Emit on another thread, like the pipeline: the controller queues them to the GUI thread."""
    t = threading.Thread(target=lambda: [bus.emit(e) for e in evs])
    t.start()
    t.join()


def a_turn(t0: float, speaker: str = "alice", score: float = 0.8312, engine: str = "piper",
           turn: int = 1) -> list[events.Event]:
    return [
        events.Wake(t=t0, turn=turn),
        events.SpeechStart(t=t0 + 0.100, turn=turn),
        events.VadSilence(t=t0 + 1.170, turn=turn),
        events.EndOfTurn(finished=True, probability=0.93, after_ms=97, t=t0 + 1.267, turn=turn),
        events.SpeechEnd(t=t0 + 1.320, turn=turn),
        events.Transcript(text="what time is it", t=t0 + 1.530, turn=turn),
        events.Speaker(name=speaker, score=score, t=t0 + 1.572, turn=turn),
        events.Reply(text="It's 3:15 PM.", t=t0 + 1.580, turn=turn),
        events.TtsFirstChunk(engine=engine, t=t0 + 1.705, turn=turn),
        events.PlaybackStart(t=t0 + 1.733, turn=turn),
        events.PlaybackEnd(interrupted=False, t=t0 + 2.900, turn=turn),
    ]


def latency_texts(w: StatusWindow) -> dict[str, str]:
    return {label: value.text() for label, (_bar, value) in w.latency_rows.items()}


def test_window_basics(window):
    assert window.windowTitle() == "Jarvis"
    assert window.isWindow() and window.isVisible()
    assert 520 <= window.width() <= 640 and 480 <= window.height() <= 640
    assert window.state_label.text() == DESCRIPTIONS["loading"]
    assert window.transcript_label.text().startswith("Nothing yet")
    assert window.gpu_empty.text() == "No GPU reading yet"  # nothing measured until the host reports
    assert window.voice_text == "Voice: not loaded yet"
    assert not window.models_box.isVisible() and not window.error_banner.isVisible()


def test_starts_from_the_controllers_cached_state(controller, qtbot):
    # what the host thread reported before the window opened (through the worker's own signals)
    controller.worker.progress.emit("listen", "ready")
    controller.worker.progress.emit("tts:csm", "downloading model.safetensors  35%")
    controller.worker.tts_status.emit([{"name": "csm", "healthy": False, "reason": "no weights"},
                                       {"name": "piper", "healthy": True, "reason": ""}])
    controller.worker.gpu_memory.emit([H100])
    controller.bus.emit(events.Ready())
    controller.bus.emit(events.Error(code="turn_failed", message="That turn failed (boom)."))
    qtbot.waitUntil(lambda: controller.tray_state.state == "listening")

    w = StatusWindow(controller)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    assert w.state_label.text() == DESCRIPTIONS["listening"]
    assert w.dot.color.name() == COLOURS["listening"]
    assert w.progress_states == {"listen": "ready", "tts:csm": "downloading model.safetensors  35%"}
    assert w.models_box.isVisible() and w.models_details.isVisible()
    assert w.model_rows["tts:csm"][2].text() == "downloading model.safetensors  35%"
    assert w.voice_text == "Voice: piper (csm is down: no weights)"
    assert len(w.gpu_rows) == 1 and w.gpu_rows[0].gauge.value() == 12 * 1024
    assert w.error_banner.isVisible() and w.error_label.text() == "That turn failed (boom)."


def test_a_turn_shows_transcript_speaker_reply_and_latency(controller, window, qtbot):
    emit_from_thread(controller.bus, [events.Ready(t=99.0)])
    qtbot.waitUntil(lambda: window.state_label.text() == DESCRIPTIONS["listening"])
    assert window.dot.color.name() == COLOURS["listening"]

    turn = a_turn(100.0)
    emit_from_thread(controller.bus, turn[:2])  # wake, speech_start
    qtbot.waitUntil(lambda: window.state_label.text() == DESCRIPTIONS["hearing"])
    assert window.dot.color.name() == COLOURS["hearing"]
    assert window.transcript_label.text() == "Listening…"
    assert set(latency_texts(window).values()) == {"—"}

    emit_from_thread(controller.bus, turn[2:10])  # … up to playback_start
    qtbot.waitUntil(lambda: window.state_label.text() == DESCRIPTIONS["speaking"])
    assert window.transcript_label.text() == "“what time is it”"
    assert window.speaker_label.text() == "alice · match 0.83"
    assert window.reply_label.text() == "It's 3:15 PM."
    assert latency_texts(window) == {
        "listening": "1,170 ms", "end-of-turn decision": "97 ms", "silence wait": "150 ms", "speech-to-text": "210 ms",
        "speaker ID": "42 ms", "answer": "8 ms", "first audio": "125 ms", HEADLINE: "563 ms"}
    assert window.latency == {"listening": 1170, "end-of-turn decision": 97, "silence wait": 150, "speech-to-text": 210,
                              "speaker ID": 42, "answer": 8, "first audio": 125, HEADLINE: 563}
    assert window.headline_value.text() == "563 ms"
    bars = {label: bar.fraction for label, (bar, _v) in window.latency_rows.items() if bar is not None}
    assert bars["listening"] == 1.0 and bars["answer"] == pytest.approx(8 / 1170)

    emit_from_thread(controller.bus, turn[10:])
    qtbot.waitUntil(lambda: window.state_label.text() == DESCRIPTIONS["listening"])
    assert window.headline_value.text() == "563 ms"  # the finished turn stays on show

    # push-to-talk: no wake word, the next turn starts at speech_start and clears the last one
    emit_from_thread(controller.bus, [events.SpeechStart(t=200.0, turn=2), events.SpeechEnd(t=200.5, turn=2)])
    qtbot.waitUntil(lambda: latency_texts(window)["listening"] == "500 ms")
    assert window.transcript_label.text() == "Listening…" and window.speaker_label.text() == "—"
    assert window.headline_value.text() == "—"


def test_a_cut_off_reply_arriving_late_stays_off_the_next_turn(controller, window, qtbot):
    """Barge-in on an LLM answer: its reply event comes when its speech was cut, after the next turn opened."""
    emit_from_thread(controller.bus, a_turn(100.0, turn=1)[:7] + [events.PlaybackStart(t=101.8, turn=1)])
    emit_from_thread(controller.bus, [events.Wake(t=103.0, turn=2), events.SpeechStart(t=103.1, turn=2),
                                      events.Reply(text="Once upon a time", t=103.05, turn=1),
                                      events.PlaybackEnd(interrupted=True, t=103.06, turn=1),
                                      events.SpeechEnd(t=104.0, turn=2)])
    qtbot.waitUntil(lambda: latency_texts(window)["listening"] == "1,000 ms")
    assert window.reply_label.text() == "—" and window.transcript_label.text() == "Listening…"


def test_unknown_speaker_and_a_stop_command(controller, window, qtbot):
    controller.bus.emit(events.Wake(t=10.0, turn=1))
    controller.bus.emit(events.SpeechEnd(t=10.9, turn=1))
    controller.bus.emit(events.Transcript(text="stop", t=11.0, turn=1))
    controller.bus.emit(events.Speaker(name="unknown", score=0.412, t=11.05, turn=1))
    controller.bus.emit(events.Reply(text="", t=11.051, turn=1))
    qtbot.waitUntil(lambda: window.reply_label.text() == "(stopped)")
    assert window.speaker_label.text() == "Unknown voice · closest match 0.41"
    assert window.latency["answer"] == 1 and window.latency[HEADLINE] is None
    controller.bus.emit(events.Wake(t=20.0, turn=2))
    controller.bus.emit(events.Speaker(name="unknown", score=0.0, t=21.0, turn=2))
    qtbot.waitUntil(lambda: window.speaker_label.text() == "Unknown voice (too little speech to tell)")


def test_gpu_gauges(controller, window, qtbot):
    controller.gpu_memory.emit([])
    assert window.gpu_empty.isVisible() and window.gpu_empty.text() == "No NVIDIA GPU"
    assert window.gpu_rows == []

    controller.gpu_memory.emit([H100, A10])
    assert not window.gpu_empty.isVisible()
    h100, a10 = window.gpu_rows
    assert h100.title.text() == "GPU 0 · NVIDIA H100 80GB HBM3"
    assert h100.figures.text() == "12.0 / 80.0 GiB (15%)"
    assert (h100.gauge.value(), h100.gauge.maximum()) == (12 * 1024, 80 * 1024)
    assert h100.gauge.text() == "12.0 / 80.0 GiB"
    assert h100.gauge.jarvis_mib == 6 * 1024  # process + children
    assert h100.share_text == "Jarvis: 6.0 GiB (process 5.0 + children 1.0)"
    assert "other 6.0 GiB" in h100.share.text()
    assert "torch reserved: 4.0 GiB" in h100.toolTip()
    assert a10.title.text() == "GPU 1 · NVIDIA A10" and a10.gauge.value() == 3 * 1024
    assert a10.gauge.jarvis_mib is None
    assert a10.share_text.startswith("Jarvis: n/a")

    # a second reading updates in place; children unknown -> the process alone
    controller.gpu_memory.emit([dict(H100, used_bytes=20 * GIB, children_bytes=None)])
    qtbot.waitUntil(lambda: len(window.gpu_rows) == 1)
    assert window.gpu_rows[0] is h100 and h100.gauge.value() == 20 * 1024
    assert h100.share_text == "Jarvis: 5.0 GiB (process 5.0)"
    assert h100.isVisible()

    controller.gpu_memory.emit([])
    assert window.gpu_rows == [] and window.gpu_empty.text() == "No NVIDIA GPU"


def test_model_load_progress_collapses_once_ready(controller, window, qtbot):
    assert not window.models_box.isVisible()
    for part in ("listen", "speakers", "tts", "tts:csm"):
        controller.progress.emit(part, "loading")
    assert window.models_box.isVisible() and window.models_details.isVisible()
    assert window.models_summary.text() == "Loading… 0 of 4 done"
    assert not window.models_toggle.isVisible()
    controller.progress.emit("tts:csm", "downloading model.safetensors  35%")
    name, text = window.model_rows["tts:csm"][1:]
    assert (name.text(), text.text()) == ("Voice · csm", "downloading model.safetensors  35%")
    controller.progress.emit("listen", "ready")
    controller.progress.emit("speakers", "ready")
    controller.progress.emit("tts:csm", "ready")
    assert window.models_summary.text() == "Loading… 3 of 4 done" and window.models_details.isVisible()
    controller.progress.emit("tts", "ready on cuda:0 (bfloat16, CUDA graphs)")   # where it runs, as the host says
    assert window.models_summary.text() == "All models ready"
    assert window.model_rows["tts"][0].text() == "\u2713"
    assert window.model_rows["tts"][2].text() == "ready on cuda:0 (bfloat16, CUDA graphs)"
    assert window.models_box.isVisible() and not window.models_details.isVisible()
    qtbot.mouseClick(window.models_toggle, Qt.MouseButton.LeftButton)
    assert window.models_details.isVisible() and window.models_toggle.text() == "Hide"
    qtbot.mouseClick(window.models_toggle, Qt.MouseButton.LeftButton)
    assert not window.models_details.isVisible()

    controller.progress.emit("tts:csm", "failed: no weights for sesame/csm-1b")
    assert window.models_summary.text() == "Ready, except Voice · csm (failed)"
    assert window.model_rows["tts:csm"][2].text() == "failed: no weights for sesame/csm-1b"

    # a settings restart reports free text; "ready" from the voice loop closes it
    controller.progress.emit("restart", "applying audio and listening settings")
    assert window.models_details.isVisible()
    controller.bus.emit(events.Ready())
    qtbot.waitUntil(lambda: window.progress_states["restart"] == "ready")
    assert not window.models_details.isVisible()


def test_voice_engine_and_fallback_notice(controller, window, qtbot):
    controller.bus.emit(events.Ready())
    controller.tts_status.emit(TTS_OK)
    assert window.voice_text == "Voice: csm"
    controller.bus.emit(events.Degraded(engine="csm", reason="CUDA out of memory"))
    qtbot.waitUntil(lambda: window.voice_text == "Voice: piper (csm is down: CUDA out of memory)")
    assert window.state_label.text() == DESCRIPTIONS["degraded"]
    assert window.dot.color.name() == COLOURS["degraded"]
    assert "csm is down: CUDA out of memory" in window.voice_label.text()
    controller.bus.emit(events.Degraded(engine="piper", reason="voice file missing"))
    qtbot.waitUntil(lambda: window.voice_text.startswith("Voice: system"))
    assert window.voice_text == "Voice: system (csm is down: CUDA out of memory; piper is down: voice file missing)"
    # CSM is tried again later and speaks: it is the voice again
    controller.bus.emit(events.TtsFirstChunk(engine="csm"))
    qtbot.waitUntil(lambda: window.voice_text == "Voice: csm")
    controller.tts_status.emit([dict(e, healthy=False, reason="gone") for e in TTS_OK])
    assert window.voice_text == "Voice: none available (csm is down: gone; piper is down: gone; system is down: gone)"


def test_echo_cancellation_state_and_follow_up(controller, window, qtbot):
    controller.bus.emit(events.Ready())
    controller.bus.emit(events.Echo(state="on", message="Echo cancellation is on."))
    qtbot.waitUntil(lambda: window.echo_label.text() == "Echo cancellation: on")
    assert window.echo_label.isVisible()
    line = "Echo cancellation failed (apm crashed); Jarvis listens without it."
    controller.bus.emit(events.Echo(state="unavailable", message=line))
    qtbot.waitUntil(lambda: window.echo_label.text() == line)
    assert window.state_label.text() == DESCRIPTIONS["degraded"]
    controller.bus.emit(events.FollowUp(seconds=5.0))
    qtbot.waitUntil(lambda: window.state_label.text() == DESCRIPTIONS["follow_up"])
    controller.bus.emit(events.Listening(reason="follow_up_timeout"))
    qtbot.waitUntil(lambda: window.state_label.text() == DESCRIPTIONS["degraded"])
    # a window opened later shows the state it missed
    later = StatusWindow(controller)
    qtbot.addWidget(later)
    assert later.echo_label.text() == line


def test_errors_show_a_notice(controller, window, qtbot):
    controller.bus.emit(events.Error(code="turn_failed", message="That turn failed (RuntimeError: boom)."))
    qtbot.waitUntil(lambda: window.error_banner.isVisible())
    assert window.error_label.text() == "That turn failed (RuntimeError: boom)."
    assert window.error_label.toolTip() == "turn_failed"
    emit_from_thread(controller.bus, [events.Error(code="audio_device_lost", message="The microphone stopped.")])
    qtbot.waitUntil(lambda: window.error_label.text() == "The microphone stopped.")
    assert window.state_label.text() == DESCRIPTIONS["error"]
    controller.bus.emit(events.Ready())  # recovered
    qtbot.waitUntil(lambda: not window.error_banner.isVisible())
    controller.failed.emit("Jarvis could not start (no microphone). Run: jarvis doctor")
    assert window.error_banner.isVisible() and "could not start" in window.error_label.text()
    window.clear_error()
    assert not window.error_banner.isVisible()


def test_muted(controller, window, qtbot):
    controller.bus.emit(events.Ready())
    controller.set_muted(True)
    assert window.state_label.text() == "Microphone muted" and window.muted_shown
    assert window.dot.color.name() == COLOURS["muted"]
    controller.bus.emit(events.SpeechEnd())  # finishing a command that was under way: thinking, still muted
    qtbot.waitUntil(lambda: window.state_label.text() == DESCRIPTIONS["thinking"])
    assert window.muted_badge.isVisible() and window.muted_shown
    controller.set_muted(False)
    assert not window.muted_badge.isVisible() and not window.muted_shown


def test_footer_buttons_and_closing_only_hides(controller, window, qtbot):
    with qtbot.waitSignal(window.settings_requested, timeout=1000):
        qtbot.mouseClick(window.settings_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(window.quit_requested, timeout=1000):
        qtbot.mouseClick(window.quit_button, Qt.MouseButton.LeftButton)
    assert window.close() is False  # the close was refused: the window only hides
    assert not window.isVisible()
    controller.bus.emit(events.Transcript(text="still updating", t=5.0))  # it keeps following while hidden
    qtbot.waitUntil(lambda: window.transcript_label.text() == "“still updating”")
    window.show_and_raise()
    qtbot.waitExposed(window)
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert not window.isVisible()


def test_screenshot(controller, window, qtbot):
    """A finished turn, one GPU, CSM down so Piper speaks: docs/screenshots/status-window.png."""
    for part in ("listen", "speakers", "tts"):
        controller.progress.emit(part, "ready")
    controller.progress.emit("tts:csm", "failed: weights not downloaded")
    controller.progress.emit("tts:piper", "ready")
    controller.tts_status.emit([{"name": "csm", "healthy": False, "reason": "weights not downloaded"},
                                {"name": "piper", "healthy": True, "reason": ""},
                                {"name": "system", "healthy": True, "reason": ""}])
    controller.gpu_memory.emit([dict(H100, used_bytes=int(14.6 * GIB), process_bytes=int(4.2 * GIB),
                                     children_bytes=int(0.6 * GIB), torch_reserved_bytes=int(3.9 * GIB))])
    emit_from_thread(controller.bus, [events.Ready(t=99.0), events.Degraded(engine="csm", reason="weights not downloaded",
                                                                             t=99.5)]
                     + a_turn(100.0, speaker="alice", score=0.8312, engine="piper"))
    qtbot.waitUntil(lambda: window.state_label.text() == DESCRIPTIONS["degraded"])
    assert window.voice_text == "Voice: piper (csm is down: weights not downloaded)"
    assert window.headline_value.text() == "563 ms"
    path = save_screenshot(window, "status-window")
    assert path.exists() and path.stat().st_size > 10_000
