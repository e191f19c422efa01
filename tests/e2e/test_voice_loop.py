"""End to end through real audio devices: espeak-ng speech goes into the virtual microphone while
`jarvis listen` runs; the virtual speaker is recorded, and the spoken reply is transcribed and checked.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from jarvis.brain.skills import say_time
from tests.e2e.listening import ROOT, jarvis_listen
from tests.speech import concat_wavs, espeak_wav

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ALICE, BOB = "en-us+f3", "en-us+m3"   # voices resemblyzer tells apart; Porcupine always hears f3
CAROL = "en-us+f5"                     # Porcupine hears f5 too (not m1-m7): the second voice that can wake Jarvis


def _to_16k(samples: np.ndarray, rate: int) -> np.ndarray:
    import soxr

    return soxr.resample(samples, rate, 16000).astype(np.float32)


def _voiced_bounds(samples: np.ndarray, rate: int, threshold: float = 0.01) -> tuple[float, float]:
    """Seconds of the first and last 10 ms window whose RMS is above ``threshold``."""
    win = rate // 100
    n = len(samples) // win
    rms = np.sqrt(np.mean(samples[: n * win].reshape(n, win) ** 2, axis=1))
    voiced = np.flatnonzero(rms > threshold)
    assert voiced.size, "recording is silent"
    return voiced[0] * win / rate, (voiced[-1] + 1) * win / rate


_NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split())}
_NUMBER_WORDS.update({"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "oh": 0, "o": 0})


def spoken_times(text: str) -> list[tuple[int, int]]:
    """(hour 1-12, minute) pairs in a transcript: "2:45", "2.45", "2 45 PM", "two forty five", "3 PM"."""
    text = text.lower().replace("o'clock", " 00 ")
    found = [(int(h), int(m)) for h, m in re.findall(r"\b(\d{1,2})[:.\s](\d{2})\b", text)]
    found += [(int(h), 0) for h in re.findall(r"\b(\d{1,2})\s*(?:p\.?\s?m|a\.?\s?m)", text)]
    found += [(int(h), int(m)) for h, m in re.findall(r"\b(\d{1,2})(\d{2})\s*(?:p\.?\s?m|a\.?\s?m)", text)]
    words = re.findall(r"[a-z]+|\d+", text)
    values = [_NUMBER_WORDS.get(w, int(w) if w.isdigit() else None) for w in words]
    for i, hour in enumerate(values):
        if hour is None or not 1 <= hour <= 12:
            continue
        minute, j = 0, i + 1
        while j < len(values) and values[j] is not None and j <= i + 2:
            minute += values[j]
            j += 1
        if j > i + 1 and minute < 60:
            found.append((hour, minute))
    return found


# tiny.en mixes up "-teen" and "-ty" in synthetic speech ("3:15" heard as "3.50"); accept that pair only.
_TEEN_TY = {13: 30, 14: 40, 15: 50, 16: 60, 17: 70, 18: 80, 19: 90}
_TEEN_TY.update({ty: teen for teen, ty in list(_TEEN_TY.items())})


def _matches_clock(text: str, start: dt.datetime, end: dt.datetime) -> bool:
    allowed = set()
    t = start - dt.timedelta(minutes=1)
    while t <= end + dt.timedelta(minutes=1):
        hour = (t.hour - 1) % 12 + 1
        allowed.add((hour, t.minute))
        if t.minute in _TEEN_TY:
            allowed.add((hour, _TEEN_TY[t.minute]))
        t += dt.timedelta(minutes=1)
    return any(pair in allowed for pair in spoken_times(text))


def _said_time(reply: str, start: dt.datetime, end: dt.datetime) -> dt.datetime:
    """The clock time, within a minute of [start, end], that ``reply`` (Jarvis's text) states."""
    t = start - dt.timedelta(minutes=1)
    while t <= end + dt.timedelta(minutes=1):
        if say_time(t) in reply:
            return t
        t += dt.timedelta(minutes=1)
    raise AssertionError(f"{reply!r} states no time between {start:%H:%M} and {end:%H:%M}")


def test_spoken_time_parser():
    assert (2, 45) in spoken_times("It's 2.45 p.m.")
    assert (2, 45) in spoken_times("It's two forty-five PM.")
    assert (3, 0) in spoken_times("It's 3 PM.")
    assert (11, 5) in spoken_times("It's 11:05 AM")
    assert (2, 55) in spoken_times("It's 255 a.m.")
    assert (11, 45) in spoken_times("It's 1145 p.m.")
    assert not spoken_times("Hello there")
    now = dt.datetime(2026, 1, 1, 3, 15)
    assert _matches_clock("It's 3.50 am.", now, now)  # the -teen/-ty confusion
    assert not _matches_clock("It's 3.45 am.", now, now)
    assert not _matches_clock("It's 4.15 am.", now, now)
    assert _said_time("It's 3:16 AM.", now, now) == dt.datetime(2026, 1, 1, 3, 16)
    with pytest.raises(AssertionError):
        _said_time("It's 3:17 AM.", now, now)


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    folder = tmp_path_factory.mktemp("speech")
    wake = espeak_wav("Jarvis", folder / "wake.wav", ALICE)

    def command(name: str, text: str, voice: str = ALICE) -> Path:
        body = espeak_wav(text, folder / f"{name}.body.wav", voice)
        start = wake if voice == ALICE else espeak_wav("Jarvis", folder / f"{name}.wake.wav", voice)
        return concat_wavs([start, body], folder / f"{name}.wav", gap_s=0.3)

    lines = ["The quick brown fox jumps over the lazy dog.", "I would like a cup of tea this afternoon.",
             "Please remind me to call my sister tomorrow."]
    return {
        "time": command("time", "what time is it"),
        "whoami": command("whoami", "whats my name"),
        "story": command("story", "tell me a long story about dragons"),
        "tell_secret": command("tell_secret", "the secret word is banana"),
        "ask_secret": command("ask_secret", "what is the secret word"),
        "carol_asks_secret": command("carol_asks_secret", "what is the secret word", CAROL),
        "wake": wake,
        "alice": [espeak_wav(t, folder / f"alice{i}.wav", ALICE) for i, t in enumerate(lines)],
        "carol": [espeak_wav(t, folder / f"carol{i}.wav", CAROL) for i, t in enumerate(lines)],
        "bob": [espeak_wav(t, folder / f"bob{i}.wav", BOB) for i, t in enumerate(lines)],
    }


@pytest.fixture(scope="module")
def whisper():
    from jarvis.config import ListenSettings
    from jarvis.listen.stt import Transcriber

    return Transcriber(ListenSettings())


@pytest.fixture(scope="module")
def clock_judge():
    from tests.clock_judge import ClockJudge

    return ClockJudge()


def _jarvis(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jarvis", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def listening(virtual_audio, speech, tmp_path_factory):
    """`jarvis listen --events jsonl` on the virtual devices, with alice, bob and carol enrolled.

    The local LLM answers greedily (brain.temperature 0), so its answers are repeatable."""
    home = tmp_path_factory.mktemp("listen_home")
    (home / "config").mkdir()
    (home / "config" / "settings.json").write_text(json.dumps({"schema_version": 2, "brain": {"temperature": 0.0}}))
    env = virtual_audio.subprocess_env(JARVIS_HOME=str(home))
    for name in ("alice", "bob", "carol"):
        enrolled = _jarvis("enroll", name, *map(str, speech[name]), env=env)
        assert enrolled.returncode == 0, enrolled.stderr
    with jarvis_listen(env, home / "stderr.log") as stream:
        yield stream


def _turn(stream, virtual_audio, wav: Path, tmp_path: Path, name: str, mic=False):
    """Play one spoken command; return (events of the turn, speaker recording, mic recording)."""
    mark = len(stream.events)
    mic_rec = virtual_audio.record_mic(tmp_path / f"{name}.mic.wav") if mic else None
    with virtual_audio.record_speaker(tmp_path / f"{name}.speaker.wav") as speaker:
        virtual_audio.play_into_mic(wav)
        end = stream.wait_for("playback_end", after=mark, timeout=90)
        time.sleep(0.3)
    if mic_rec:
        mic_rec.stop()
    return stream.events[mark:stream.events.index(end) + 1], speaker, mic_rec


TURN_TYPES = {"wake", "speech_start", "vad_silence", "speech_end", "transcript", "speaker", "reply", "llm_first_token",
              "tts_first_chunk", "playback_start", "playback_end"}


def _turn_id(turn: list[dict]) -> int:
    """The one turn id every event of a spoken turn carries (from the listener's threads, the loop, the LLM's
    and the player's)."""
    ids = {e.get("turn") for e in turn if e["type"] in TURN_TYPES}
    assert len(ids) == 1 and None not in ids, [(e["type"], e.get("turn")) for e in turn]
    return ids.pop()


def test_spoken_question_is_answered_aloud_and_the_speaker_is_named(listening, virtual_audio, speech, whisper,
                                                                    clock_judge, tmp_path):
    # Turn 1: "Jarvis ... what time is it?"
    before = dt.datetime.now()
    turn, speaker, mic = _turn(listening, virtual_audio, speech["time"], tmp_path, "time", mic=True)
    after = dt.datetime.now()
    types = [e["type"] for e in turn]
    for expected in ("wake", "speech_start", "speech_end", "transcript", "speaker", "reply",
                     "tts_first_chunk", "playback_start", "playback_end"):
        assert expected in types, types
    assert types.index("wake") < types.index("speech_end") < types.index("transcript") \
        < types.index("reply") < types.index("playback_start") < types.index("playback_end")
    assert all(e["t"] <= f["t"] for e, f in zip(turn, turn[1:])), "timestamps must be monotonic"
    first_turn = _turn_id(turn)
    event = {e["type"]: e for e in turn}
    assert "time" in event["transcript"]["text"].lower()
    assert not event["transcript"]["text"].lower().startswith("jarvis")
    assert event["speaker"]["name"] == "alice", event["speaker"]

    # The reply states the current time, and the recorded speaker audio says that time. tiny.en's transcript is a
    # weak judge of times in Piper's voice ("It's 5:18 PM." heard as "It's by baking PM."), so the judge scores
    # the reply against the same reply with each other hour and each other minute (tests/clock_judge.py). It
    # still mishears a minute now and then ("1:48" as "1.40"), so the audio must carry the hour or the minute;
    # the exact time is checked on the reply's text.
    reply = event["reply"]["text"]
    said = _said_time(reply, before, after)
    audio = _to_16k(speaker.samples, speaker.rate)
    heard, judged = whisper.transcribe(audio), clock_judge.heard_time(audio, reply, said)
    assert judged and (judged[0] == (said.hour % 12 or 12) or judged[1] == said.minute), \
        f"reply {reply!r} was judged {judged}, transcribed {heard!r}"

    # Figures for the issue note: last voiced input sample -> first output sample (both recorded).
    _, mic_last = _voiced_bounds(mic.samples, mic.rate)
    spk_first, _ = _voiced_bounds(speaker.samples, speaker.rate)
    report = {
        "end_of_speech_to_first_audio_s": round((speaker.started + spk_first) - (mic.started + mic_last), 3),
        "speech_end_event_to_playback_start_s": round(event["playback_start"]["t"] - event["speech_end"]["t"], 3),
        "transcript_to_playback_start_s": round(event["playback_start"]["t"] - event["transcript"]["t"], 3),
        "reply": event["reply"]["text"], "heard": heard,
    }
    print("\nE2E figures:", json.dumps(report))
    if os.environ.get("JARVIS_E2E_REPORT"):
        Path(os.environ["JARVIS_E2E_REPORT"]).write_text(json.dumps(report, indent=2))

    # Turn 2: "Jarvis ... what's my name?" -> the enrolled name, spoken.
    turn, speaker, _ = _turn(listening, virtual_audio, speech["whoami"], tmp_path, "whoami")
    assert _turn_id(turn) > first_turn
    event = {e["type"]: e for e in turn}
    assert event["speaker"]["name"] == "alice"
    assert "alice" in event["reply"]["text"].lower(), event["transcript"]
    assert "alice" in whisper.transcribe(_to_16k(speaker.samples, speaker.rate)).lower()
    assert not listening.bad_lines, f"non-JSON on stdout: {listening.bad_lines[:3]}"


def test_spoken_conversation_remembers_the_previous_turn_for_the_same_speaker_only(listening, virtual_audio,
                                                                                    speech, tmp_path):
    """The local LLM answers open questions aloud, and remembers per identified speaker."""
    turns = {}
    for name in ("tell_secret", "ask_secret", "carol_asks_secret"):
        turn, _, _ = _turn(listening, virtual_audio, speech[name], tmp_path, name)
        turns[name] = {e["type"]: e for e in turn}
        assert "llm_first_token" in turns[name], [e["type"] for e in turn]
        _turn_id(turn)
        print(f"\n{name}: {turns[name]['transcript']['text']!r} ({turns[name]['speaker']['name']}) -> "
              f"{turns[name]['reply']['text']!r}; first token {turns[name]['llm_first_token']['seconds']} s")
    assert [turns[n]["speaker"]["name"] for n in turns] == ["alice", "alice", "carol"]
    assert "secret" in turns["ask_secret"]["transcript"]["text"].lower()
    assert "banana" in turns["ask_secret"]["reply"]["text"].lower(), "alice's previous turn was forgotten"
    assert "secret" in turns["carol_asks_secret"]["transcript"]["text"].lower()
    assert "banana" not in turns["carol_asks_secret"]["reply"]["text"].lower(), "carol heard alice's secret"


def test_wake_word_during_a_reply_stops_playback_and_listens(listening, virtual_audio, speech, tmp_path):
    """Barge-in: "Jarvis" while Jarvis speaks a long reply cuts the reply off and takes the next command."""
    mark = len(listening.events)
    with virtual_audio.record_speaker(tmp_path / "barge.wav") as speaker:
        virtual_audio.play_into_mic(speech["story"])
        listening.wait_for("playback_start", after=mark, timeout=90)
        time.sleep(1.0)  # the story (from the local LLM) lasts several seconds
        virtual_audio.play_into_mic(speech["wake"])
        end = listening.wait_for("playback_end", after=mark, timeout=30)
        wake = [e for e in listening.events[mark:] if e["type"] == "wake"][-1]
        time.sleep(0.5)
    assert end["interrupted"] is True, end
    assert end["t"] - wake["t"] < 0.1, "playback must stop within 100 ms of the wake word"
    story = next(e for e in listening.events[mark:] if e["type"] == "playback_start")
    assert end["turn"] == story["turn"] < wake["turn"], "the cut reply's end belongs to its turn, the wake to the next"
    reply = [e for e in listening.events[mark:] if e["type"] == "reply"][0]["text"]

    from jarvis.speak.piper_engine import PiperEngine

    engine = PiperEngine()
    engine.load()
    full_s = sum(len(c) for c in engine.synthesize(reply)) / engine.sample_rate
    first, last = _voiced_bounds(speaker.samples, speaker.rate)
    print(f"\nbarge-in: wake -> playback_end {end['t'] - wake['t']:.3f} s; "
          f"{last - first:.2f} s of a {full_s:.2f} s reply played")
    assert last - first < full_s - 1.0, "the reply was not cut off"


def test_sigint_stops_cleanly_within_five_seconds(listening):
    started = time.monotonic()
    listening.proc.send_signal(signal.SIGINT)
    code = listening.proc.wait(timeout=10)
    elapsed = time.monotonic() - started
    assert code == 0, listening.log.read_text()[-2000:]
    assert elapsed < 5, elapsed
    assert "Traceback" not in listening.log.read_text()
