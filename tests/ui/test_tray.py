"""The tray icon on a real X11 tray (trayer on Xvfb): states, menu, mute, clicks, notifications."""
from __future__ import annotations

import subprocess

import pytest
from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QSystemTrayIcon

from jarvis import events
from jarvis.config import Settings
from jarvis.ui.state import DESCRIPTIONS, STATES, TrayState
from jarvis.ui.tray import Tray
from tests.desktop import screenshot_path
from tests.ui.conftest import save_screenshot



@pytest.fixture
def tray(controller, qtbot):
    t = Tray(controller)
    t.show()
    qtbot.waitUntil(lambda: t.icon.geometry().width() > 0, timeout=5000)
    yield t
    t.icon.hide()


def test_a_real_tray_is_there(qapp, desktop):
    assert QSystemTrayIcon.isSystemTrayAvailable()


def test_state_machine_follows_a_turn():
    s = TrayState()
    assert s.state == "loading"
    seq = [(events.Ready(), "listening"), (events.Wake(), "hearing"), (events.SpeechStart(), "hearing"),
           (events.SpeechEnd(), "thinking"), (events.Transcript(text="what time is it"), "thinking"),
           (events.Reply(text="It's 3 PM."), "thinking"), (events.PlaybackStart(), "speaking"),
           (events.PlaybackEnd(interrupted=False), "listening"),
           (events.Degraded(engine="csm", reason="weights missing"), "degraded"),
           (events.TtsFirstChunk(engine="csm"), "listening"),
           (events.Error(code="audio_device_lost", message="The microphone stopped"), "error"),
           (events.Ready(), "listening")]
    for event, expected in seq:
        assert s.on_event(event) == expected, event
    s.muted = True
    assert s.state == "muted"
    assert set(DESCRIPTIONS) == set(STATES)


def test_follow_ups_ignored_turns_and_wake_timeouts_return_to_listening():
    s = TrayState()
    s.on_event(events.Ready())
    seq = [(events.PlaybackEnd(interrupted=False), "listening"), (events.FollowUp(seconds=5.0), "follow_up"),
           (events.SpeechStart(), "hearing"), (events.Ignored(text="Thank you.", reason="hallucination"), "listening"),
           (events.FollowUp(seconds=5.0), "follow_up"), (events.Listening(reason="follow_up_timeout"), "listening"),
           (events.Wake(), "hearing"), (events.Listening(reason="wake_timeout"), "listening"),
           (events.Wake(), "hearing"), (events.Ignored(text="Jarvis.", reason="empty"), "listening")]
    for event, expected in seq:
        assert s.on_event(event) == expected, event
    s.on_event(events.FollowUp(seconds=5.0))
    s.muted = True
    assert s.state == "muted"


def test_a_reply_paused_by_a_voice_shows_hearing_and_speaking_again_when_it_resumes():
    s = TrayState()
    s.on_event(events.Ready())
    seq = [(events.PlaybackStart(), "speaking"), (events.PlaybackPaused(), "hearing"),
           (events.PlaybackResumed(), "speaking"), (events.PlaybackPaused(), "hearing"), (events.Wake(), "hearing"),
           (events.PlaybackEnd(interrupted=True), "listening")]
    for event, expected in seq:
        assert s.on_event(event) == expected, event


def test_echo_cancellation_down_is_degraded_but_switched_off_is_not():
    s = TrayState()
    s.on_event(events.Ready())
    assert s.on_event(events.Echo(state="off", message="Echo cancellation is off")) == "listening"
    assert s.on_event(events.Echo(state="unavailable", message="livekit is missing")) == "degraded"
    assert s.degraded["echo"] == "livekit is missing" and s.echo == ("unavailable", "livekit is missing")
    assert s.on_event(events.Echo(state="on", message="")) == "listening"
    assert s.on_event(events.Echo(state="no_reference", message="no playback reference")) == "degraded"


def test_a_failed_language_model_degrades_until_it_answers_again():
    s = TrayState()
    s.on_event(events.Ready())
    assert s.on_event(events.Degraded(engine="llm", reason="Cannot reach the LLM server")) == "degraded"
    assert s.on_event(events.TtsFirstChunk(engine="piper")) == "degraded", "speech working says nothing about the LLM"
    assert s.on_event(events.LlmFirstToken(backend="local", seconds=0.1)) == "listening"


def test_a_lost_microphone_is_an_error_until_it_is_back():
    s = TrayState()
    s.on_event(events.Ready())
    assert s.on_event(events.Error(code="audio_device_lost", message="The microphone stopped")) == "error"
    assert s.on_event(events.Wake()) == "error"
    assert s.on_event(events.AudioBack(device="jarvis_mic")) == "listening" and s.error == ""
    assert s.on_event(events.Error(code="audio_stuck", message="Quit Jarvis and start it again")) == "error"
    assert s.on_event(events.AudioBack(device="jarvis_mic")) == "listening", "it closed after all"
    s.on_event(events.Error(code="start_failed", message="no models"))
    assert s.on_event(events.AudioBack(device="jarvis_mic")) == "error", "only a lost microphone is cured by its return"


def test_icon_tooltip_and_menu_follow_events(controller, tray, qtbot):
    assert tray.icon.isVisible() and tray.state == "loading"
    assert [a.text() for a in tray.menu.actions() if a.text()] == [
        DESCRIPTIONS["loading"], "Mute microphone", "Push to talk", "Status window", "Settings…", "Quit Jarvis"]
    controller.bus.emit(events.Ready())
    qtbot.waitUntil(lambda: tray.state == "listening")
    assert tray.icon.toolTip() == f"Jarvis: {DESCRIPTIONS['listening']}"
    controller.bus.emit(events.Wake())               # from another thread, as the listener does
    qtbot.waitUntil(lambda: tray.state == "hearing")
    controller.bus.emit(events.Degraded(engine="csm", reason="weights missing"))
    controller.bus.emit(events.PlaybackEnd(interrupted=False))
    qtbot.waitUntil(lambda: tray.state == "degraded")
    assert tray.state_action.text() == DESCRIPTIONS["degraded"]


def test_mute_from_the_menu(controller, tray, qtbot):
    controller.bus.emit(events.Ready())
    qtbot.waitUntil(lambda: tray.state == "listening")
    tray.mute_action.trigger()
    assert controller.muted and tray.state == "muted" and not tray.talk_action.isEnabled()
    tray.mute_action.trigger()
    assert not controller.muted and tray.state == "listening"


def test_degraded_backend_raises_a_notification(controller, tray, qtbot):
    with qtbot.waitSignal(controller.notify, timeout=3000) as seen:
        controller.bus.emit(events.Degraded(engine="csm", reason="CSM weights are not downloaded"))
    assert seen.args == ["Jarvis voice degraded", "csm is down: CSM weights are not downloaded"]
    with qtbot.waitSignal(controller.notify, timeout=3000) as seen:
        controller.bus.emit(events.Degraded(engine="llm", reason="Cannot reach the LLM server at http://x/v1"))
    assert seen.args == ["Jarvis language model unavailable", "Cannot reach the LLM server at http://x/v1"]
    with qtbot.waitSignal(controller.notify, timeout=3000) as seen:
        controller.bus.emit(events.Degraded(engine="gpu_memory", reason="GPU memory is 95% full on H100 ..."))
    assert seen.args == ["Jarvis: GPU memory is nearly full", "GPU memory is 95% full on H100 ..."]


def test_clicking_the_icon_opens_the_status_window(controller, tray, qtbot, qapp, desktop):
    qtbot.waitUntil(lambda: _docked(desktop, qapp), timeout=5000)
    x, y = desktop.tray_icon_centre(qapp.applicationName())
    with qtbot.waitSignal(tray.status_requested, timeout=5000):
        desktop.click(x, y)


def _docked(desktop, qapp) -> bool:
    try:
        desktop.tray_icon_centre(qapp.applicationName())
        return True
    except RuntimeError:
        return False


def test_menu_screenshot(controller, tray, qtbot, qapp, desktop, tmp_path):
    controller.bus.emit(events.Ready())
    qtbot.waitUntil(lambda: tray.state == "listening" and _docked(desktop, qapp))
    x, y = desktop.tray_icon_centre(qapp.applicationName())
    tray.menu.popup(QPoint(x - tray.menu.sizeHint().width() + 10, y + 18))
    qtbot.waitUntil(lambda: tray.menu.isVisible())
    qtbot.wait(150)
    save_screenshot(tray.menu, "tray-menu")
    whole = desktop.screenshot(tmp_path / "screen.png")   # the icon in the tray with its menu open
    subprocess.run(["convert", str(whole), "-crop", "360x240+920+0", "+repage",
                    str(screenshot_path("tray"))], check=True)
    tray.menu.hide()


def test_gpu_memory_pressure_is_degraded_until_it_is_over():
    s = TrayState()
    s.on_event(events.Ready())
    assert s.on_event(events.Degraded(engine="gpu_memory", reason="GPU memory is 95% full")) == "degraded"
    assert s.on_event(events.Recovered(engine="gpu_memory", message="back under")) == "listening"
