"""The whole tray app with the real pipeline behind it: real models, virtual mic and speaker, Xvfb + trayer.

Alice is enrolled; "Jarvis, what time is it" is played into the virtual microphone; the status window
must then show what she said, that it was her, the reply and the latency of the turn.
"""
from __future__ import annotations

import copy
import subprocess
import sys

import pytest
from PySide6.QtWidgets import QLabel

from jarvis.config import Settings
from tests.speech import concat_wavs, espeak_wav
from tests.ui.conftest import ROOT, save_screenshot

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
ALICE = "en-us+f3"


def _texts(widget) -> str:
    return "\n".join(label.text() for label in widget.findChildren(QLabel))


def test_spoken_command_shows_up_in_the_status_window(qapp, desktop, virtual_audio, qtbot, tmp_path, jarvis_home):
    lines = ["The quick brown fox jumps over the lazy dog.", "I would like a cup of tea this afternoon.",
             "Please remind me to call my sister tomorrow."]
    samples = [espeak_wav(t, tmp_path / f"alice{i}.wav", ALICE) for i, t in enumerate(lines)]
    enrolled = subprocess.run([sys.executable, "-m", "jarvis", "enroll", "alice", *map(str, samples)], cwd=ROOT,
                              env=virtual_audio.subprocess_env(JARVIS_HOME=str(jarvis_home)),
                              capture_output=True, text=True, timeout=300)
    assert enrolled.returncode == 0, enrolled.stderr
    command = concat_wavs([espeak_wav("Jarvis", tmp_path / "wake.wav", ALICE),
                           espeak_wav("what time is it", tmp_path / "body.wav", ALICE)], tmp_path / "cmd.wav")

    import multiprocessing
    multiprocessing.set_start_method("spawn", force=True)  # as jarvis.app sets it: RealtimeSTT's worker
    from jarvis.ui.app import TrayApp                      # must not fork a process full of Qt threads
    settings = Settings()
    settings.audio.input_device, settings.audio.output_device = "jarvis_mic", "jarvis_speaker"
    settings.tts.engines = ["piper", "system"]
    settings.ui.first_run_done = True
    app = TrayApp(settings, qapp)
    seen = []
    app.controller.event.connect(lambda e: seen.append(e.type))
    try:
        assert app.tray is not None and app.tray.icon.isVisible()  # trayer is a real tray
        app.start()
        qtbot.waitUntil(lambda: app.controller.running or "error" in seen, timeout=240_000)
        assert app.controller.running, _texts(app.status)
        assert app.tray.state == "listening"
        app.open_status()
        virtual_audio.play_into_mic(cmd := command)
        qtbot.waitUntil(lambda: "playback_end" in seen, timeout=60_000)
        qtbot.wait(200)
        shown = _texts(app.status)
        assert "time" in shown.lower() and "alice" in shown.lower(), shown   # transcript and who spoke
        assert "It's" in shown, shown                                        # the reply
        assert " ms" in shown, shown                                         # per-stage latency
        # After the reply Jarvis listens for a follow-up without the wake word, then for its name again.
        assert app.tray.state == "follow_up", app.tray.state
        save_screenshot(app.status, "status-window-live")
        wait_ms = int((settings.listen.follow_up_s + 10) * 1000)
        qtbot.waitUntil(lambda: app.tray.state == "listening", timeout=wait_ms)
        assert "follow_up" in seen and seen[-1] == "listening", seen[-5:]

        # Settings with the pipeline running: a listening change is saved and restarts the listener only; the
        # voices, the speaker encoder and the LLM stay loaded.
        host = app.controller.worker.loop.host
        models = (host.tts, host.encoder, host.llm)
        listener = host.listener
        # Settings → Voices "Preview" while Jarvis runs: the host's voices (a changed system voice is made for
        # the preview alone), played by the loop's player, whose echo canceller hears it as Jarvis's own voice.
        loop = app.controller.worker.loop
        heard_before = loop.echo.far_end.blocks
        draft = copy.deepcopy(app.controller.settings)
        draft.tts.system_rate = 200
        assert app.controller.preview_voice(draft) == "Spoken by piper."
        assert loop.echo.far_end.blocks > heard_before and host.tts is models[0] and not host.tts.closed
        app.open_settings()
        dialog = app.settings_dialog
        dialog.audio_tab.wake_sensitivity.setValue(0.7)
        restarted = []
        tapped: list = []  # a window's microphone tap (level meter, enrollment) must survive the restart
        app.controller.add_tap(tapped.append)
        loads: list[str] = []
        app.controller.progress.connect(lambda part, state: loads.append(part) if state == "loading" else None)
        app.controller.started.connect(lambda: restarted.append(1))
        dialog.apply_button.click()
        qtbot.waitUntil(lambda: bool(restarted), timeout=240_000)
        assert app.controller.running and app.controller.settings.listen.wake_sensitivity == 0.7
        host = app.controller.worker.loop.host
        assert all(now is before for now, before in zip((host.tts, host.encoder, host.llm), models))
        assert host.listener is not listener
        assert "listen" in loads and not {"tts", "speakers", "brain"} & set(loads), loads
        tapped.clear()
        qtbot.waitUntil(lambda: len(tapped) >= 10, timeout=5_000)  # the tap hears the new loop's microphone
        app.controller.remove_tap(tapped.append)
        from jarvis import config
        assert config.load().listen.wake_sensitivity == 0.7
        qtbot.waitUntil(lambda: app.tray.state == "listening", timeout=10_000)
        dialog.close()
    finally:
        app.shutdown()


def test_jarvis_command_starts_the_tray_app_and_quits_on_sigint(desktop, virtual_audio, jarvis_home):
    """`jarvis` with a screen is the tray app (qasync loop, model-host thread); Ctrl+C quits it cleanly."""
    import json

    (jarvis_home / "config").mkdir(parents=True, exist_ok=True)
    (jarvis_home / "config" / "settings.json").write_text(json.dumps({
        "schema_version": 2, "audio": {"input_device": "jarvis_mic", "output_device": "jarvis_speaker"},
        "tts": {"engines": ["piper", "system"]}, "ui": {"first_run_done": True}}))
    env = virtual_audio.subprocess_env(JARVIS_HOME=str(jarvis_home), DISPLAY=desktop.display, QT_QPA_PLATFORM="xcb")
    desktop.run_tray_app([sys.executable, "-m", "jarvis"], env, jarvis_home / "logs" / "jarvis.log", cwd=ROOT)
