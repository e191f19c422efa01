"""Whisper's vocabulary bias: the ``initial_prompt`` that primes faster-whisper with the wake word and the
skills' commands, so tiny.en hears "date", not "gate", and "Jarvis", not "John remiss".

Whisper reads the prompt as text said just before the clip. Measured with ``benchmarks/whisper_prompt.py``
(results/whisper-prompt-cpu.json): 32 commands ("Jarvis, what is the date today", 10 open questions) in 5 voices
(espeak-ng en-us+f3, en-us+f5, en-gb-scotland+f3, en-us+m3; Piper joe), tiny.en greedy as RealtimeSTT runs it:

| prompt | transcript word for word | intent right | open question kept for the LLM | wake word + 2 s noise: ignored |
|---|---|---|---|---|
| none | 69/160 | 98/160 | 50/50 | 18/36 |
| "Jarvis," (before) | 91/160 | 114/160 | 50/50 | 23/36 |
| this one | 112/160 | 138/160 | 50/50 | 36/36 |
| the same in sentences ("What time is it? …") | 119/160 | 140/160 | 50/50 | 25/36 |
| a longer list (12 commands) | 119/160 | 142/160 | 50/50 | 35/36 |

Longer prompts heard a few more commands right but made Whisper repeat prompt phrases ("what day is it, what
day is it, what day is it?") or hear the wake word alone as other words ("It's not a mission."). No prompt put
its words into 2 s of silence or noise without the wake word. faster-whisper's ``hotwords`` (after "Jarvis,")
gained little (118/160), and RealtimeSTT 1.1.2's faster-whisper engine cannot pass it anyway. Intents are counted with
jarvis.brain.intents; with the old regexes and "Jarvis," it was 110/160.

This prompt also makes Whisper finish a half command from it: Piper's commands cut at a word break ("Jarvis, what
time…") came back finished ("…what time is it?") 11 times in 16 (3 with "Jarvis," alone, 1 with a glossary of single
words that hears fewer commands right). So at a pause the end-of-turn words check judges only the words the audio
itself holds (``jarvis.listen.heard``); the transcript keeps the prompt's accuracy.
"""
from __future__ import annotations

# Commands in the words the skills match (jarvis.brain.skills), as a user says them.
SKILL_COMMANDS = ("what time is it", "what's the date today", "who am I", "system status", "how's the GPU",
                  "CPU load", "stop", "repeat that")


def whisper_prompt(wake_word: str) -> str:
    """The ``initial_prompt`` for faster-whisper: "Jarvis: what time is it, what's the date today, …, stop,
    repeat that." """
    return f"{wake_word.strip().capitalize()}: {', '.join(SKILL_COMMANDS)}."
