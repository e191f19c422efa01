"""Which ``initial_prompt`` makes tiny.en hear Jarvis's commands right? (jarvis/listen/vocabulary.py)

Spoken commands ("Jarvis, what is the date today", open questions such as "Jarvis, why is the sky blue")
in several espeak-ng voices and Piper's, plus the wake word followed by 2 s of silence or noise, are
transcribed by the bundled tiny.en exactly as RealtimeSTT's faster-whisper engine does (language "en",
the configured beam size, suppress_tokens [-1], no VAD filter), once per candidate prompt. For each:

- words_right: commands whose transcript (wake word stripped, cleaned) is word for word what was said;
- intent_right: commands the skill matcher sends where they belong (a skill, or the LLM for open questions);
- open_kept: open questions that still reach the LLM (a prompt that is too strong turns them into commands);
- noise_clean: 2 s of silence/noise, after the wake word in each voice and alone, that give no command (empty,
  or a hallucination the filter drops); noise_leaks lists what would have been answered instead.

Run: .venv/bin/python benchmarks/whisper_prompt.py [--out benchmarks/results/whisper-prompt-cpu.json]
(about 4 minutes per prompt on 2 cores with one CPU thread). sox runs repeatable (-R: the same dither every
run; tiny.en hears "date" or "gate" depending on it), but Piper's voice varies from run to run, so figures move
by a few between runs; within a run every prompt hears the same clips.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jarvis.brain.skills import clean, match_skill  # noqa: E402
from jarvis.config import ListenSettings  # noqa: E402
from jarvis.listen.stt import resolve_model  # noqa: E402
from jarvis.listen.transcript import is_hallucination, strip_wake_word  # noqa: E402
from jarvis.listen.vocabulary import whisper_prompt  # noqa: E402

COMMANDS = [  # (what is said after "Jarvis, ", the skill that should answer; None = the LLM)
    ("what is the date today", "date"), ("what time is it", "time"), ("who am I", "whoami"),
    ("what's the date", "date"), ("system status", "status"), ("stop", "stop"),
    ("what's the time", "time"), ("what day is it", "date"), ("what is today's date", "date"),
    ("tell me the time", "time"), ("what's my name", "whoami"), ("how's the GPU", "status"),
    ("GPU usage", "status"), ("repeat that", "repeat"), ("say that again", "repeat"),
    ("never mind", "stop"), ("be quiet", "stop"), ("what time is it now", "time"),
    ("do you know who I am", "whoami"), ("how is the system doing", "status"),
    ("what day of the week is it", "date"), ("CPU load", "status"),
    ("why is the sky blue", None), ("what is a GPU", None), ("what time does the store close", None),
    ("what day is Christmas", None), ("tell me a joke", None), ("what is the capital of France", None),
    ("how do I stop smoking", None), ("what is the weather like today", None), ("who wrote Hamlet", None),
    ("what time is it in Tokyo", None),
]
ESPEAK_VOICES = ["en-us+f3", "en-us+f5", "en-gb-scotland+f3", "en-us+m3"]
NOISES = {  # sox synth arguments for 2 s after the wake word
    "silence": None, "white -40 dB": "whitenoise vol 0.01", "white -26 dB": "whitenoise vol 0.05",
    "pink -26 dB": "pinknoise vol 0.05", "brown -20 dB": "brownnoise vol 0.1",
    "white -14 dB": "whitenoise vol 0.2",
}


def candidate_prompts(wake_word: str) -> dict[str, str | None]:
    w = wake_word.capitalize()
    return {
        "none": None,
        "wake word only (before)": f"{w},",
        "glossary": f"{w}: time, date, today, who am I, system status, GPU, CPU, stop, repeat.",
        "longer phrase list": f"{w}: what time is it, what's the date today, what day is it, who am I, "
                              "what's my name, system status, how's the GPU, CPU load, stop, never mind, "
                              "repeat that, say that again.",
        "sentences": f"{w}, what time is it? What's the date today? Who am I? System status. How's the GPU? "
                     "Stop. Repeat that.",
        "vocabulary.whisper_prompt": whisper_prompt(wake_word),
    }


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as f:
        assert f.getframerate() == 16000 and f.getnchannels() == 1
        return np.frombuffer(f.readframes(f.getnframes()), dtype=np.int16).astype(np.float32) / 32768


def sox_16k(raw: Path, out: Path, *effects: str) -> np.ndarray:
    subprocess.run(["sox", "-R", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(out), *effects], check=True)
    return read_wav(out)


def espeak(text: str, voice: str, tmp: Path) -> np.ndarray:
    raw = tmp / "raw.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True)
    return sox_16k(raw, tmp / "out.wav")


def piper_speaker():
    from jarvis.audio.resample import resample
    from jarvis.speak.piper_engine import PiperEngine

    engine = PiperEngine()
    engine.load()

    def say(text: str, tmp: Path) -> np.ndarray:
        audio = np.concatenate(list(engine.synthesize(text)))
        return resample(audio, engine.sample_rate, 16000).astype(np.float32)
    return say


def with_room(speech: np.ndarray, lead_s: float = 0.3, tail_s: float = 0.5) -> np.ndarray:
    """Silence before and after, as RealtimeSTT's pre-roll and end-of-speech silence leave it."""
    return np.concatenate([np.zeros(int(lead_s * 16000), np.float32), speech,
                           np.zeros(int(tail_s * 16000), np.float32)])


def noise_clip(effect: str | None, tmp: Path) -> np.ndarray:
    if effect is None:
        return np.zeros(32000, np.float32)
    out = tmp / "noise.wav"
    subprocess.run(["sox", "-R", "-n", "-r", "16000", "-c", "1", "-b", "16", str(out), "synth", "2", *effect.split()],
                   check=True)
    return read_wav(out)


def make_clips(tmp: Path) -> tuple[list[dict], list[dict]]:
    voices = {v: (lambda text, t, v=v: espeak(text, v, t)) for v in ESPEAK_VOICES}
    voices["piper joe"] = piper_speaker()
    commands, noises = [], []
    for voice, say in voices.items():
        for said, skill in COMMANDS:
            commands.append({"voice": voice, "said": said, "skill": skill,
                             "audio": with_room(say(f"Jarvis, {said}.", tmp))})
        wake = say("Jarvis.", tmp)
        for name, effect in NOISES.items():
            noises.append({"voice": voice, "noise": name,
                           "audio": np.concatenate([with_room(wake, tail_s=0.0), noise_clip(effect, tmp)])})
    for name, effect in NOISES.items():  # no wake word: push-to-talk, follow-ups
        noises.append({"voice": "-", "noise": name, "audio": noise_clip(effect, tmp)})
    return commands, noises


def intent_of(text: str) -> str | None:
    """What the brain would answer with: the whole transcript, else a later sentence (as Brain._match)."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()]
    for start in range(len(sentences)):
        skill, _ = match_skill(" ".join(sentences[start:]))
        if skill is not None:
            return skill.name
    return None


def transcribe_all(model, settings: ListenSettings, prompt: str | None, commands, noises,
                   hotwords: str | None = None) -> dict:
    """Raw transcripts of every clip with one prompt: [voice, what was said or the noise, what Whisper heard]."""
    def transcribe(audio):
        segments, _ = model.transcribe(audio, language=settings.language, beam_size=settings.beam_size,
                                       initial_prompt=prompt, suppress_tokens=[-1], vad_filter=False,
                                       hotwords=hotwords)
        return " ".join(s.text for s in segments).strip()

    started = time.perf_counter()
    transcripts = [[clip["voice"], clip.get("said") or clip["noise"], transcribe(clip["audio"])]
                   for clip in commands + noises]
    return {"prompt": prompt, "hotwords": hotwords, "seconds": round(time.perf_counter() - started, 1),
            "transcripts": transcripts}


def score(run: dict) -> dict:
    """The figures of one prompt's transcripts, with today's wake-word stripping, filter and skill matcher."""
    expected = dict(COMMANDS)
    rows, noise_rows = [], []
    for voice, said, raw in run["transcripts"]:
        text = strip_wake_word(raw)
        if said in expected:
            rows.append({"voice": voice, "said": said, "heard": raw, "skill": expected[said],
                         "words_right": clean(text) == clean(said), "matched": intent_of(text)})
        else:
            noise_rows.append({"heard": raw, "command": bool(text) and not is_hallucination(text)})
    open_rows = [r for r in rows if r["skill"] is None]
    return {
        "prompt": run["prompt"], "hotwords": run["hotwords"], "seconds": run["seconds"],
        "words_right": sum(r["words_right"] for r in rows), "commands": len(rows),
        "intent_right": sum(r["matched"] == r["skill"] for r in rows),
        "skill_intent_right": sum(r["matched"] == r["skill"] for r in rows if r["skill"]),
        "skill_commands": len(rows) - len(open_rows),
        "open_kept": sum(r["matched"] is None for r in open_rows), "open_questions": len(open_rows),
        "noise_clean": sum(not r["command"] for r in noise_rows), "noise_clips": len(noise_rows),
        "noise_leaks": sorted({r["heard"] for r in noise_rows if r["command"]}),
        "misheard": [f'{r["voice"]}: "{r["said"]}" -> "{r["heard"]}" ({r["matched"]})'
                     for r in rows if not r["words_right"] or r["matched"] != r["skill"]],
        "transcripts": run["transcripts"],
    }


def summary(name: str, r: dict) -> str:
    return (f"{name:28} words {r['words_right']}/{r['commands']}  intents {r['intent_right']}/{r['commands']}  "
            f"open kept {r['open_kept']}/{r['open_questions']}  noise clean {r['noise_clean']}/{r['noise_clips']}  "
            f"({r['seconds']} s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the JSON results here")
    parser.add_argument("--only", nargs="*", help="candidate names to run (default: all)")
    parser.add_argument("--hotwords", action="store_true",
                        help="also try faster-whisper's hotwords (not reachable through RealtimeSTT 1.1.2)")
    parser.add_argument("--rescore", type=Path, metavar="RESULTS.json",
                        help="no Whisper: score the transcripts stored in an earlier result again (after a "
                             "change to the skill matcher, wake-word stripping or hallucination filter)")
    args = parser.parse_args()

    settings = ListenSettings()
    if args.rescore:
        result = json.loads(args.rescore.read_text())
        result["runs"] = {name: score(run) for name, run in result["runs"].items()}
        for name, run in result["runs"].items():
            print(summary(name, run))
    else:
        from faster_whisper import WhisperModel

        model = WhisperModel(resolve_model(settings.stt_model), device="cpu",
                             compute_type=settings.stt_compute_type, cpu_threads=1)
        with tempfile.TemporaryDirectory() as tmp:
            commands, noises = make_clips(Path(tmp))
        prompts = {name: (prompt, None) for name, prompt in candidate_prompts(settings.wake_word).items()
                   if not args.only or name in args.only}
        if args.hotwords:
            prompts["hotwords"] = (f"{settings.wake_word.capitalize()},",
                                   "Jarvis time date today who am I system status GPU stop repeat")
        runs = {}
        for name, (prompt, hotwords) in prompts.items():
            runs[name] = score(transcribe_all(model, settings, prompt, commands, noises, hotwords))
            print(summary(name, runs[name]), flush=True)
        result = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
                  "model": settings.stt_model, "beam_size": settings.beam_size,
                  "voices": ESPEAK_VOICES + ["piper joe"], "noises": list(NOISES), "runs": runs}
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
