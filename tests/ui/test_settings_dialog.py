"""The settings dialog with a real controller, real files, the real OS keyring (a private GNOME Keyring),
the real virtual microphone (PulseAudio) and the real speaker model (resemblyzer)."""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import keyring
import pytest
from PySide6.QtCore import Qt

from jarvis import secrets
from jarvis.speakers.store import SpeakerStore
from jarvis.ui.settings.dialog import SettingsDialog
from tests.core.test_cli_bad_input import jarvis
from tests.speech import espeak_wav
from tests.ui.conftest import save_screenshot

PHRASES = ["Jarvis, what is the weather like today?", "Jarvis, set a timer for ten minutes.",
           "Jarvis, play some quiet music in the kitchen."]



@pytest.fixture
def dialog(controller, qtbot):
    d = SettingsDialog(controller)
    qtbot.addWidget(d)
    d.show()
    qtbot.waitExposed(d)
    qtbot.waitUntil(lambda: d.backends_tab.key_state != "unknown", timeout=10000)  # the keyring answered
    yield d
    d.close()


def saved(home: Path) -> dict:
    return json.loads((home / "config" / "settings.json").read_text())


def click(qtbot, button) -> None:
    assert button.isEnabled(), button.text()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_every_tab_saves_through_ok(dialog, qtbot, jarvis_home, virtual_audio):
    voices, backends, audio, models = dialog.voices_tab, dialog.backends_tab, dialog.audio_tab, dialog.models_tab
    voices.speaker_id.setValue(3)

    assert backends.engine_order() == ["csm", "piper", "system", "openai", "edge"]
    backends.select_engine("openai")
    backends.set_enabled("openai", True)
    click(qtbot, backends.up_button)
    click(qtbot, backends.up_button)          # openai now second
    backends.select_engine("csm")
    click(qtbot, backends.down_button)        # csm below openai
    backends.set_enabled("csm", False)
    assert backends.engine_order() == ["openai", "csm", "piper", "system", "edge"]
    backends.openai_voice.setText("nova")
    backends.edge_voice.setText("en-GB-RyanNeural")

    dialog.tabs.setCurrentWidget(audio)
    audio.input_device.setCurrentIndex(audio.input_device.findData("jarvis_mic"))
    audio.output_device.setCurrentIndex(audio.output_device.findData("jarvis_speaker"))
    audio.wake_sensitivity.setValue(0.8)
    audio.silero_sensitivity.setValue(0.55)
    audio.post_speech_silence.setValue(0.7)
    audio.min_recording.setValue(0.5)
    save_screenshot(dialog, "settings-audio")

    dialog.tabs.setCurrentWidget(models)
    models.stt_model.setCurrentIndex(models.stt_model.findData("base.en"))
    models.stt_compute.setCurrentIndex(models.stt_compute.findData("float32"))
    models.csm_device.setCurrentIndex(models.csm_device.findData("cpu"))
    models.csm_dtype.setCurrentIndex(models.csm_dtype.findData("float32"))
    click(qtbot, models.allow_download)
    models.threshold.setValue(0.8)
    save_screenshot(dialog, "settings-models")

    click(qtbot, dialog.ok_button)
    assert not dialog.isVisible()
    data = saved(jarvis_home)
    assert data["tts"]["csm"]["speaker_id"] == 3
    assert data["tts"]["engines"] == ["openai", "piper", "system"]
    assert data["tts"]["cloud"]["openai_voice"] == "nova"
    assert data["tts"]["cloud"]["edge_voice"] == "en-GB-RyanNeural"
    assert data["audio"]["input_device"] == "jarvis_mic" and data["audio"]["output_device"] == "jarvis_speaker"
    assert data["listen"]["wake_sensitivity"] == 0.8 and data["listen"]["silero_sensitivity"] == 0.55
    assert data["listen"]["post_speech_silence"] == 0.7 and data["listen"]["min_recording"] == 0.5
    assert data["listen"]["stt_model"] == "base.en" and data["listen"]["stt_compute_type"] == "float32"
    assert data["tts"]["csm"]["device"] == "cpu" and data["tts"]["csm"]["dtype"] == "float32"
    assert data["tts"]["csm"]["allow_download"] is True and data["speakers"]["threshold"] == 0.8
    assert dialog.controller.settings.listen.stt_model == "base.en"
    assert data["preset"] == "custom"  # the engines, silence and model the balanced preset sets were edited

    dialog.show()  # opening again shows what is saved, in the saved order
    assert dialog.backends_tab.engine_order()[:3] == ["openai", "piper", "system"]
    assert dialog.audio_tab.input_device.currentData() == "jarvis_mic"


def test_bad_values_and_cancel_save_nothing(dialog, qtbot, jarvis_home):
    dialog.models_tab.csm_device.setEditText("gpu9")
    click(qtbot, dialog.ok_button)
    assert dialog.isVisible() and "CSM device must be auto, cpu, cuda" in dialog.message.text()
    assert "\n" not in dialog.message.text()
    dialog.models_tab.csm_device.setEditText("cuda:1")
    dialog.models_tab.stt_model.setEditText(str(jarvis_home / "no-such-model"))
    click(qtbot, dialog.apply_button)
    assert "does not exist" in dialog.message.text()
    for name in dialog.backends_tab.engine_order():
        dialog.backends_tab.set_enabled(name, False)
    dialog.models_tab.stt_model.setEditText("tiny.en")
    click(qtbot, dialog.apply_button)
    assert "Tick at least one voice engine" in dialog.message.text()
    assert not (jarvis_home / "config" / "settings.json").exists()
    click(qtbot, dialog.cancel_button)
    assert not dialog.isVisible() and not (jarvis_home / "config" / "settings.json").exists()
    dialog.show()
    assert dialog.backends_tab.enabled_engines() == ["csm", "piper", "system"]  # the edits are gone


def test_cloned_voice_bad_clip_shows_one_line_and_saves_nothing(dialog, qtbot, jarvis_home, tmp_path):
    voices = dialog.voices_tab
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    qtbot.keyClicks(voices.new_name, "narrator")
    voices.clip_edit.setText(str(corrupt))
    qtbot.keyClicks(voices.transcript, "Hello there.")
    click(qtbot, voices.add_voice_button)
    qtbot.waitUntil(lambda: "not a readable audio file" in voices.voice_message.text(), timeout=10000)
    assert "\n" not in voices.voice_message.text() and voices.voice_combo.findData("narrator") < 0
    click(qtbot, dialog.ok_button)
    assert saved(jarvis_home)["tts"]["voices"] == {} and saved(jarvis_home)["tts"]["csm"]["voice"] == ""

    dialog.show()
    good = espeak_wav("This is how the narrator sounds.", tmp_path / "narrator.wav", rate=24000)
    voices.new_name.setText("narrator")
    voices.clip_edit.setText(str(good))
    voices.transcript.setText("This is how the narrator sounds.")
    click(qtbot, voices.add_voice_button)
    qtbot.waitUntil(lambda: voices.voice_combo.currentData() == "narrator", timeout=10000)
    click(qtbot, dialog.ok_button)
    data = saved(jarvis_home)["tts"]
    assert data["voices"] == {"narrator": {"clip": str(good), "text": "This is how the narrator sounds."}}
    assert data["csm"]["voice"] == "narrator"


def test_openai_key_goes_only_to_the_keyring(dialog, qtbot, jarvis_home, caplog):
    backends = dialog.backends_tab
    dialog.tabs.setCurrentWidget(backends)
    key = f"sk-test-{uuid.uuid4().hex}"
    try:
        assert backends.key_status.text() == "key not set"
        qtbot.keyClicks(backends.key_edit, key)
        click(qtbot, dialog.ok_button)                      # stores the typed key, then saves and closes
        qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=10000)
        assert keyring.get_password("jarvis", secrets.OPENAI_API_KEY) == key
        assert (jarvis_home / "config" / "settings.json").exists()
        for folder, _, files in os.walk(jarvis_home):
            for name in files:
                assert key.encode() not in (Path(folder) / name).read_bytes(), name
        assert key not in caplog.text

        dialog.show()
        qtbot.waitUntil(lambda: backends.key_status.text() == "key set (in the OS keyring)", timeout=10000)
        assert backends.key_edit.text() == ""
        save_screenshot(dialog, "settings-backends")
        click(qtbot, backends.remove_key_button)
        qtbot.waitUntil(lambda: backends.key_status.text() == "key not set", timeout=10000)
        assert keyring.get_password("jarvis", secrets.OPENAI_API_KEY) is None
    finally:
        try:
            keyring.delete_password("jarvis", secrets.OPENAI_API_KEY)
        except keyring.errors.PasswordDeleteError:
            pass


def test_no_secure_keyring_is_one_clear_line(controller, qtbot, jarvis_home):
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        d = SettingsDialog(controller)
        qtbot.addWidget(d)
        d.show()
        qtbot.waitUntil(lambda: d.backends_tab.key_state == "unavailable", timeout=10000)
        line = d.backends_tab.key_status.text()
        assert line.startswith("No secure keyring") and "\n" not in line
        qtbot.keyClicks(d.backends_tab.key_edit, "sk-never-stored")
        click(qtbot, d.ok_button)
        qtbot.waitUntil(lambda: "nothing was saved" in d.message.text(), timeout=10000)
        assert d.isVisible() and not (jarvis_home / "config" / "settings.json").exists()
        d.close()
    finally:
        keyring.set_keyring(previous)


@pytest.mark.slow
def test_enroll_identify_rename_delete_through_the_dialog(dialog, qtbot, jarvis_home, virtual_audio, tmp_path):
    """Phrases spoken (espeak-ng) into the virtual microphone while the enroll window records them."""
    wavs = [espeak_wav(p, tmp_path / f"p{i}.wav", "en-us+f2", speed=185) for i, p in enumerate(PHRASES)]
    probe = espeak_wav("Please remind me to call my sister tomorrow.", tmp_path / "probe.wav", "en-us+f2",
                       speed=185)
    voices = dialog.voices_tab
    click(qtbot, voices.enroll_button)
    enroll = voices.enroll_dialog.widget
    qtbot.waitExposed(voices.enroll_dialog)
    enroll.phrases, enroll.phrase_seconds, enroll.gap_s = PHRASES, 3.0, 0.3
    qtbot.keyClicks(enroll.name_edit, "Alice")
    click(qtbot, enroll.start_button)
    for i, wav in enumerate(wavs):
        qtbot.waitUntil(lambda: enroll.state == "recording" and enroll.index == i, timeout=10000)
        virtual_audio.play_into_mic(wav, block=False)
        if i == 1:
            qtbot.wait(800)
            assert enroll.meter.peak > 0.3 and enroll.phrase_bars[1].value() > 0
    qtbot.waitUntil(lambda: enroll.state in ("done", "idle"), timeout=40000)
    assert enroll.message.text() == "Enrolled Alice with 3 recordings.", enroll.message.text()
    voices.enroll_dialog.close()
    assert voices.people.item(0).text() == "Alice  ·  3 samples"

    voices.select_person("Alice")
    click(qtbot, voices.identify_button)
    qtbot.waitUntil(lambda: voices.recorder.recording, timeout=5000)
    virtual_audio.play_into_mic(probe, block=False)
    qtbot.waitUntil(lambda: "Heard" in voices.people_message.text() or "Not" in voices.people_message.text()
                    or voices.people_message.styleSheet().startswith("color: #b3"), timeout=30000)
    assert voices.people_message.text().startswith("Heard Alice (score"), voices.people_message.text()
    # Enrollment and identification used the model host's encoder, the one the voice loop will use: the windows
    # build no model of their own (the loop is not running here, the host owns it all the same).
    encoder = dialog.controller.worker.host.encoder
    assert encoder is not None and encoder.loaded and dialog.controller.speaker_encoder() is encoder
    dialog.tabs.setCurrentWidget(voices)
    save_screenshot(dialog, "settings-voices")

    result = jarvis("identify", str(probe))
    assert result.returncode == 0 and result.stdout.split()[0] == "Alice", result.stdout + result.stderr

    click(qtbot, voices.rename_button)
    voices.rename_dialog.setTextValue("Ally")
    voices.rename_dialog.accept()
    assert SpeakerStore().names() == ["Ally"] and voices.selected_person() == "Ally"

    click(qtbot, voices.delete_button)
    box = voices.confirm_box
    assert box.isVisible() and "Ally" in box.text()
    click(qtbot, box.button(box.StandardButton.Yes))
    assert SpeakerStore().names() == [] and voices.selected_person() is None
    assert voices.people_message.text() == "Deleted Ally."


def test_preview_speaks_with_the_edited_chain(dialog, qtbot, virtual_audio):
    """Preview uses the dialog's edits (not yet saved): csm is off here, piper is down (a bad voice file)."""
    backends, voices = dialog.backends_tab, dialog.voices_tab
    backends.set_enabled("csm", False)
    dialog.controller.settings.tts.piper_voice = "/nonexistent/voice.onnx"
    with virtual_audio.record_speaker() as heard:
        click(qtbot, voices.preview_button)
        qtbot.waitUntil(lambda: voices.preview_button.isEnabled(), timeout=30000)
    line = voices.preview_message.text()
    assert line.startswith("Spoken by system. (piper is down:"), line
    assert float(abs(heard.samples).max()) > 0.05  # it was really played on the speaker


def test_a_speaker_plugged_in_while_jarvis_runs_is_listed_on_refresh(dialog, qtbot, virtual_audio):
    """Listed by a fresh PortAudio in a child process: this one's, which the voice loop's streams use, is left
    alone (it still lists only what it saw at start)."""
    from jarvis.audio.devices import list_devices

    audio = dialog.audio_tab
    audio.output_device.setCurrentIndex(audio.output_device.findData("jarvis_speaker"))
    with virtual_audio.plugged_in_speaker("late_speaker"):
        assert audio.output_device.findData("late_speaker") < 0
        click(qtbot, audio.refresh_devices)
        assert audio.output_device.findData("late_speaker") > 0
        assert audio.output_device.currentData() == "jarvis_speaker", "the choice is kept"
        assert "late_speaker" not in [d["name"] for d in list_devices()]


def test_a_preset_fills_in_its_fields_and_an_edit_makes_it_custom(dialog, qtbot, jarvis_home):
    models, audio, backends = dialog.models_tab, dialog.audio_tab, dialog.backends_tab
    assert models.preset.currentData() == "balanced"
    dialog.tabs.setCurrentWidget(models)
    models.preset.setCurrentIndex(models.preset.findData("low_latency"))
    models.preset.activated.emit(models.preset.currentIndex())  # as a person's pick in the list does
    assert audio.post_speech_silence.value() == 0.3 and models.beam_size.value() == 1
    assert backends.engine_order()[:3] == ["piper", "csm", "system"]
    assert models.end_of_turn.currentData() == "model"
    click(qtbot, dialog.apply_button)
    data = saved(jarvis_home)
    assert data["preset"] == "low_latency"
    assert data["audio"]["block_ms"] == 10 and data["audio"]["output_block_ms"] == 20
    assert data["listen"]["end_of_turn_silence"] == 0.1 and data["tts"]["engines"] == ["piper", "csm", "system"]

    models.beam_size.setValue(3)          # one of the preset's settings edited: the settings are Custom now
    click(qtbot, dialog.apply_button)
    data = saved(jarvis_home)
    assert data["preset"] == "custom" and data["listen"]["beam_size"] == 3 and data["audio"]["block_ms"] == 10
    dialog.reload()  # as when the window opens again
    assert models.preset.currentData() == "custom"

    models.end_of_turn.setCurrentIndex(models.end_of_turn.findData("silence"))
    models.preset.setCurrentIndex(models.preset.findData("balanced"))
    models.preset.activated.emit(models.preset.currentIndex())
    assert models.end_of_turn.currentData() == "model" and models.beam_size.value() == 1
    click(qtbot, dialog.ok_button)
    data = saved(jarvis_home)
    assert data["preset"] == "balanced" and data["audio"]["block_ms"] == 32 and data["listen"]["beam_size"] == 1
    assert data["audio"]["output_block_ms"] == 20


def test_the_speech_server_switch_saves_and_shows_its_token_from_the_keyring(dialog, qtbot, jarvis_home):
    from jarvis.serve import security

    backends = dialog.backends_tab
    dialog.tabs.setCurrentWidget(backends)
    try:
        assert not backends.serve_enabled.isChecked() and backends.serve_host.text() == "127.0.0.1"
        assert backends.token.text() == ""                    # hidden until asked for
        click(qtbot, backends.show_token_button)              # made and kept in the keyring, as the server does
        qtbot.waitUntil(lambda: backends.token.text() != "", timeout=10000)
        token = backends.token.text()
        assert keyring.get_password("jarvis", security.TOKEN_NAME) == token and len(token) >= 32
        click(qtbot, backends.serve_enabled)
        backends.serve_port.setValue(8899)
        click(qtbot, backends.serve_wyoming)
        backends.serve_host.setText("")
        click(qtbot, dialog.apply_button)
        assert "address to listen on" in dialog.message.text() and "\n" not in dialog.message.text()
        assert not (jarvis_home / "config" / "settings.json").exists()
        backends.serve_host.setText("127.0.0.1")
        click(qtbot, dialog.ok_button)
        assert saved(jarvis_home)["serve"] == {"enabled": True, "host": "127.0.0.1", "port": 8899, "wyoming": True}
        assert dialog.controller.settings.serve.enabled
        assert token not in (jarvis_home / "config" / "settings.json").read_text()
        dialog.show()
        assert backends.serve_enabled.isChecked() and backends.serve_port.value() == 8899
        assert backends.token.text() == ""
    finally:
        try:
            keyring.delete_password("jarvis", security.TOKEN_NAME)
        except keyring.errors.PasswordDeleteError:
            pass
