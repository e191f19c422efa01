"""The settings dialog's Brain tab with a real controller, real files and the real OS keyring (the private
GNOME Keyring the ``desktop`` fixture runs on its own D-Bus session bus)."""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import keyring
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QFileDialog, QRadioButton

from jarvis import secrets
from jarvis.ui.settings.dialog import SettingsDialog
from tests.ui.conftest import save_screenshot


@pytest.fixture
def dialog(controller, qtbot):
    d = SettingsDialog(controller)
    qtbot.addWidget(d)
    d.show()
    qtbot.waitExposed(d)
    d.tabs.setCurrentWidget(d.brain_tab)
    qtbot.waitUntil(lambda: all(box.state != "unknown" for box in d.key_boxes), timeout=10000)  # keyring answered
    yield d
    d.close()


@pytest.fixture
def no_keys():
    yield
    for name in (secrets.LLM_API_KEY, secrets.OPENAI_API_KEY):
        try:
            keyring.delete_password("jarvis", name)
        except keyring.errors.PasswordDeleteError:
            pass


def settings_file(home: Path) -> Path:
    return home / "config" / "settings.json"


def click(qtbot, button) -> None:
    """A real click; on a radio button's indicator (a click right of its label does nothing)."""
    assert button.isEnabled(), button.text()
    at = QPoint(8, button.height() // 2) if isinstance(button, QRadioButton) else QPoint()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton, pos=at)


def replace(qtbot, edit, text: str) -> None:
    edit.clear()
    qtbot.keyClicks(edit, text)


def test_brain_tab_saves_through_ok(dialog, qtbot, jarvis_home, tmp_path, monkeypatch):
    brain = dialog.brain_tab
    assert brain.backend() == "local" and brain.local_model.text() == ""
    assert brain.local_model.placeholderText() == "empty = the bundled SmolLM2-135M"
    assert brain.local_fields.isEnabled() and not brain.server_fields.isEnabled()

    click(qtbot, brain.backend_buttons["openai"])
    assert brain.server_fields.isEnabled() and not brain.local_fields.isEnabled()
    replace(qtbot, brain.base_url, "http://127.0.0.1:1234/v1")
    replace(qtbot, brain.model, "qwen2.5:1.5b")
    brain.timeout.setValue(45)
    brain.memory_turns.setValue(4)
    brain.memory_idle.setValue(120)
    brain.cache_size.setValue(10)
    brain.cache_ttl.setValue(60)
    brain.max_tokens.setValue(200)
    brain.temperature.setValue(0.7)
    replace(qtbot, brain.system_prompt, "You are Jarvis. You talk to {speaker}. Be brief.")
    save_screenshot(dialog, "settings-brain")

    click(qtbot, dialog.ok_button)
    assert not dialog.isVisible()
    saved = json.loads(settings_file(jarvis_home).read_text())["brain"]
    assert saved == {**saved, "backend": "openai", "base_url": "http://127.0.0.1:1234/v1", "model": "qwen2.5:1.5b",
                     "timeout_s": 45.0, "memory_turns": 4, "memory_idle_s": 120.0, "cache_size": 10,
                     "cache_ttl_s": 60.0, "max_tokens": 200, "temperature": 0.7,
                     "system_prompt": "You are Jarvis. You talk to {speaker}. Be brief.", "local_model": ""}
    assert dialog.controller.settings.brain.backend == "openai"
    assert dialog.controller.settings.brain.model == "qwen2.5:1.5b"

    dialog.show()  # opening again shows what is saved
    qtbot.waitExposed(dialog)
    assert brain.backend() == "openai" and brain.model.text() == "qwen2.5:1.5b" and brain.memory_idle.value() == 120
    model = tmp_path / "tiny.gguf"
    model.write_bytes(b"GGUF")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(model), "GGUF models (*.gguf)"))
    click(qtbot, brain.backend_buttons["local"])
    click(qtbot, brain.browse_button)
    assert brain.local_model.text() == str(model)
    brain.local_threads.setValue(3)
    click(qtbot, dialog.apply_button)
    assert dialog.message.text() == "Saved and applied."
    saved = json.loads(settings_file(jarvis_home).read_text())["brain"]
    assert (saved["backend"], saved["local_model"], saved["local_threads"]) == ("local", str(model), 3)
    assert saved["model"] == "qwen2.5:1.5b"  # the server's fields are kept

    click(qtbot, brain.backend_buttons["off"])
    assert not brain.local_fields.isEnabled() and not brain.server_fields.isEnabled()
    click(qtbot, dialog.ok_button)
    assert json.loads(settings_file(jarvis_home).read_text())["brain"]["backend"] == "off"
    assert dialog.controller.settings.brain.backend == "off"


def test_bad_brain_values_save_nothing(dialog, qtbot, jarvis_home, tmp_path):
    brain = dialog.brain_tab
    missing = tmp_path / "no-such-model.gguf"
    click(qtbot, brain.backend_buttons["local"])
    replace(qtbot, brain.local_model, str(missing))
    click(qtbot, dialog.ok_button)
    assert dialog.isVisible() and f"The local model file {missing} does not exist" in dialog.message.text()

    click(qtbot, brain.backend_buttons["openai"])        # the model file no longer matters
    replace(qtbot, brain.base_url, "ftp://localhost:11434/v1")
    click(qtbot, dialog.ok_button)
    assert "The server URL must be an http(s) URL (got 'ftp://localhost:11434/v1'" in dialog.message.text()

    replace(qtbot, brain.base_url, "https://llm.example.org/v1")
    brain.model.clear()
    click(qtbot, dialog.apply_button)
    assert dialog.message.text().startswith("Give the model name the server knows")

    replace(qtbot, brain.model, "llama3.2")
    brain.system_prompt.clear()
    click(qtbot, dialog.apply_button)
    assert dialog.message.text().startswith("The system prompt is empty")
    assert "\n" not in dialog.message.text()
    assert dialog.isVisible() and not settings_file(jarvis_home).exists()

    click(qtbot, dialog.cancel_button)
    assert not settings_file(jarvis_home).exists()
    dialog.show()  # the edits are gone
    assert brain.backend() == "local" and brain.local_model.text() == "" and brain.system_prompt.toPlainText()


def test_llm_key_goes_only_to_the_keyring(dialog, qtbot, jarvis_home, caplog, no_keys):
    box = dialog.brain_tab.key_box
    click(qtbot, dialog.brain_tab.backend_buttons["openai"])
    llm_key, tts_key = f"sk-llm-{uuid.uuid4().hex}", f"sk-tts-{uuid.uuid4().hex}"
    assert box.status.text() == "key not set" and not box.remove_button.isEnabled()
    qtbot.keyClicks(box.edit, llm_key)
    qtbot.keyClicks(dialog.backends_tab.key_edit, tts_key)   # both typed keys are stored on OK
    click(qtbot, dialog.ok_button)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=10000)
    assert secrets.get_secret(secrets.LLM_API_KEY) == llm_key
    assert secrets.get_secret(secrets.OPENAI_API_KEY) == tts_key
    assert settings_file(jarvis_home).exists()
    for folder, _, files in os.walk(jarvis_home):
        for name in files:
            data = (Path(folder) / name).read_bytes()
            assert llm_key.encode() not in data and tts_key.encode() not in data, name
    assert llm_key not in caplog.text and tts_key not in caplog.text

    dialog.show()
    qtbot.waitExposed(dialog)
    qtbot.waitUntil(lambda: box.status.text() == "key set (in the OS keyring)", timeout=10000)
    assert box.edit.text() == ""
    click(qtbot, box.remove_button)
    qtbot.waitUntil(lambda: box.status.text() == "key not set", timeout=10000)
    assert secrets.get_secret(secrets.LLM_API_KEY) is None
    assert secrets.get_secret(secrets.OPENAI_API_KEY) == tts_key   # the other key is untouched


def test_llm_key_not_stored_saves_nothing(controller, qtbot, jarvis_home):
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        d = SettingsDialog(controller)
        qtbot.addWidget(d)
        d.show()
        qtbot.waitUntil(lambda: d.brain_tab.key_box.state == "unavailable", timeout=10000)
        assert d.brain_tab.key_box.status.text().startswith("No secure keyring")
        d.tabs.setCurrentWidget(d.brain_tab)
        click(qtbot, d.brain_tab.backend_buttons["openai"])
        qtbot.keyClicks(d.brain_tab.key_box.edit, "sk-never-stored")
        click(qtbot, d.ok_button)
        qtbot.waitUntil(lambda: "nothing was saved" in d.message.text(), timeout=10000)
        assert d.message.text().startswith("The LLM server API key was not stored")
        assert d.isVisible() and not settings_file(jarvis_home).exists()
        d.close()
    finally:
        keyring.set_keyring(previous)
