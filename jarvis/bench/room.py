"""`jarvis bench room`: Jarvis in a simulated room, through the real voice loop on the private PulseAudio.

Like `jarvis bench pipeline`, spoken turns are played into the virtual microphone while the real ``VoiceLoop``
listens and speaks; here the room is added:

- echo: ``VirtualAudio.echo_path`` loops the speaker back into the microphone (30 ms, with SWH GVerb's small
  room when Debian's ``swh-plugins`` is there) at 0 dB and -18 dB; "headphones" is the reference without it;
- noise: pink noise (a fan) streamed into the microphone without a break, at 20, 10 and 5 dB SNR against the
  active level of the commands (every command is normalised to -26 dBFS; the near-end speech is dry);
- voices: every espeak-ng English voice x variant that Porcupine wakes on (``false_wakes.scan_voices``) and
  Piper's voice at two speeds, in turn.

Turns, per condition:

- commands: "Jarvis, <skill command>" -> intent right = the reply is that skill's answer;
- barge-in chains: "Jarvis, tell me a long story about dragons"; 0.6-1.2 s into the answer, "Jarvis, what time
  is it" -> success = the reply cut off (``playback_end(interrupted=True)``), silent in the room within 150 ms of
  the end of the voiced wake word, and the time answered; then a follow-up without the wake word ("what is the
  date today") -> answered. Silent from: the ``playback_paused`` that the cut ended (a voice over the reply
  paused it, jarvis.listen.spoken_over) or else the cut, plus the output device's latency.

Counted over the whole run: pauses that resumed (a voice over Jarvis but no wake word: Jarvis went quiet for
nothing), wake misses (a wake-word clip with no ``wake``), false wakes (a ``wake`` outside
every wake-word clip, Jarvis's own voice included), self-transcripts (a ``transcript`` that overlaps what Jarvis
said in the last 30 s: rapidfuzz partial_ratio >= 80 over >= 3 words) and phantom turns (a transcript no clip
explains: nobody spoke). Where a played clip landed in the microphone stream is found by cross-correlating it
with what the loop's microphone tap received (robust to echo and noise); that tap gets the echo canceller's
output, so its added latency (from ``loop.echo.stats()``) is taken off those times.
"""
from __future__ import annotations

import dataclasses
import os
import re
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from jarvis.bench.false_wakes import ACTIVE_DBFS, load_scan, normalise, pink_noise, scan_voices, speak
from jarvis.bench.pipeline import EventLog, _override, _rss_mb, voiced_bounds, write_wav
from jarvis.bench.room_report import CUT_MS, format_text, plot, summarise, targets
from jarvis.bench.scratch import scratch_home
from jarvis.bench.stats import command, date, hardware, versions, write_json
from jarvis.bench.virtual_audio import PLAY_BUFFER_MS

RATE = 16000
ECHOES = (None, -18.0, 0.0)          # None = headphones
SNRS = (20.0, 10.0, 5.0)
COMMANDS = [("what time is it", "time"), ("what is the date today", "date"), ("who am I", "whoami"),
            ("system status", "status"), ("tell me the time", "time"), ("what day is it", "date")]
STORY = "tell me a long story about dragons"
BARGE = ("what time is it", "time")
FOLLOW_UPS = [("what is the date today", "date"), ("who am I", "whoami"), ("system status", "status")]
QUICK_VOICES = ["en-us+f3", "piper:1.0"]


# -- clips --------------------------------------------------------------------------------------------------

@dataclass
class Clip:
    text: str
    intent: str            # the skill that should answer ("llm" for the story)
    voice: str
    wake: bool             # starts with "Jarvis"
    path: Path
    samples: np.ndarray
    wake_end_s: float      # end of the voiced "Jarvis" in the clip (0 without it)
    last_voiced_s: float


def make_clip(folder: Path, name: str, text: str, intent: str, voice: str, wake: bool = True) -> Clip:
    body = speak(text, voice)
    if wake:
        head = speak("Jarvis", voice)
        head = head[: int(voiced_bounds(head)[1] * RATE) + 160]  # keep the word, not espeak's trailing silence
        samples = normalise(np.concatenate([head, np.zeros(int(0.3 * RATE), np.float32), body]))
        wake_end = voiced_bounds(samples[: head.size])[1]
    else:
        samples, wake_end = body, 0.0
    samples = np.concatenate([np.zeros(int(0.1 * RATE), np.float32), samples])  # paplay's start-up
    bounds = voiced_bounds(samples)
    return Clip(f"Jarvis, {text}" if wake else text, intent, voice, wake, write_wav(folder / f"{name}.wav", samples),
                samples, wake_end + 0.1 if wake else 0.0, bounds[1] if bounds else 0.0)


# -- the microphone as Jarvis received it -------------------------------------------------------------------

class MicLog:
    """A microphone tap keeping the last ``seconds`` of blocks with their arrival times."""

    def __init__(self, seconds: float = 120.0):
        self.blocks: deque = deque()
        self.seconds = seconds
        self._lock = threading.Lock()

    def __call__(self, block: np.ndarray) -> None:
        now = time.monotonic()
        with self._lock:
            self.blocks.append((now, block.astype(np.float32) / 32768.0))
            while self.blocks and self.blocks[0][0] < now - self.seconds:
                self.blocks.popleft()

    def locate(self, clip: np.ndarray, after: float, before: float) -> tuple[float | None, float]:
        """(arrival time of ``clip``'s first sample, normalised correlation): the clip is searched for in the
        blocks received from ``after`` on, starting no later than ``before``; (None, score) when not clearly
        there (the echo canceller may duck a voice talking over Jarvis)."""
        with self._lock:
            blocks = [(t, b) for t, b in self.blocks if after <= t <= before + clip.size / RATE + 1.0]
        if not blocks:
            return None, 0.0
        x = np.concatenate([b for _, b in blocks])
        lags = min(x.size - clip.size + 1, int((before - after + 0.5) * RATE))
        if lags <= 0:
            return None, 0.0
        n = 1 << int(np.ceil(np.log2(x.size + clip.size)))
        corr = np.fft.irfft(np.fft.rfft(x, n) * np.conj(np.fft.rfft(clip, n)), n)[:lags]
        lag = int(np.argmax(corr))
        energy = np.sqrt(np.sum(clip.astype(np.float64) ** 2) * np.sum(x[lag: lag + clip.size].astype(np.float64) ** 2))
        score = float(corr[lag] / energy) if energy > 0 else 0.0
        if score < 0.2:
            return None, round(score, 3)
        ends = np.cumsum([b.size for _, b in blocks])   # the block holding sample ``lag`` dates it
        k = int(np.searchsorted(ends, lag, side="right"))
        return blocks[k][0] - (ends[k] - lag) / RATE, round(score, 3)


# -- background noise into the microphone -------------------------------------------------------------------

class NoiseStream:
    """Noise played into the mic feed without a break (``pacat`` fed from here, queued ``PLAY_BUFFER_MS`` ahead
    so a busy benchmark cannot underrun it); ``set_snr`` changes its level at once through the stream's
    PulseAudio volume (applied as the server plays, however far ahead it is queued); ``set_snr(None)`` silences
    it."""

    def __init__(self, audio, noise: np.ndarray):
        import subprocess

        self.audio = audio
        self.noise = (noise * 10 ** (ACTIVE_DBFS / 20)).astype(np.float32)   # 0 dB SNR at volume 1
        self.proc = subprocess.Popen(["pacat", "--playback", "--device=jarvis_micfeed", "--format=float32le",
                                      f"--rate={RATE}", "--channels=1", f"--latency-msec={PLAY_BUFFER_MS}"],
                                     env=audio.subprocess_env(), stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._stop = threading.Event()
        self.set_snr(None)
        self._thread = threading.Thread(target=self._feed, name="room-noise", daemon=True)
        self._thread.start()

    def _feed(self) -> None:
        chunk, i = RATE // 10, 0
        try:
            while not self._stop.is_set():
                part = self.noise[i: i + chunk]
                if part.size < chunk:
                    part = np.concatenate([part, self.noise[: chunk - part.size]])
                self.proc.stdin.write(part.tobytes())  # blocks: pacat takes it in real time
                i = (i + chunk) % self.noise.size
        except (BrokenPipeError, ValueError, OSError):
            pass

    def _stream(self) -> int | None:
        for stream in self.audio.pactl_json("list", "sink-inputs"):
            if str(stream.get("properties", {}).get("application.process.id")) == str(self.proc.pid):
                return int(stream["index"])
        return None

    def set_snr(self, snr_db: float | None) -> None:
        deadline = time.monotonic() + 5
        while (index := self._stream()) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if index is None:
            raise RuntimeError("the noise stream did not reach the audio server")
        factor = 0.0 if snr_db is None else 10 ** (-snr_db / 20)
        self.audio._pactl("set-sink-input-volume", str(index), f"{factor:.6f}")

    def close(self) -> None:
        self._stop.set()
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        self.proc.terminate()
        self.proc.wait(5)


# -- running the turns --------------------------------------------------------------------------------------

@dataclass
class Played:
    clip: Clip
    t_start: float            # when paplay was started
    t_end: float              # when it returned
    heard_at: float | None    # arrival of the clip's first sample in the mic stream (echo canceller latency off)
    score: float = 0.0        # how clearly it was found there (normalised correlation)


class Room:
    """The live loop, its event log, the mic tap and what was played when."""

    def __init__(self, audio, loop, log: EventLog, mic: MicLog):
        self.audio, self.loop, self.log, self.mic = audio, loop, log, mic
        self.played: list[Played] = []

    def play(self, clip: Clip) -> Played:
        t0 = time.monotonic()
        self.audio.play_into_mic(clip.path)
        p = Played(clip, t0, time.monotonic(), None)
        self.played.append(p)
        return p

    def heard_at(self, p: Played) -> float | None:
        if p.heard_at is None:
            # paplay starts playing well within a second of being started
            at, p.score = self.mic.locate(p.clip.samples, p.t_start - 0.2, p.t_start + 1.0)
            if at is not None:
                at -= _echo_latency_s(self.loop) + (self.loop.capture.latency_s if self.loop.capture else 0.0)
            p.heard_at = at
        return p.heard_at

    def wait(self, test: Callable[[list], Any], after: int, timeout: float):
        """The first truthy ``test(events since after)`` within ``timeout`` s, else None."""
        deadline = time.monotonic() + timeout
        with self.log.cond:
            while True:
                found = test(self.log.events[after:])
                if found or time.monotonic() >= deadline:
                    return found
                self.log.cond.wait(min(0.1, max(0.0, deadline - time.monotonic())))

    def quiet(self, timeout: float = 90.0) -> None:
        """Wait until Jarvis is not talking (an answer nobody cut off may still be playing), then settle."""
        mark = len(self.log.events)

        def talking(evs: list) -> bool:
            return sum(e.type == "playback_start" for e in evs) > sum(e.type == "playback_end" for e in evs)

        with self.log.cond:
            everything = list(self.log.events)
        if talking(everything):
            self.wait(lambda evs: _first(evs, "playback_end"), mark, timeout)
            self.settle(mark)

    def settle(self, after: int) -> None:
        """Wait until Jarvis is back to needing the wake word: a follow-up window that opened has closed."""
        if self.wait(lambda evs: _first(evs, "follow_up"), after, 0.6):
            self.wait(lambda evs: _first(_since(evs, "follow_up"), "listening"), after,
                      self.loop.settings.listen.follow_up_s + 3)
        time.sleep(0.4)


def _done(evs: list):
    """The turn is over: its reply was played, or it got no reply (ignored, or an empty reply)."""
    after = _since(evs, "transcript")
    return _first(after, "playback_end") or _first(evs, "ignored") or _first(after, "reply", lambda e: not e.text)


def await_turn(room: "Room", mark: int, timeout: float) -> None:
    """Wait for the turn that the clip just played should start; give up soon when nothing heard it."""
    if room.wait(lambda evs: _first(evs, "wake") or _first(evs, "speech_start") or _first(evs, "transcript"),
                 mark, 3.0):
        room.wait(_done, mark, timeout)


def _first(evs: list, kind: str, test: Callable = lambda e: True):
    return next((e for e in evs if e.type == kind and test(e)), None)


def _since(evs: list, kind: str) -> list:
    """The events after the first ``kind``."""
    for i, e in enumerate(evs):
        if e.type == kind:
            return evs[i + 1:]
    return []


def _echo_latency_s(loop) -> float:
    stats = _echo_stats(loop)
    return float(stats.get("added_latency_ms") or 0.0) / 1000 if stats else 0.0


def _echo_stats(loop) -> dict | None:
    echo = getattr(loop, "echo", None)
    try:
        return dict(echo.stats()) if echo is not None and hasattr(echo, "stats") else None
    except Exception:
        return None


def intent_of(reply: str | None, llm: bool) -> str | None:
    """Which skill said ``reply`` (its words are the skills' fixed sentences), "llm", or None for no reply."""
    from jarvis.brain.skills import UNKNOWN_SPEAKER

    if not reply:
        return None
    if re.fullmatch(r"It's \d{1,2}(:\d\d)? [AP]M\.", reply):
        return "time"
    if reply.startswith("Today is "):
        return "date"
    if reply.startswith("You're ") or reply == UNKNOWN_SPEAKER:
        return "whoami"
    if reply.startswith("CPU load is"):
        return "status"
    return "llm" if llm else "other"


def _answer(evs: list) -> dict:
    """The reply to the first transcript in ``evs`` and when it was heard."""
    after = _since(evs, "transcript")
    reply, llm = _first(after, "reply"), _first(after, "llm_first_token") is not None
    start = _first(after, "playback_start")
    # An LLM's reply event comes once it has been spoken: its first token says who answers before that.
    intent = intent_of(reply.text, llm) if reply is not None else ("llm" if llm else None)
    return {"transcript": getattr(_first(evs, "transcript"), "text", None), "reply": getattr(reply, "text", None),
            "intent": intent, "playback_start": getattr(start, "t", None)}


def _timeline(room: Room, p: Played, evs: list) -> list:
    """[type, ms after the clip's first sample reached the microphone (after paplay started, if not found)]."""
    zero = room.heard_at(p) or p.t_start
    out: list = [["located", p.score]]
    for e in evs:
        extra = getattr(e, "text", None) or getattr(e, "reason", None) or getattr(e, "state", None)
        item = [e.type, round((e.t - zero) * 1000)]
        if e.type == "playback_end":
            item.append(bool(e.interrupted))
        elif extra:
            item.append(str(extra)[:60])
        out.append(item)
    return out


def _quiet_from(evs: list, cut):
    """The event from which a reply that was cut stayed silent: the pause (a voice over it) that the cut ended,
    or the cut itself. None when it was not cut."""
    if cut is None:
        return None
    quiet = cut
    for e in evs:
        if e.t > cut.t:
            break
        if e.type == "playback_paused":
            quiet = e
        elif e.type == "playback_resumed":
            quiet = cut
    return quiet


def _v2v_ms(room: Room, p: Played, answer: dict) -> float | None:
    heard = room.heard_at(p)
    if heard is None or answer["playback_start"] is None or answer["intent"] in (None, "llm", "other"):
        return None
    out_latency = room.loop.player.latency_s if room.loop.player else 0.0
    return round((answer["playback_start"] + out_latency - heard - p.clip.last_voiced_s) * 1000, 1)


def command_turn(room: Room, clip: Clip) -> dict:
    room.quiet()
    mark = len(room.log.events)
    p = room.play(clip)
    await_turn(room, mark, 25)
    room.settle(mark)
    evs = room.log.events[mark:]
    answer = _answer(evs)
    return {"kind": "command", "voice": clip.voice, "said": clip.text, "expected": clip.intent,
            "woke": _first(evs, "wake") is not None, **answer, "right": answer["intent"] == clip.intent,
            "voice_to_voice_ms": _v2v_ms(room, p, answer), "events": _timeline(room, p, evs)}


def barge_in_chain(room: Room, story: Clip, barge: Clip, follow: Clip, delay_s: float) -> dict:
    """Story -> "Jarvis, what time is it" over it -> a follow-up without the wake word."""
    out: dict[str, Any] = {"kind": "barge_in", "voice": story.voice, "delay_s": round(delay_s, 2)}
    room.quiet()
    mark = len(room.log.events)
    p1 = room.play(story)
    started = room.wait(lambda evs: _first(_since(evs, "transcript"), "playback_start"), mark, 40)
    evs = room.log.events[mark:]
    story_answer = _answer(evs)
    out.update({"story_woke": _first(evs, "wake") is not None, "story_transcript": story_answer["transcript"],
                "story_intent": story_answer["intent"] if started else None})
    if not started:
        out["outcome"] = "no answer to the story question"
        room.settle(mark)
        return out
    time.sleep(delay_s)
    mark2 = len(room.log.events)
    p = room.play(barge)
    await_turn(room, mark2, 30)
    room.wait(lambda evs: _first(evs, "follow_up"), mark2, 0.6)
    evs = room.log.events[mark2:]
    cut, wake = _first(evs, "playback_end", lambda e: e.interrupted), _first(evs, "wake")
    quiet = _quiet_from(evs, cut)
    heard = room.heard_at(p)
    wake_end = heard + barge.wake_end_s if heard is not None else None
    # Jarvis is silent in the room once the player stops handing it the reply and the device has played out what
    # it held (its output latency).
    out_latency = room.loop.player.latency_s if room.loop.player else 0.0
    answer = _answer(evs)
    out.update({
        "woke": wake is not None, "cut": cut is not None, "paused_first": quiet is not cut,
        "cut_ms": (round((quiet.t + out_latency - wake_end) * 1000, 1)
                   if cut is not None and wake_end is not None else None),
        "wake_ms": round((wake.t - wake_end) * 1000, 1) if wake is not None and wake_end is not None else None,
        "wake_to_cut_ms": round((cut.t - wake.t) * 1000, 1) if cut is not None and wake is not None else None,
        "said": barge.text, "expected": barge.intent, **answer, "right": answer["intent"] == barge.intent,
        "voice_to_voice_ms": _v2v_ms(room, p, answer),
        "story_events": _timeline(room, p1, room.log.events[mark:mark2]), "events": _timeline(room, p, evs)})
    out["success"] = bool(out["cut"] and out["cut_ms"] is not None and out["cut_ms"] <= CUT_MS and out["right"])
    # Did the story end by itself before the wake word (heard, or as played when it was missed)?
    said_at = wake.t if wake is not None else (wake_end if wake_end is not None else p.t_start + barge.wake_end_s)
    ended = _first(room.log.events[mark:], "playback_end", lambda e: not e.interrupted and e.t < said_at)
    out["outcome"] = next(why for bad, why in (
        (out["story_intent"] != "llm", f"the story question was not answered by the LLM "
                                       f"(heard as {story_answer['transcript']!r})"),
        (ended is not None, "the answer had ended before the wake word"),
        (not out["woke"], "wake word missed"), (not out["cut"], "not cut off"),
        (out["cut_ms"] is None, "cut off (the clip was not found in the microphone stream to time it)"),
        ((out["cut_ms"] or 0) > CUT_MS, "cut off later than 150 ms"), (not out["right"], "the time was not answered"),
        (True, "ok")) if bad)
    if not out["cut"]:  # the story goes on: no reply to follow up on
        room.quiet()
        return out
    # the follow-up, without the wake word, while the follow-up window is open
    time.sleep(0.5)
    mark3 = len(room.log.events)
    p3 = room.play(follow)
    await_turn(room, mark3, 15)
    room.settle(mark3)
    evs = room.log.events[mark3:]
    fa = _answer(evs)
    out["follow_up"] = {"said": follow.text, "expected": follow.intent, **fa, "answered": bool(fa["reply"]),
                        "right": fa["intent"] == follow.intent, "voice_to_voice_ms": _v2v_ms(room, p3, fa),
                        "events": _timeline(room, p3, evs)}
    return out


# -- what the whole log says --------------------------------------------------------------------------------

def log_findings(room: Room, t_from: float, t_to: float) -> dict:
    """False wakes, self-transcripts, phantom turns and ignored transcripts between two times."""
    from rapidfuzz import fuzz

    evs = [e for e in room.log.events if t_from <= e.t <= t_to]
    played = [p for p in room.played if t_from <= p.t_start <= t_to]
    wake_windows = [(p.t_start, p.t_end + 1.0) for p in played if p.clip.wake]
    false_wakes = [e.t for e in evs if e.type == "wake" and not any(a <= e.t <= b for a, b in wake_windows)]
    replies = [(e.t, e.text) for e in room.log.events if e.type == "reply" and e.text]
    self_heard, phantom = [], []
    for e in (e for e in evs if e.type == "transcript"):
        text = e.text.lower()
        own = max([fuzz.partial_ratio(text, said.lower()) for t, said in replies if e.t - 30 <= t <= e.t] or [0])
        spoken = [p for p in played if p.t_start <= e.t <= p.t_end + 8]   # the clips that could have said it
        person = max([fuzz.partial_ratio(text, p.clip.text.lower()) for p in spoken] or [0])
        if len(text.split()) >= 3 and own >= 80 and own > person:   # closer to Jarvis's words than to the clip's
            self_heard.append(e.text)
        elif not spoken:
            phantom.append(e.text)
    ignored: dict[str, int] = {}
    for e in evs:
        if e.type == "ignored":
            ignored[e.reason] = ignored.get(e.reason, 0) + 1
    pauses = sum(e.type == "playback_paused" for e in evs)
    resumed = sum(e.type == "playback_resumed" for e in evs)  # paused for a voice, but no wake word came
    return {"pauses": pauses, "pauses_resumed": resumed,
            "false_wakes": len(false_wakes), "self_transcripts": len(self_heard), "self_transcript_texts": self_heard,
            "phantom_turns": len(phantom), "phantom_texts": phantom, "ignored": ignored}


# -- the bench ----------------------------------------------------------------------------------------------

def _conditions(echoes, snrs) -> list[tuple[float | None, float]]:
    return [(echo, snr) for echo in echoes for snr in snrs]


def _label(echo: float | None, snr: float) -> str:
    return f"{'headphones' if echo is None else f'echo {echo:g} dB'}, {snr:g} dB SNR"


def build_script(folder: Path, voices: list[str], conditions, commands: int, barge_ins: int, progress) -> list:
    """Per condition: (commands, chains) of clips, voices in turn."""
    jobs, k = [], 0
    for c, _ in enumerate(conditions):
        for i in range(commands):
            text, intent = COMMANDS[(c * commands + i) % len(COMMANDS)]
            jobs.append((c, "command", [(f"c{c}-cmd{i}", text, intent, voices[k % len(voices)], True)]))
            k += 1
        for i in range(barge_ins):
            v = voices[k % len(voices)]
            text, intent = FOLLOW_UPS[(c * barge_ins + i) % len(FOLLOW_UPS)]
            jobs.append((c, "chain", [(f"c{c}-story{i}", STORY, "llm", v, True),
                                      (f"c{c}-barge{i}", *BARGE, v, True),
                                      (f"c{c}-follow{i}", text, intent, v, False)]))
            k += 1
    progress(f"making {sum(len(j[2]) for j in jobs)} spoken clips")
    with ThreadPoolExecutor(max_workers=2) as pool:
        made = [(c, kind, [pool.submit(make_clip, folder, *spec) for spec in specs]) for c, kind, specs in jobs]
        script = [[] for _ in conditions]
        for c, kind, futures in made:
            script[c].append((kind, [f.result() for f in futures]))
    return script


def bench(settings, echoes=ECHOES, snrs=SNRS, commands: int = 4, barge_ins: int = 2,
          voices: list[str] | None = None, reverb: bool = True, scan: dict | None = None,
          progress=print) -> dict[str, Any]:
    with scratch_home("jarvis-room-") as work:
        return _bench(work, settings, echoes, snrs, commands, barge_ins, voices, reverb, scan, progress)


def _bench(work: Path, settings, echoes, snrs, commands: int, barge_ins: int, voices: list[str] | None,
           reverb: bool, scan: dict | None, progress) -> dict[str, Any]:
    from jarvis import events
    from jarvis.audio import devices
    from jarvis.bench.virtual_audio import VirtualAudio
    from jarvis.pipeline import VoiceLoop

    started, load_before = time.monotonic(), os.getloadavg()
    settings.audio.input_device, settings.audio.output_device = "jarvis_mic", "jarvis_speaker"
    settings.tts.engines = [e for e in settings.tts.engines if e != "csm"] or ["piper"]
    if voices is None:
        scan = scan or scan_voices(progress=progress)
        voices = scan["wakes"]
    else:
        scan = None
    rng = np.random.default_rng(7)
    order = [voices[i] for i in rng.permutation(len(voices))]
    conditions = _conditions(echoes, snrs)
    script = build_script(work, order, conditions, commands, barge_ins, progress)
    delays = rng.uniform(0.6, 1.2, size=len(conditions) * max(barge_ins, 1))  # into the answer: it may be short
    result_conditions, echo_paths = [], {}
    with VirtualAudio() as audio:
        audio.apply()
        devices.refresh()
        for echo in {e for e in echoes if e is not None}:
            path = audio.echo_path(echo, reverb=reverb)
            echo_paths[echo] = {**path.describe(), "measured": path.measure()}
            path.remove()
        noise = NoiseStream(audio, pink_noise(30.0))
        bus, log, mic = events.EventBus(), EventLog(), MicLog()
        bus.subscribe(log)
        loop = VoiceLoop(settings, bus)
        progress("Jarvis: loading the voice loop")
        t_load = time.monotonic()
        loop.start()
        load_s = time.monotonic() - t_load
        loop.add_tap(mic)
        room = Room(audio, loop, log, mic)
        time.sleep(1.0)
        try:
            for c, (echo, snr) in enumerate(conditions):
                path = audio.echo_path(echo, reverb=reverb) if echo is not None else None
                noise.set_snr(snr)
                time.sleep(1.0)
                t0, turns = time.monotonic(), []
                for kind, clips in script[c]:
                    if kind == "command":
                        turns.append(command_turn(room, clips[0]))
                    else:
                        turns.append(barge_in_chain(room, *clips, float(delays[len(turns) % delays.size])))
                    progress(f"[{_label(echo, snr)}] {_turn_line(turns[-1])}")
                time.sleep(1.0)
                result_conditions.append({"echo_db": echo, "snr_db": snr, "label": _label(echo, snr), "turns": turns,
                                          **log_findings(room, t0, time.monotonic()),
                                          "echo_canceller": _echo_stats(loop)})
                if path is not None:
                    path.remove()
        finally:
            noise.close()
            echo_final = _echo_stats(loop)
            latency = {"input_latency_ms": round(loop.capture.latency_s * 1000, 1) if loop.capture else None,
                       "output_latency_ms": round(loop.player.latency_s * 1000, 1) if loop.player else None}
            rss = _rss_mb()
            loop.stop()
    echo_events = [e.to_dict() for e in log.events if e.type == "echo"]
    result = {
        "benchmark": "room", "hardware": hardware(),
        "versions": versions(("realtimestt", "faster-whisper", "pvporcupine", "livekit", "piper-tts",
                              "llama-cpp-python", "rapidfuzz")),
        "settings": {"audio": dataclasses.asdict(settings.audio), "listen": dataclasses.asdict(settings.listen),
                     "tts": settings.tts.engines, "brain": settings.brain.backend,
                     "brain_max_tokens": settings.brain.max_tokens},
        "room": {"echo_paths": {("headphones" if k is None else f"{k:g} dB"): v for k, v in echo_paths.items()},
                 "noise": "pink (1/f), streamed into the microphone without a break",
                 "near_end": f"espeak-ng / Piper speech normalised to {ACTIVE_DBFS:g} dBFS active level, dry",
                 "snr": "noise level against the commands' active speech level"},
        "voices": {"used": order, "scan": scan and {k: scan[k] for k in ("wakes", "unreliable", "never",
                                                                         "cannot_speak", "rates", "seconds")}},
        "conditions": result_conditions, "echo_events": echo_events, "echo_canceller": echo_final,
        "load_s": round(load_s, 1), "rss_mb": rss, **latency, "load_average": {"start": load_before, "end": os.getloadavg()},
        "wall_s": round(time.monotonic() - started, 1), "command": command(), "date": date(),
    }
    result["summary"] = summarise(result)
    result["targets"] = targets(result)
    return result


def _turn_line(t: dict) -> str:
    if t["kind"] == "command":
        return f"{t['voice']}: {t['said']!r} -> {t['intent']} {'ok' if t['right'] else 'WRONG'} ({t['transcript']!r})"
    f = t.get("follow_up", {})
    return (f"{t['voice']}: barge-in: {t.get('outcome')}; cut {t.get('cut_ms')} ms, time {t.get('intent')}; "
            f"follow-up {'answered' if f.get('answered') else 'NOT answered'} ({f.get('transcript')!r})")


# -- command line -------------------------------------------------------------------------------------------

def _numbers(text: str) -> list[float | None]:
    return [None if v.strip() in ("none", "headphones") else float(v) for v in text.split(",") if v.strip()]


def add_arguments(parser) -> None:
    parser.add_argument("--echo", default="headphones,-18,0", metavar="LIST",
                        help="echo gains in dB ('headphones' = no echo), default headphones,-18,0; "
                             "write --echo=-18,0 when the list starts with a minus")
    parser.add_argument("--snr", default="20,10,5", metavar="LIST", help="noise levels, dB SNR (default 20,10,5)")
    parser.add_argument("--commands", type=int, default=4, help="skill commands per condition")
    parser.add_argument("--barge-ins", type=int, default=2, help="barge-in + follow-up chains per condition")
    parser.add_argument("--voices", metavar="V,V", help="voices instead of every one Porcupine wakes on "
                                                        "(espeak-ng names, piper:<length_scale>)")
    parser.add_argument("--scan", metavar="FILE.json", help="take the voice scan from an earlier false-wakes or "
                                                            "room result instead of scanning (minutes)")
    parser.add_argument("--no-reverb", action="store_true", help="a dry echo path")
    parser.add_argument("--quick", action="store_true", help="smoke test: -18 dB echo at 20 dB SNR, one command "
                                                             "and one barge-in chain, two voices")
    parser.add_argument("--json", metavar="FILE", help="write the result as JSON")
    parser.add_argument("--plot", metavar="FILE.png", help="draw the chart")
    parser.add_argument("--set", metavar="SECTION.KEY=VALUE", action="append", default=[],
                        help="try a setting for this run only")


def main(args, settings) -> int:
    from jarvis.errors import BadInput

    try:
        echoes, snrs = _numbers(args.echo), _numbers(args.snr)
    except ValueError as exc:
        raise BadInput("bad_args", "--echo and --snr take comma-separated numbers (dB).") from exc
    if not snrs or None in snrs or args.commands < 0 or args.barge_ins < 0 or args.commands + args.barge_ins == 0:
        raise BadInput("bad_args", "Give at least one SNR and one command or barge-in per condition.")
    voices = [v.strip() for v in args.voices.split(",")] if args.voices else None
    commands, barge_ins = args.commands, args.barge_ins
    if args.quick:
        echoes, snrs, commands, barge_ins, voices = [-18.0], [20.0], 1, 1, voices or QUICK_VOICES
    for assignment in args.set:
        _override(settings, assignment)
    scan = load_scan(args.scan) if args.scan and not voices else None
    result = bench(settings, echoes, snrs, commands, barge_ins, voices, reverb=not args.no_reverb, scan=scan,
                   progress=lambda line: print(line, file=sys.stderr))
    print(format_text(result))
    if args.json:
        write_json(args.json, result)
    if args.plot:
        plot(result, args.plot)
        print(f"wrote {args.plot}")
    return 0
