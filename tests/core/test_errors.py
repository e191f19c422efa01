"""One line from any exception (jarvis.errors.first_line / describe): the helpers the CLI, the TTS chain, the
keyring, the LLM backends, CSM loading and the settings windows all use."""
from __future__ import annotations

from jarvis.errors import BadInput, describe, first_line


def test_an_exception_with_an_empty_message_is_named_not_an_index_error():
    assert first_line(OSError()) == ""
    assert describe(OSError()) == "OSError"
    assert describe(ValueError("   \n  ")) == "ValueError"


def test_only_the_first_line_and_at_most_the_limit():
    exc = RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB\nsee the documentation for more")
    assert describe(exc) == "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"
    assert first_line(RuntimeError("x" * 500)) == "x" * 160
    assert len(describe(RuntimeError("y" * 500), 200)) == len("RuntimeError: ") + 200


def test_a_jarvis_error_is_its_own_message():
    assert describe(BadInput("bad", "Give a WAV file.")) == "Give a WAV file."


def test_csm_loading_names_an_exception_without_a_message(tmp_path, monkeypatch):
    """loading.py indexed str(exc).splitlines()[0]: an OSError() with no message raised IndexError instead."""
    import pytest
    import transformers

    from jarvis.errors import NotAvailable
    from jarvis.speak.csm import loading

    (tmp_path / "config.json").write_text("{}")

    def fail(*args, **kwargs):
        raise OSError()

    monkeypatch.setattr(transformers.AutoProcessor, "from_pretrained", fail)
    with pytest.raises(NotAvailable) as caught:
        loading.load_model(tmp_path, "cpu", None)
    assert "(OSError)" in caught.value.message
