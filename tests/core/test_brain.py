"""The brain's offline skills, with a fixed clock."""
from __future__ import annotations

import subprocess
import sys
from datetime import datetime

import pytest

from jarvis.brain import Brain, Context, Response, Turn
from jarvis.brain.skills import (FALLBACK, NOTHING_TO_REPEAT, UNKNOWN_SPEAKER, SystemStatusSkill,
                                 clean, default_skills, say_status)

SUNDAY_AFTERNOON = datetime(2026, 11, 22, 14, 45, 12)


def brain_at(when: datetime = SUNDAY_AFTERNOON, **kwargs) -> Brain:
    return Brain(clock=lambda: when, **kwargs)


def ask(brain: Brain, text: str, speaker: str = "unknown") -> Response:
    return brain.respond(Turn(text, speaker=speaker, speaker_score=0.9 if speaker != "unknown" else 0.0))


def test_clean_lowercases_strips_punctuation_expands_contractions_and_drops_the_wake_word():
    assert clean("Hey Jarvis, What's the TIME?!") == "what is the time"
    assert clean("Um, who\u2019s speaking, please?") == "who is speaking"
    assert clean("  ") == ""


@pytest.mark.parametrize("text", [
    "What time is it?", "what's the time", "What is the time now?", "Tell me the time.",
    "Jarvis, what time is it, please?", "Can you tell me what time it is?", "Do you know the time?",
    "time", "What's the current time right now?",
])
def test_time_phrasings(text):
    response = ask(brain_at(), text)
    assert (response.source, response.action, response.text) == ("time", "speak", "It's 2:45 PM.")


@pytest.mark.parametrize("when, spoken", [
    (datetime(2026, 1, 1, 0, 5), "It's 12:05 AM."),
    (datetime(2026, 1, 1, 9, 30), "It's 9:30 AM."),
    (datetime(2026, 1, 1, 12, 0), "It's 12 PM."),   # on the hour: no ":00" (read "zero zero")
    (datetime(2026, 1, 1, 23, 59), "It's 11:59 PM."),
])
def test_time_format_is_hour_minute_with_am_pm(when, spoken):
    assert ask(brain_at(when), "what time is it").text == spoken


@pytest.mark.parametrize("text", [
    "What time does the store close?", "What time is it in Tokyo?", "what time is the meeting",
    "What day is Christmas?", "what's the date of the meeting",
    "What is a GPU?", "how do I stop smoking", "cancel my dentist appointment on Friday",
    "Can you hear me?", "tell me a joke",
])
def test_near_misses_go_to_the_honest_fallback(text):
    response = ask(brain_at(), text)
    assert (response.source, response.action, response.text) == ("fallback", "speak", FALLBACK)


@pytest.mark.parametrize("text", [
    "What day is it?", "What's the date?", "what is today's date", "What day is it today?",
    "what's today", "Tell me the date, Jarvis.", "which day of the week is it",
])
def test_date_phrasings(text):
    response = ask(brain_at(), text)
    assert (response.source, response.text) == ("date", "Today is Sunday, November 22.")


def test_date_uses_english_names_for_other_days():
    assert ask(brain_at(datetime(2025, 2, 3, 8, 0)), "what's the date").text == "Today is Monday, February 3."


@pytest.mark.parametrize("text", [
    "Who am I?", "Do you know who I am?", "who's speaking", "What's my name?",
    "do you recognize my voice",
])
def test_whoami_with_a_known_speaker(text):
    response = ask(brain_at(), text, speaker="Alice")
    assert (response.source, response.text) == ("whoami", "You're Alice.")


def test_whoami_with_an_unknown_speaker_says_so_and_how_to_enroll():
    assert ask(brain_at(), "who am I", speaker="unknown").text == UNKNOWN_SPEAKER
    assert ask(brain_at(), "who am I", speaker="").text == UNKNOWN_SPEAKER
    assert "jarvis enroll YOUR_NAME" in UNKNOWN_SPEAKER


@pytest.mark.parametrize("text", [
    "System status", "How's the GPU?", "how is the system doing", "GPU usage", "status report",
    "what's the cpu load",
])
def test_status_phrasings_use_real_figures(text):
    # Real psutil + jarvis.devices figures, on a machine with or without NVIDIA GPUs.
    from jarvis.devices import gpu_memory
    response = ask(brain_at(), text)
    assert response.source == "status"
    assert response.text.startswith("CPU load is ")
    assert " percent. Memory: " in response.text
    gpus = gpu_memory()
    assert response.text.endswith("gigabytes used. No GPU.") if not gpus else f"GPU {gpus[0]['name']}: " in response.text


def test_status_speaks_each_gpu():
    # A fake probe: no GPU can run here, and the sentence shape is what is under test.
    gib = 1024 ** 3
    figures = {"cpu_percent": 12.4, "memory_used": 5 * gib, "memory_total": 16 * gib,
               "gpus": [{"name": "NVIDIA H100", "used_bytes": int(1.25 * gib), "total_bytes": 80 * gib}]}
    brain = brain_at(skills=[SystemStatusSkill(probe=lambda: figures)])
    assert ask(brain, "system status").text == (
        "CPU load is 12 percent. Memory: 5 of 16 gigabytes used. "
        "GPU NVIDIA H100: 1.2 of 80 gigabytes used.")
    assert say_status({**figures, "gpus": []}).endswith("No GPU.")


@pytest.mark.parametrize("text", [
    "Stop!", "stop the music", "Cancel.", "cancel that", "Never mind.", "nevermind",
    "Be quiet!", "Jarvis, stop.", "please stop talking", "shut up", "that's enough",
    "okay stop", "can you stop",
])
def test_stop_phrasings_stop_and_say_nothing(text):
    response = ask(brain_at(), text)
    assert (response.source, response.action, list(response), response.text) == ("stop", "stop", [], "")


def test_repeat_without_history_says_so():
    response = ask(brain_at(), "repeat that")
    assert (response.action, response.text) == ("speak", NOTHING_TO_REPEAT)


@pytest.mark.parametrize("text", ["Repeat that.", "Say that again?", "could you repeat that",
                                  "Sorry, what?", "come again", "what did you say"])
def test_repeat_says_the_last_answer_again(text):
    brain = brain_at()
    ask(brain, "what time is it")
    response = ask(brain, text)
    assert (response.source, response.action, response.text) == ("repeat", "repeat", "It's 2:45 PM.")


def test_repeat_skips_stop_empty_turns_and_earlier_repeats():
    brain = brain_at()
    ask(brain, "what's the date")
    ask(brain, "stop")
    ask(brain, "   ")
    ask(brain, "repeat that")
    assert ask(brain, "say that again").text == "Today is Sunday, November 22."


def test_repeat_follows_the_latest_answer():
    brain = brain_at()
    ask(brain, "what time is it")
    ask(brain, "who am i", speaker="Bob")
    assert ask(brain, "repeat").text == "You're Bob."


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_turn_asks_to_say_it_again(text):
    response = ask(brain_at(), text)
    assert (response.action, response.text) == ("speak", "Sorry, I didn't catch that.")


def test_fallback_is_the_llm_hook_and_may_stream_lazily():
    produced = []

    def llm(turn: Turn, context: Context) -> Response:
        def sentences():
            for s in (f"Hello {turn.speaker}.", "Second sentence."):
                produced.append(s)
                yield s
        return Response(sentences(), source="llm")

    brain = brain_at(fallback=llm)
    response = ask(brain, "tell me a joke", speaker="Alice")
    assert produced == []                       # nothing generated until the pipeline reads
    assert next(iter(response)) == "Hello Alice."
    assert produced == ["Hello Alice."]
    assert response.text == "Hello Alice. Second sentence."
    assert list(response) == ["Hello Alice.", "Second sentence."]   # replays, no regeneration
    assert ask(brain, "what time is it").source == "time"          # skills still come first
    assert ask(brain, "repeat that").text == "It's 2:45 PM."


def test_custom_skill_list_and_order():
    brain = brain_at(skills=[])
    assert ask(brain, "what time is it").text == FALLBACK
    assert [s.name for s in default_skills()][0] == "stop"


def test_brain_does_not_import_torch():
    # A fresh interpreter: other tests in this session may already have imported torch.
    code = ("import sys; from jarvis.brain import Brain, Turn; "
            "print(Brain().respond(Turn('system status')).text); assert 'torch' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("CPU load is ")


def test_a_misheard_wake_word_sentence_before_the_command_is_skipped():
    brain = Brain(clock=lambda: datetime(2026, 11, 22, 14, 45))
    assert brain.respond(Turn("You're a bitch. What time is it?")).text == "It's 2:45 PM."
    assert brain.respond(Turn("You are missing. Who am I?", speaker="alice")).text.startswith("You're alice")
    assert brain.respond(Turn("The weather is nice. Tell me a joke.")).source != "time"


@pytest.mark.parametrize("heard, source, reply", [
    ("Jarvis. What is the gate today?", "date", "Today is Sunday, November 22."),   # tiny.en on espeak-ng's "date"
    ("What's the thyme?", "time", "It's 2:45 PM."),
    ("what is the dime", "time", "It's 2:45 PM."),
])
def test_a_misheard_word_still_reaches_the_skill(heard, source, reply):
    response = ask(brain_at(), heard)
    assert (response.source, response.text) == (source, reply)


@pytest.mark.parametrize("text", [
    "What is your name?", "Who are you?", "What is the weather today?", "Who is sleeping?",
    "What day was it?", "I want you to stop talking about the weather",
])
def test_questions_close_to_a_skill_phrase_still_reach_the_fallback(text):
    assert ask(brain_at(), text).source == "fallback"
