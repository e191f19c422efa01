"""Whisper's words the audio itself holds (jarvis.listen.heard): a half command Whisper finished from its prompt is
judged by what was said."""
from __future__ import annotations

import numpy as np
import pytest

from jarvis.listen.heard import heard


def test_the_last_words_only_the_prompt_suggested_are_left_out():
    pieces = [" Jarvis", ",", " what", " time", " is", " it", "?"]
    assert heard(pieces, [0.03, 0.3, 0.91, 0.98, 0.04, 0.21, 0.9]) == "Jarvis, what time"
    assert heard(pieces, [0.03, 0.3, 0.93, 0.99, 1.0, 0.99, 0.2]) == "Jarvis, what time is it?"   # all said
    # A word is its tokens' mean; the words stop at the first one the audio does not hold, though a loop goes on.
    assert heard([" Why", " is", "n't", " the", " sky", " blue", "?"], [0.9, 0.6, 0.5, 0.9, 0.95, 0.97, 0.1]) == \
        "Why isn't the sky blue?"
    assert heard([" Jarvis", ",", " what", " time", " is", " it", ",", " what", " time", " is", " it"],
                 [0.1, 0.4, 0.9, 0.9, 0.1, 0.2, 0.5, 0.8, 0.9, 0.9, 0.95]) == "Jarvis, what time"
    assert heard([" Tell", " me", " the", " time", ".", " Thank", " you", "."],
                 [0.9, 1.0, 0.99, 1.0, 0.7, 0.01, 0.4, 0.5]) == "Tell me the time."
    assert heard([" Jarvis", ","], [0.02, 0.1]) == "Jarvis,"   # the first word always stays
    # One word said before a long pause may score low without the prompt; the two after it held keep it.
    assert heard([" Jarvis", ",", " what", " day", " is", " it", "?"], [0.07, 0.45, 0.95, 0.28, 0.6, 0.89, 0.85]) == \
        "Jarvis, what day is it?"
    assert heard([" Jarvis", ",", " what", " time", " is", " it", "?"], [0.03, 0.3, 0.91, 0.98, 0.04, 0.6, 0.9]) == \
        "Jarvis, what time"   # only one held word after it: the prompt's completion
    assert heard([], []) == ""


@pytest.mark.slow
def test_whisper_s_completion_of_a_half_command_is_not_what_was_heard():
    """The real tiny.en with the voice loop's prompt finishes "Jarvis, what time…" as "what time is it?" (looping on
    the short window, which is then unsure: the full window's pass gives the transcript); the words the audio holds
    stop at "what time". The whole command is heard whole."""
    from faster_whisper import WhisperModel

    from jarvis.listen.command_engine import CommandDecoding
    from jarvis.listen.short_window import ShortWindowFirst
    from jarvis.listen.stt import cpu_threads, resolve_model
    from jarvis.listen.vocabulary import whisper_prompt
    from tests.speech import piper_16k, piper_cut_at_word

    wake = piper_16k("Jarvis.")
    room = lambda a: np.concatenate([wake, np.zeros(4800, np.float32), a, np.zeros(3200, np.float32)])  # noqa: E731
    whole, half = (room(a) for a in piper_cut_at_word("What time is it?", 2))
    whisper = WhisperModel(resolve_model("tiny.en"), device="cpu", compute_type="int8", cpu_threads=cpu_threads())
    decoding = CommandDecoding(ShortWindowFirst(whisper))
    words = lambda text: " ".join(text.lower().replace(",", " ").strip(" .?!").split())  # noqa: E731
    options = {"language": "en", "beam_size": 1, "initial_prompt": whisper_prompt("jarvis")}
    segments, _ = decoding.transcribe(whole, **options)
    assert words(segments[0].text) == words(decoding.heard) == "jarvis what time is it", (segments, decoding.heard)
    segments, _ = decoding.transcribe(half, **options)
    assert words(decoding.heard) == "jarvis what time", (segments, decoding.heard)
    assert words(" ".join(s.text for s in segments)) != words(decoding.heard), \
        "Whisper no longer finishes the half command here"


@pytest.mark.slow
def test_the_worker_puts_off_the_30_s_pass_of_a_half_command_until_it_is_asked_for():
    """In the voice loop's worker (``defer_half_commands``) the unsure short pass of "Jarvis, what time…" answers
    with the words heard, marked provisional, and no 30 s pass; ``full_window`` then gives that pass alone. A whole
    command the short pass is sure of is unchanged."""
    from faster_whisper import WhisperModel

    from jarvis.listen.command_engine import CommandDecoding
    from jarvis.listen.short_window import ShortWindowFirst
    from jarvis.listen.stt import cpu_threads, resolve_model
    from jarvis.listen.vocabulary import whisper_prompt
    from tests.core.test_stt_worker import _recording_calls
    from tests.speech import piper_16k, piper_cut_at_word

    wake = piper_16k("Jarvis.")
    room = lambda a: np.concatenate([wake, np.zeros(4800, np.float32), a, np.zeros(3200, np.float32)])  # noqa: E731
    whole, half = (room(a) for a in piper_cut_at_word("What time is it?", 2))
    whisper = WhisperModel(resolve_model("tiny.en"), device="cpu", compute_type="int8", cpu_threads=cpu_threads())
    full_passes = _recording_calls(whisper)
    short = ShortWindowFirst(whisper, defer_half_commands=True)
    decoding = CommandDecoding(short)
    options = {"language": "en", "beam_size": 1, "initial_prompt": whisper_prompt("jarvis")}
    segments, _ = decoding.transcribe(half, **options)
    assert decoding.provisional and short.deferred == 1 and full_passes == [], (segments, full_passes)
    assert segments[0].text == decoding.heard and decoding.heard.lower().rstrip(".?!,").endswith("what time")
    decoding.full_window = True
    segments, _ = decoding.transcribe(half, **options)
    assert not decoding.provisional and len(full_passes) == 1 and "what time" in segments[0].text.lower()
    decoding.full_window = False
    segments, _ = decoding.transcribe(whole, **options)
    assert not decoding.provisional and len(full_passes) == 1 and short.deferred == 1, segments

