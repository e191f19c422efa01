"""`jarvis bench pipeline`: a scripted spoken conversation through the real voice loop, per-stage latency,
and RealtimeSTT's documented defaults (the peer) on the same audio.

Speech comes from four voices Porcupine wakes on (``--voices``: espeak-ng's with Piper's joe, or four Piper
speakers), each enrolled as a speaker; some commands are said with a pause mid-sentence (a person hesitating).
Each turn is "Jarvis" + a command played into a private PulseAudio's virtual microphone while the real
``VoiceLoop`` listens on it and speaks to its virtual speaker. Every few turns a sentence without the wake word is
played (false wakes are counted during it). A microphone tap timestamps the audio as Jarvis receives it, so all
times are on one monotonic clock:

- input side: the arrival of the block holding a voiced sample, minus the input latency PortAudio reports;
- output side: the first voiced sample of the reply (a 10 ms window above the same level) as the player hands it to
  the device, at the time PortAudio says the device plays it (``AudibleOutput``). Until 2026-12-07 it was
  ``playback_start`` (the first block of the reply, silent or not) plus the reported output latency: a reply that
  began with silence (Piper's "It's…" with 30-50 ms) was counted as heard that much early. Both are kept:
  ``voice_to_voice_first_block`` is the old measure, ``reply_lead_in`` the silence in between.

Voice-to-voice = last voiced input sample → first voiced output sample, endpointing silence included.
The peer (``AudioToTextRecorder`` with its documented defaults and the same tiny.en model) is fed the
same utterances at real-time pace after Jarvis has stopped; its end of speech → transcript is measured
from the last voiced sample fed to the moment ``text()`` returns.
"""
from __future__ import annotations

import collections
import dataclasses
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jarvis.audio.wav import first_sound
from jarvis.bench.scratch import scratch_home
from jarvis.bench.stats import command, date, hardware, stats_ms, versions, write_json
from jarvis.errors import NotAvailable


RATE = 16000
# The speakers, in two sets Porcupine wakes on (``--voices``):
# - "espeak": three espeak-ng voices and Piper's neural joe. espeak-ng's prosody is flat and robotic: the end-of-turn
#   model, trained on people, hears most of its finished commands as unfinished (resemblyzer also tells its
#   variants apart only roughly; the result counts wrong speakers).
# - "piper": four speakers from Piper's joe, three of them speed-perturbed (synthesized f times slower, played
#   f times faster: pitch and formants times f, the pace kept), the usual way speech corpora make new speakers
#   from one; natural neural prosody, and resemblyzer tells them apart (0.85-0.91 to their own signature, at
#   most 0.76 to another's).
VOICE_SETS = {"espeak": {"alice": "en-us+f3", "carol": "en-us+f5", "fiona": "en-gb-scotland+f3", "joe": "piper"},
              "piper": {"alice": "piper@1.3", "carol": "piper@1.15", "fiona": "piper@0.85", "joe": "piper"}}
VOICES = VOICE_SETS["espeak"]
ENROLL_LINES = ["The quick brown fox jumps over the lazy dog.", "I would like a cup of tea this afternoon.",
                "Please remind me to call my sister tomorrow."]
# Commands tiny.en hears reliably in these voices (it mangles "who am I" and "what's the date" from espeak-ng).
COMMANDS = ["what time is it", "tell me the time", "what day is it", "what is the time"]
QUESTIONS = ["why is the sky blue", "what is the capital of Italy", "what causes rain"]
DISTRACTORS = ["I think we should paint the kitchen blue this weekend.",
               "The train to the city leaves at half past nine."]
# Some commands are said with a pause mid-sentence (a person hesitating): the turn must not end in it.
PAUSED_COMMANDS = {"what time is it": ("what time", "is it"), "tell me the time": ("tell me", "the time"),
                   "what day is it": ("what day", "is it"), "what is the time": ("what is the", "time")}
PAUSES_S = (0.3, 0.45, 0.6)
VOICED_RMS = 0.003   # about -50 dBFS: espeak-ng's quiet word endings count as voice
STAGES = ("wake_delay", "vad_end_of_speech", "end_of_turn_decision", "endpointing", "stt", "end_of_speech_to_transcript",
          "speaker_id", "brain", "tts_first_chunk", "first_output_sample", "reply_lead_in", "voice_to_voice",
          "voice_to_voice_first_block")


# -- the script --------------------------------------------------------------------------------------

@dataclass
class Turn:
    speaker: str
    text: str
    wav: Path
    samples: np.ndarray
    wake_end_s: float      # end of the voiced "Jarvis" within the WAV
    first_voiced_s: float
    last_voiced_s: float
    llm: bool = False
    distractor: Path | None = None  # played before the turn, must not wake Jarvis
    pause_s: float = 0.0   # a pause mid-sentence (0: none)


_PIPER = None


_PIPER_LOCK = threading.Lock()
_ALIGNED_PIPER = None


def espeak(text: str, voice: str, out: Path | None) -> np.ndarray:
    """``text`` spoken in ``voice`` (an espeak-ng voice, "piper", "piper:<length_scale>" for another pace, or
    "piper@<f>" for another speaker: pitch and formants times f), 16 kHz mono float32, also written to ``out``
    unless it is None."""
    from jarvis.bench.components import espeak as speak

    if voice.startswith("piper@"):
        samples = _piper_shifted(text, float(voice.partition("@")[2]))
    elif voice.split(":")[0] == "piper":
        samples = _piper(text, voice.partition(":")[2])
    else:
        samples = speak(text, voice)
    if out is not None:
        write_wav(out, samples)
    return samples


def _piper_engine():
    global _PIPER
    from jarvis.speak.piper_engine import PiperEngine

    with _PIPER_LOCK:
        if _PIPER is None:
            _PIPER = PiperEngine()
            _PIPER.load()
    return _PIPER


def _piper(text: str, length_scale: str = "", rate_factor: float = 1.0) -> np.ndarray:
    """Piper's joe at ``length_scale`` (its pace), read as if recorded at ``rate_factor`` times its sample rate."""
    from jarvis.selftest import synthesize_16k

    piper = _piper_engine()
    if not length_scale:
        return synthesize_16k(piper, text)
    from piper import SynthesisConfig

    from jarvis.audio.resample import resample
    chunks = piper._voice.synthesize(text, syn_config=SynthesisConfig(length_scale=float(length_scale)))
    audio = np.concatenate([np.asarray(c.audio_float_array, np.float32).reshape(-1) for c in chunks])
    return resample(audio, int(round(piper.sample_rate * rate_factor)), RATE)


def _piper_shifted(text: str, factor: float) -> np.ndarray:
    """Speed perturbation: synthesized ``factor`` times slower, played ``factor`` times faster."""
    return _piper(text, str(factor), rate_factor=factor)


def voiced_bounds(samples: np.ndarray, threshold: float = VOICED_RMS) -> tuple[float, float] | None:
    """Seconds of the first and last 10 ms window above ``threshold`` RMS, or None if silent."""
    win = RATE // 100
    n = len(samples) // win
    if n == 0:
        return None
    rms = np.sqrt(np.mean(samples[: n * win].reshape(n, win) ** 2, axis=1))
    voiced = np.flatnonzero(rms > threshold)
    if not voiced.size:
        return None
    return voiced[0] * win / RATE, (voiced[-1] + 1) * win / RATE


def write_wav(path: Path, samples: np.ndarray) -> Path:
    from jarvis.audio.wav import write_wav as write
    write(str(path), samples, RATE)
    return path


def said_with_pause(text: str, voice: str, pause_s: float) -> np.ndarray:
    """``text`` with ``pause_s`` of silence after its first words (``PAUSED_COMMANDS``): a person stopping
    mid-sentence. A Piper voice says the whole sentence and the silence goes in at the word break (Piper's phoneme
    alignments), so the words before it do not end as a sentence would and those after it go on in its tune.
    espeak-ng gives no word times: its voices say the two parts on their own, each ending as a sentence does."""
    head_words = PAUSED_COMMANDS[text][0]
    if _piper_pace(voice) is not None:
        samples, breaks = _piper_with_word_breaks(text, voice)
        cut = breaks[len(head_words.split()) - 1]
        head, tail = samples[:cut], samples[cut:]
    else:
        head, tail = (espeak(part, voice, None) for part in PAUSED_COMMANDS[text])
    head = head[: int(voiced_bounds(head)[1] * RATE)]   # the pause is the silence between the words
    tail = tail[int(voiced_bounds(tail)[0] * RATE):]
    return np.concatenate([head, np.zeros(int(pause_s * RATE), np.float32), tail])


def pause_made_by(voices: dict[str, str]) -> str:
    """How ``said_with_pause`` makes the paused commands of ``voices`` (for the results)."""
    if all(_piper_pace(v) is not None for v in voices.values()):
        return "one sentence, silence at a word break (Piper alignments)"
    return "two parts said on their own, silence between (espeak-ng voices: no word times)"


def _piper_pace(voice: str) -> tuple[float | None, float] | None:
    """(length scale, rate factor) of a Piper voice as ``espeak`` names them, None for an espeak-ng voice."""
    if voice.startswith("piper@"):
        factor = float(voice.partition("@")[2])
        return factor, factor
    if voice.split(":")[0] == "piper":
        scale = voice.partition(":")[2]
        return (float(scale) if scale else None), 1.0
    return None


def _aligned_piper():
    """Piper's joe patched (in memory, by the ``onnx`` package) to report how many samples each phoneme took."""
    global _ALIGNED_PIPER
    from piper import PiperVoice

    from jarvis.speak.piper_engine import bundled_voice

    with _PIPER_LOCK:
        if _ALIGNED_PIPER is None:
            try:
                import onnx  # noqa: F401  (piper needs it to patch the voice)
            except ImportError as exc:
                raise NotAvailable("bench_needs_onnx", "The benchmark's paused commands need the onnx package: "
                                                       "run scripts/setup.sh.") from exc
            _ALIGNED_PIPER = PiperVoice.load(bundled_voice(), include_alignments=True)
    return _ALIGNED_PIPER


def word_breaks(chunk) -> list[tuple[int, int]]:
    """(first sample, samples) of each word break in an aligned Piper chunk, at the chunk's own rate."""
    breaks, at = [], 0
    for aligned in chunk.phoneme_alignments or []:
        if aligned.phoneme == " ":
            breaks.append((at, aligned.num_samples))
        at += aligned.num_samples
    return breaks


def _piper_with_word_breaks(text: str, voice: str) -> tuple[np.ndarray, list[int]]:
    """``text`` in a Piper ``voice`` (16 kHz) and the sample of each word break (the middle of the break)."""
    from piper import SynthesisConfig

    from jarvis.audio.resample import resample

    scale, factor = _piper_pace(voice)
    piper = _aligned_piper()
    (chunk,) = piper.synthesize(text, syn_config=SynthesisConfig(length_scale=scale), include_alignments=True)
    if not chunk.phoneme_alignments:
        raise NotAvailable("bench_no_alignments", "Piper gave no phoneme times for the benchmark's paused commands.")
    rate = int(round(chunk.sample_rate * factor))
    breaks = [int((start + length // 2) * RATE / rate) for start, length in word_breaks(chunk)]
    return resample(np.asarray(chunk.audio_float_array, np.float32).reshape(-1), rate, RATE), breaks


def build_script(folder: Path, turns: int, llm_every: int = 5, distractor_every: int = 4,
                 pause_every: int = 3, voices: dict[str, str] | None = None) -> list[Turn]:
    """Every ``llm_every``-th turn a question for the LLM, every ``pause_every``-th other turn (from the third) a
    command with a pause mid-sentence, every ``distractor_every``-th turn a sentence without the wake word first.
    ``voices``: speaker name -> voice (default ``VOICES``)."""
    voices = voices or VOICES
    names = list(voices)
    wakes = {name: espeak("Jarvis", voices[name], folder / f"wake-{name}.wav") for name in names}
    gap = np.zeros(int(0.3 * RATE), np.float32)
    script = []
    for i in range(turns):
        name = names[i % len(names)]
        llm = llm_every > 0 and i % llm_every == llm_every - 1
        text = QUESTIONS[(i // llm_every) % len(QUESTIONS)] if llm else COMMANDS[i % len(COMMANDS)]
        pause_s = PAUSES_S[(i // pause_every) % len(PAUSES_S)] \
            if pause_every > 0 and not llm and i % pause_every == pause_every - 1 else 0.0
        if pause_s:
            body = said_with_pause(text, voices[name], pause_s)
        else:
            body = espeak(text, voices[name], folder / f"turn{i}-body.wav")
        samples = np.concatenate([wakes[name], gap, body])
        wake_bounds, bounds = voiced_bounds(wakes[name]), voiced_bounds(samples)
        distractor = None
        if distractor_every > 0 and i % distractor_every == distractor_every - 1:
            line = DISTRACTORS[(i // distractor_every) % len(DISTRACTORS)]
            distractor = write_wav(folder / f"distractor{i}.wav", espeak(line, voices[name], folder / "d.wav"))
        script.append(Turn(name, text, write_wav(folder / f"turn{i}.wav", samples), samples, wake_bounds[1],
                           bounds[0], bounds[1], llm, distractor, pause_s))
    return script


# -- timing the audio Jarvis hears -------------------------------------------------------------------------

class VoicedTap:
    """A microphone tap: when the first and last voiced sample of the current window arrived."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.last: float | None = None
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self.first = self.last = None

    def __call__(self, block: np.ndarray) -> None:
        arrived = time.monotonic()
        samples = block.astype(np.float32) / 32768.0
        win = RATE // 100
        n = len(samples) // win
        if n == 0:
            return
        rms = np.sqrt(np.mean(samples[: n * win].reshape(n, win) ** 2, axis=1))
        voiced = np.flatnonzero(rms > VOICED_RMS)
        if not voiced.size:
            return
        behind = lambda end: (len(samples) - end) / RATE  # noqa: E731  (seconds after that sample, in the block)
        with self._lock:
            if self.first is None:
                self.first = arrived - behind(voiced[0] * win)
            self.last = arrived - behind((voiced[-1] + 1) * win)


class AudibleOutput:
    """The player's output tap: when the first voiced sample (a 10 ms window above ``VOICED_RMS``, as on the input
    side) since ``reset`` is heard, on the monotonic clock: PortAudio's time for its block, plus its place in it."""

    def __init__(self) -> None:
        self.first: float | None = None

    def reset(self) -> None:
        self.first = None

    def install(self, player) -> None:
        """Tap ``player``'s output (after whatever already taps it: the echo canceller's reference)."""
        before = player.on_output

        def on_output(block: np.ndarray, rate: int, heard_at: float, underflow: bool) -> None:
            if before is not None:
                before(block, rate, heard_at, underflow)
            self(block, rate, heard_at)

        player.on_output = on_output

    def __call__(self, block: np.ndarray, rate: int, heard_at: float) -> None:
        if self.first is not None or not block.any():   # the device's callback: nothing more once it is known
            return
        start = first_sound(block, rate, VOICED_RMS)
        if start is not None:
            self.first = heard_at + start / rate


@dataclass
class EventLog:
    events: list = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def __call__(self, event) -> None:
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def wait_for(self, kind: str, after: int, timeout: float):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                found = next((e for e in self.events[after:] if e.type == kind), None)
                if found is not None or time.monotonic() >= deadline:
                    return found
                self.cond.wait(min(0.1, deadline - time.monotonic()))


def _stats(seconds: list[float]) -> dict[str, float]:
    return {k.removesuffix("_ms"): v for k, v in stats_ms([float(x) for x in seconds], digits=1).items()}


def _first(events: list, kind: str):
    return next((e for e in events if e.type == kind), None)


def _last_before(events: list, kind: str, limit: float | None) -> float | None:
    """Time of the last ``kind`` event at or before ``limit``."""
    times = [e.t for e in events if e.type == kind and (limit is None or e.t <= limit)]
    return times[-1] if times else None


def _ms(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round((b - a) * 1000, 1)


WARM_TURNS = 10   # RSS growth is counted from after this turn (models' and allocators' first-use growth before)


def _growth(rss: list[float], states: list[float | None]) -> dict:
    """RSS growth per turn from after turn ``WARM_TURNS`` to the last (end to end, and the slope of a straight line
    fitted to every turn between, which one turn's step moves less), and the same less the LLM's kept conversation
    states (bounded by design); empty for runs too short to say."""
    if len(rss) < WARM_TURNS + 11:
        return {}
    after = rss[WARM_TURNS:]
    out = {"growth_per_turn_after_warm_turns": round((after[-1] - after[0]) / (len(after) - 1), 3),
           "fitted_per_turn_after_warm_turns": _slope(after), "warm_turns": WARM_TURNS}
    kept = states[WARM_TURNS:]
    if all(state is not None for state in kept):
        less = [total - state for total, state in zip(after, kept)]
        out["growth_per_turn_less_llm_states"] = round((less[-1] - less[0]) / (len(less) - 1), 3)
        out["fitted_per_turn_less_llm_states"] = _slope(less)
    return out


def _steady_window(script: list[Turn], memory_turns: int) -> tuple[int, int] | None:
    """(first turn, turns) over which the LLM's kept conversation states are at their steady size: from when every
    asking speaker's conversation memory has filled and forgotten its oldest half once (``memory_turns`` + 1
    questions each), over whole forgetting cycles of every speaker. The states rise with each question and drop at
    each forgetting, a sawtooth; growth over part of a cycle is its phase, not a trend. None if the run is too short."""
    asked: dict[str, list[int]] = collections.defaultdict(list)
    for i, turn in enumerate(script):
        if turn.llm:
            asked[turn.speaker].append(i)
    cycle = memory_turns + 1 - (memory_turns + 1) // 2       # questions from one forgetting to the next
    if memory_turns < 1 or not asked or any(len(q) < memory_turns + 1 for q in asked.values()):
        return None
    start = max(q[memory_turns] for q in asked.values()) + 1
    period = max((q[1] - q[0]) * cycle for q in asked.values())
    turns = (len(script) - start) // period * period
    return (start, turns) if turns else None


def _steady_growth(rss: list[float], states: list[float | None], window: tuple[int, int] | None) -> dict:
    """RSS growth per turn over ``window`` (see ``_steady_window``), end to end and fitted, with and without the
    LLM's kept states; empty without a window."""
    if window is None:
        return {}
    start, turns = window
    span, kept = rss[start:start + turns + 1], states[start:start + turns + 1]
    out = {"from_turn": start, "turns": turns, "growth_per_turn": round((span[-1] - span[0]) / turns, 3),
           "fitted_per_turn": _slope(span)}
    if all(state is not None for state in kept):
        out["llm_states_per_turn"] = round((kept[-1] - kept[0]) / turns, 3)
    return out


def _slope(values: list[float]) -> float:
    """MB a turn of the least-squares line through ``values`` (one a turn)."""
    return round(float(np.polyfit(np.arange(len(values)), values, 1)[0]), 3)


def _kept_llm_states_mb(loop) -> float | None:
    """MB of the local LLM's kept conversation states (bounded: see jarvis.brain.backends), part of the RSS."""
    kept = getattr(loop.host.llm, "kept_state_bytes", None)
    return round(kept / 1e6, 1) if kept is not None else None


def _rss_mb() -> float:
    import psutil

    me = psutil.Process()
    total = me.memory_info().rss
    for child in me.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return round(total / 2**20, 1)


# -- Jarvis -------------------------------------------------------------------------------------------------

class ServeLoad:
    """``clients`` threads asking the assistant's own speech server (``serve.enabled``) for speech without a break
    while the turns run: does the voice loop keep its pace when other apps use its models?"""

    def __init__(self, port: int, token: str, clients: int):
        self.port, self.token, self.clients = port, token, clients
        self.results: list[dict] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.seconds = 0.0

    def start(self) -> None:
        self._started = time.monotonic()
        for k in range(self.clients):
            thread = threading.Thread(target=self._client, args=(k,), name=f"serve-load-{k}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _client(self, k: int) -> None:
        from jarvis.bench.serve import SENTENCES, speech

        n = k
        while not self._stop.is_set():
            self.results.append(speech(self, SENTENCES[n % len(SENTENCES)]))  # it needs .port and .token
            n += 1

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        for thread in self._threads:
            thread.join(130)
        self.seconds = time.monotonic() - self._started
        ok = [r for r in self.results if r["status"] == 200]
        statuses = collections.Counter(str(r["status"]) for r in self.results)
        return {"clients": self.clients, "seconds": round(self.seconds, 1), "requests": len(self.results),
                "ok": len(ok), "statuses": dict(statuses),
                "first_audio_byte": stats_ms([r["first_byte_s"] for r in ok if r["first_byte_s"] is not None], 1),
                "audio_s_per_s": round(sum(r["audio_s"] for r in ok) / max(self.seconds, 1e-9), 2)}


def run_jarvis(settings, audio, script: list[Turn], progress, serve_load: int = 0) -> dict[str, Any]:
    from jarvis import events
    from jarvis.pipeline import VoiceLoop

    bus, log, tap, heard = events.EventBus(), EventLog(), VoicedTap(), AudibleOutput()
    bus.subscribe(log)
    loop = VoiceLoop(settings, bus)
    started = time.monotonic()
    loop.start()
    load_s = time.monotonic() - started
    loop.add_tap(tap)
    heard.install(loop.player)
    rss, states, released = [_rss_mb()], [_kept_llm_states_mb(loop)], [None]
    latency = {"input_latency_ms": round(loop.capture.latency_s * 1000, 1), "output_latency_ms": None}
    time.sleep(1.0)
    turns, false_wakes = [], 0
    clients = None
    if serve_load:
        if loop.host.serving is None:
            from jarvis.errors import NotAvailable

            loop.stop()
            raise NotAvailable("serve_failed", "The assistant's speech server did not start (see the degraded line "
                                               "above); --serve-load needs it.")
        from jarvis.serve.security import TOKEN_ENV

        clients = ServeLoad(settings.serve.port, os.environ[TOKEN_ENV], serve_load)
        clients.start()
        progress(f"{serve_load} clients asking the assistant's speech server for speech meanwhile")
    try:
        for i, turn in enumerate(script):
            if turn.distractor is not None:
                mark = len(log.events)
                audio.play_into_mic(turn.distractor)
                time.sleep(1.5)
                wakes = [e for e in log.events[mark:] if e.type == "wake"]
                false_wakes += len(wakes)
                if wakes:  # let the false turn finish before the next real one
                    log.wait_for("playback_end", mark, 20)
                    time.sleep(1.0)
            tap.reset()
            heard.reset()
            mark = len(log.events)
            audio.play_into_mic(turn.wav)
            end = log.wait_for("playback_end", mark, 60 if turn.llm else 30)
            if end is None:
                log.wait_for("reply", mark, 5)
            _wait_out_follow_up(log, mark, loop.settings.listen.follow_up_s)
            time.sleep(0.8)
            turns.append(_turn_figures(turn, log.events[mark:], tap, loop, heard.first))
            latency["output_latency_ms"] = round(loop.player.latency_s * 1000, 1)  # open once it has played
            rss.append(_rss_mb())
            states.append(_kept_llm_states_mb(loop))
            released.append(loop.heap.took_ms)
            r = turns[-1]
            progress(f"turn {i + 1}/{len(script)} {turn.speaker}: {turn.text!r} -> "
                     f"{(r['reply'] or '')[:40]!r}; voice-to-voice {r['voice_to_voice']} ms")
    finally:
        served = clients.stop() if clients is not None else None
        # Blocks the devices dropped or ran dry before while replies played: the price of small audio blocks.
        glitches = {"output_underflows": loop.player.underflows if loop.player else None,
                    "input_overflows": loop.capture.overflows if loop.capture else None,
                    "input_blocks_dropped": loop.capture.dropped if loop.capture else None}
        loop.stop()
    missed = sum(1 for t in turns if not t["woke"])
    return {"turns": turns, "serve_load": served, "load_s": round(load_s, 2), "false_wakes": false_wakes,
            "missed_wakes": missed, "audio_glitches": glitches,
            "wrong_speaker": sum(1 for t in turns if t["woke"] and t["speaker"] != t["expected_speaker"]),
            "rss_mb": {"after_warmup": rss[0], "after_turns": rss[-1], "per_turn": rss,
                       "llm_states_per_turn": states, **_growth(rss, states),
                       "steady_conversations": _steady_growth(
                           rss, states, _steady_window(script, settings.brain.memory_turns)),
                       "release_ms_per_turn": released}, **latency}


def _wait_out_follow_up(log: EventLog, mark: int, follow_up_s: float) -> None:
    """After a reply Jarvis listens for a follow-up without the wake word (listen.follow_up_s): every turn here is
    a wake-word turn, and a distractor must meet the wake word alone, so the window is let close first."""
    opened = log.wait_for("follow_up", mark, 0.6)
    if opened is not None:
        log.wait_for("listening", log.events.index(opened), follow_up_s + 3)


def _turn_events(evs: list) -> list:
    """The events of the turn the played command opened: its first wake (or speech start), by turn id; late events
    of the turn before (an interrupted reply's end) and events of no turn are left out."""
    opening = next((e for e in evs if e.type in ("wake", "speech_start") and e.turn is not None), None)
    return [e for e in evs if opening is not None and e.turn == opening.turn]


def _turn_figures(turn: Turn, evs: list, tap: VoicedTap, loop, heard: float | None = None) -> dict[str, Any]:
    """One turn's figures; ``heard``: when its reply's first voiced sample was heard (``AudibleOutput``)."""
    evs = _turn_events(evs)
    in_lat = loop.capture.latency_s if loop.capture else 0.0
    out_lat = loop.player.latency_s if loop.player else 0.0
    first_voiced = tap.first - in_lat if tap.first is not None else None
    last_voiced = tap.last - in_lat if tap.last is not None else None
    wake_end = first_voiced + (turn.wake_end_s - turn.first_voiced_s) if first_voiced is not None else None
    t = {kind: getattr(_first(evs, kind), "t", None) for kind in
         ("wake", "speech_start", "speech_end", "transcript", "speaker", "reply", "llm_first_token",
          "tts_first_chunk", "playback_start")}
    answer = t["llm_first_token"] if t["llm_first_token"] is not None else t["reply"]
    if answer is not None and t["speaker"] is not None:   # worked out ahead: ready when the speaker was known
        answer = max(answer, t["speaker"])
    output = t["playback_start"] + out_lat if t["playback_start"] is not None else None
    transcript, speaker, reply = _first(evs, "transcript"), _first(evs, "speaker"), _first(evs, "reply")
    # Cut off: the command's recording ended before the last of what was said reached Jarvis.
    cut_off = bool(t["speech_end"] is not None and tap.last is not None and t["speech_end"] < tap.last)
    return {
        "speaker": getattr(speaker, "name", None), "expected_speaker": turn.speaker, "said": turn.text,
        "pause_s": turn.pause_s, "cut_off": cut_off,
        "end_of_turn": [{"finished": e.finished, "probability": e.probability, "after_ms": e.after_ms,
                         "heard": e.heard, "wait_s": e.wait_s} for e in evs if e.type == "end_of_turn"],
        "transcript": getattr(transcript, "text", None), "reply": getattr(reply, "text", None),
        "llm": t["llm_first_token"] is not None, "asked_llm": turn.llm, "woke": t["wake"] is not None,
        # Its first sentence was synthesized while the command's last pause was still being heard (answered ahead).
        "answered_ahead": bool(getattr(_first(evs, "tts_first_chunk"), "prepared", False)),
        "wake_delay": _ms(wake_end, t["wake"]),
        "vad_end_of_speech": _ms(last_voiced, _last_before(evs, "vad_silence", t["speech_end"])),
        "end_of_turn_decision": _decision_ms(evs, t["speech_end"]),
        "endpointing": _ms(last_voiced, t["speech_end"]), "stt": _ms(t["speech_end"], t["transcript"]),
        "end_of_speech_to_transcript": _ms(last_voiced, t["transcript"]),
        "speaker_id": _ms(t["transcript"], t["speaker"]), "brain": _ms(t["speaker"], answer),
        "tts_first_chunk": _ms(answer, t["tts_first_chunk"]),
        "first_output_sample": _ms(t["tts_first_chunk"], output), "reply_lead_in": _ms(output, heard),
        "voice_to_voice": _ms(last_voiced, heard), "voice_to_voice_first_block": _ms(last_voiced, output),
    }


def _decision_ms(evs: list, speech_end: float | None) -> float | None:
    """From the pause that ended the command to the end-of-turn model's decision on it (None: no decision on it)."""
    pause, decided = _last_before(evs, "vad_silence", speech_end), _last_before(evs, "end_of_turn", speech_end)
    return _ms(pause, decided) if pause is not None and decided is not None and decided >= pause else None


# -- the peer: RealtimeSTT as its docs show it ------------------------------------------------------------

def run_peer(settings, script: list[Turn], progress) -> dict[str, Any]:
    """``AudioToTextRecorder`` with its documented defaults (use_microphone=False, fed audio) and tiny.en."""
    from RealtimeSTT import AudioToTextRecorder

    from jarvis.listen.stt import resolve_model

    recorder = AudioToTextRecorder(model=resolve_model(settings.listen.stt_model), device="cpu",
                                   use_microphone=False, spinner=False, language="en", no_log_file=True)
    block = 512
    results = []
    try:
        feeder_stop = threading.Event()
        state = {"audio": np.zeros(0, np.float32), "last_voiced": None}
        lock = threading.Lock()

        def feed() -> None:  # real-time pace, silence when there is nothing to say
            next_at = time.monotonic()
            while not feeder_stop.is_set():
                with lock:
                    chunk, state["audio"] = state["audio"][:block], state["audio"][block:]
                if chunk.size < block:
                    chunk = np.concatenate([chunk, np.zeros(block - chunk.size, np.float32)])
                recorder.feed_audio((chunk * 32767).astype(np.int16).tobytes(), RATE)
                fed = time.monotonic()
                win = RATE // 100
                rms = np.sqrt(np.mean(chunk[: block // win * win].reshape(-1, win) ** 2, axis=1))
                voiced = np.flatnonzero(rms > VOICED_RMS)
                if voiced.size:
                    with lock:
                        state["last_voiced"] = fed - (block - (voiced[-1] + 1) * win) / RATE
                next_at += block / RATE
                time.sleep(max(0.0, next_at - time.monotonic()))

        feeder = threading.Thread(target=feed, daemon=True, name="peer-feed")
        feeder.start()
        time.sleep(1.0)
        for i, turn in enumerate(script):
            with lock:
                state["audio"], state["last_voiced"] = turn.samples.astype(np.float32), None
            text = recorder.text()
            done = time.monotonic()
            with lock:
                last = state["last_voiced"]
            results.append({"said": turn.text, "transcript": text, "end_of_speech_to_transcript": _ms(last, done)})
            progress(f"peer {i + 1}/{len(script)}: {text!r} in {results[-1]['end_of_speech_to_transcript']} ms")
            time.sleep(0.5)
        feeder_stop.set()
        feeder.join(2)
    finally:
        recorder.shutdown()
    return {"turns": results, "settings": "AudioToTextRecorder defaults: post_speech_silence_duration 0.6, "
                                          "beam_size 5, silero_sensitivity 0.4, webrtc_sensitivity 3, "
                                          "faster_whisper_vad_filter on; model tiny.en, device cpu"}


# -- the whole run ------------------------------------------------------------------------------------------

def bench(settings, turns: int = 24, peer: bool = True, progress=print, serve_load: int = 0,
          voices: str = "espeak") -> dict[str, Any]:
    with scratch_home("jarvis-bench-") as work:  # enrolled bench voices never touch the user's
        return _bench(work, settings, turns, peer, progress, serve_load, voices)


def _bench(work: Path, settings, turns: int, peer: bool, progress, serve_load: int,
           voice_set: str = "espeak") -> dict[str, Any]:
    from jarvis.audio import devices
    from jarvis.bench.virtual_audio import VirtualAudio
    from jarvis.speakers.encoder import SpeakerEncoder
    from jarvis.speakers.enroll import enroll_from_wavs
    from jarvis.speakers.store import SpeakerStore

    settings.audio.input_device, settings.audio.output_device = "jarvis_mic", "jarvis_speaker"
    settings.brain.max_tokens = min(settings.brain.max_tokens, 48)  # keep LLM turns short
    settings.tts.engines = [e for e in settings.tts.engines if e != "csm"] or ["piper"]
    if serve_load:
        settings.serve.enabled = True
    if settings.serve.enabled:  # on a free loopback port, with the bench's own token (never the user's keyring)
        import secrets

        from jarvis.bench.serve import free_port
        from jarvis.serve.security import TOKEN_ENV

        settings.serve.host, settings.serve.port = "127.0.0.1", free_port()
        os.environ[TOKEN_ENV] = secrets.token_urlsafe(32)
    voices = VOICE_SETS[voice_set]
    progress(f"making {turns} spoken turns ({voice_set} voices)")
    script = build_script(work, turns, voices=voices)
    encoder = SpeakerEncoder()
    encoder.load()
    store = SpeakerStore()
    for name, voice in voices.items():
        clips = [write_wav(work / f"enroll-{name}{i}.wav", espeak(line, voice, work / "e.wav"))
                 for i, line in enumerate(ENROLL_LINES)]
        enroll_from_wavs(name, [str(c) for c in clips], store, encoder)
    with VirtualAudio() as audio:
        audio.apply()
        devices.refresh()
        progress("Jarvis: loading the voice loop")
        jarvis = run_jarvis(settings, audio, script, progress, serve_load)
    result: dict[str, Any] = {
        "benchmark": "pipeline", "hardware": hardware(),
        "versions": versions(("realtimestt", "faster-whisper", "ctranslate2", "pvporcupine", "resemblyzer",
                              "piper-tts", "llama-cpp-python", "sounddevice")),
        "settings": {"preset": settings.preset, "listen": dataclasses.asdict(settings.listen),
                     "tts": settings.tts.engines, "audio_block_ms": settings.audio.block_ms,
                     "audio_output_block_ms": settings.audio.output_block_ms,
                     "brain": settings.brain.backend, "brain_max_tokens": settings.brain.max_tokens,
                     "serve": dataclasses.asdict(settings.serve)},
        "voices": {"set": voice_set, **voices},
        "turns": len(script), "llm_turns": sum(r["llm"] for r in jarvis["turns"]),
        "answered_ahead": sum(r["answered_ahead"] for r in jarvis["turns"]),
        "heard_as_said": sum(_heard_as_said(r) for r in jarvis["turns"]),
        "jarvis": jarvis, "stages_ms": {}, "command": command(), "date": date(),
    }
    # A turn cut off mid-sentence answered half a command: it counts as a false cut-off, not in the latencies.
    whole = [r for r in jarvis["turns"] if not r["cut_off"]]
    for stage in STAGES:
        result["stages_ms"][stage] = _stats([r[stage] / 1000 for r in whole if r[stage] is not None])
    whole = [r for r in whole if r["voice_to_voice"] is not None]
    result["voice_to_voice_ms"] = {"skills": _stats([r["voice_to_voice"] / 1000 for r in whole if not r["llm"]]),
                                   "llm": _stats([r["voice_to_voice"] / 1000 for r in whole if r["llm"]])}
    paused = [r for r in jarvis["turns"] if r["pause_s"]]
    result["false_cut_offs"] = {"paused_turns": len(paused), "cut_off": sum(r["cut_off"] for r in paused),
                                "other_turns_cut_off": sum(r["cut_off"] for r in jarvis["turns"] if not r["pause_s"]),
                                "pauses_s": sorted({r["pause_s"] for r in paused}),
                                "pauses_made_by": pause_made_by(voices)}
    if peer:
        progress("peer: RealtimeSTT AudioToTextRecorder with its defaults")
        result["peer"] = run_peer(settings, script, progress)
        peer_stats = _stats([r["end_of_speech_to_transcript"] / 1000 for r in result["peer"]["turns"]
                            if r["end_of_speech_to_transcript"] is not None])
        result["peer"]["end_of_speech_to_transcript_ms"] = peer_stats
        ours = result["stages_ms"]["end_of_speech_to_transcript"]
        if peer_stats and ours:
            result["ratio_end_of_speech_to_transcript"] = {k: round(ours[k] / peer_stats[k], 3)
                                                           for k in ("p50", "p95") if peer_stats[k]}
    result["targets"] = _targets(result)
    return result


def _heard_as_said(turn: dict) -> bool:
    clean = lambda text: "".join(c for c in (text or "").lower() if c.isalnum() or c == " ").split()  # noqa: E731
    return clean(turn["said"]) == clean(turn["transcript"])[-len(clean(turn["said"])):]


# Issue 14's goals (half a second, voice to voice, on two CPU cores); at most, except where noted.
GOALS = {"skills_voice_to_voice_p50_ms": 500, "skills_voice_to_voice_p95_ms": 700, "llm_voice_to_voice_p50_ms": 900,
         "false_cut_off_rate": 0.02, "stt_vs_peer_p50": 0.4, "rss_mb_per_turn_steady": 0.1}


def _targets(result: dict[str, Any]) -> dict[str, Any]:
    v2v, cuts = result["voice_to_voice_ms"], result["false_cut_offs"]
    measured = {"skills_voice_to_voice_p50_ms": v2v["skills"].get("p50"),
                "skills_voice_to_voice_p95_ms": v2v["skills"].get("p95"),
                "llm_voice_to_voice_p50_ms": v2v["llm"].get("p50"),
                "false_cut_off_rate":
                    round(cuts["cut_off"] / cuts["paused_turns"], 3) if cuts["paused_turns"] else None,
                "stt_vs_peer_p50": result.get("ratio_end_of_speech_to_transcript", {}).get("p50"),
                "rss_mb_per_turn_steady": result["jarvis"]["rss_mb"].get("steady_conversations", {}).get(
                    "growth_per_turn")}
    return {name: {"goal": GOALS[name], "measured": value, "met": value is not None and value <= GOALS[name]}
            for name, value in measured.items() if value is not None}


def format_text(result: dict[str, Any]) -> str:
    voices = result.get("voices", {}).get("set", "espeak")
    lines = [f"Pipeline benchmark: {result['turns']} turns ({result['llm_turns']} to the LLM, {voices} voices) on "
             f"{result['hardware']}",
             f"{'stage':32} {'P50':>8} {'P95':>8} {'P99':>8} {'max':>8}  (ms)"]
    for stage, s in result["stages_ms"].items():
        if s:
            lines.append(f"{stage:32} {s['p50']:8.0f} {s['p95']:8.0f} {s['p99']:8.0f} {s['max']:8.0f}")
    for kind, s in result["voice_to_voice_ms"].items():
        if s:
            lines.append(f"{'voice_to_voice (' + kind + ')':32} {s['p50']:8.0f} {s['p95']:8.0f} {s['p99']:8.0f} "
                         f"{s['max']:8.0f}")
    j = result["jarvis"]
    cuts = result["false_cut_offs"]
    lines.append(f"paused mid-sentence ({', '.join(f'{p:g}' for p in cuts['pauses_s'])} s): {cuts['paused_turns']} "
                 f"turns, cut off {cuts['cut_off']}; other turns cut off {cuts['other_turns_cut_off']}")
    lines.append(f"wake words missed {j['missed_wakes']}, false wakes {j['false_wakes']}, wrong speaker "
                 f"{j['wrong_speaker']}; RSS {j['rss_mb']['after_warmup']:.0f} MB after warm-up, "
                 f"{j['rss_mb']['after_turns']:.0f} MB after the turns")
    growth = j["rss_mb"]
    if "growth_per_turn_after_warm_turns" in growth:
        nan = float("nan")
        lines.append(f"RSS growth after turn {growth['warm_turns']}: {growth['growth_per_turn_after_warm_turns']:+.2f}"
                     f" MB a turn (fitted {growth['fitted_per_turn_after_warm_turns']:+.2f}); less the LLM's kept "
                     f"conversation states {growth.get('growth_per_turn_less_llm_states', nan):+.2f} (fitted "
                     f"{growth.get('fitted_per_turn_less_llm_states', nan):+.2f})")
    steady = growth.get("steady_conversations") or {}
    if steady:
        lines.append(f"RSS growth from turn {steady['from_turn']} over {steady['turns']} turns (every conversation "
                     f"forgot once, whole forgetting cycles): {steady['growth_per_turn']:+.2f} MB a turn (fitted "
                     f"{steady['fitted_per_turn']:+.2f}; the LLM's kept states "
                     f"{steady.get('llm_states_per_turn', float('nan')):+.2f})")
    took = [ms for ms in growth.get("release_ms_per_turn") or [] if ms is not None]
    if took:
        lines.append(f"memory handed back after a turn (cycle collector + malloc_trim, while idle): "
                     f"{np.median(took):.0f} ms P50, {max(took):.0f} ms max")
    glitches = j.get("audio_glitches") or {}
    if glitches:
        lines.append(f"audio: the speaker ran dry {glitches['output_underflows']} times while replies played, the "
                     f"microphone overflowed {glitches['input_overflows']} times "
                     f"(latency {j['input_latency_ms']} ms in, {j['output_latency_ms']} ms out)")
    load = j.get("serve_load")
    if load:
        lines.append(f"speech server meanwhile: {load['clients']} clients, {load['requests']} requests "
                     f"({load['ok']} ok, {load['statuses']}), first audio byte {load['first_audio_byte']}")
    if "peer" in result:
        p = result["peer"]["end_of_speech_to_transcript_ms"]
        lines.append(f"peer end of speech -> transcript P50 {p['p50']:.0f} ms, P95 {p['p95']:.0f} ms; "
                     f"Jarvis/peer {result.get('ratio_end_of_speech_to_transcript')}")
    for name, target in result["targets"].items():
        lines.append(f"target {name}: goal {target['goal']}, measured {target['measured']}, "
                     f"{'met' if target['met'] else 'NOT met'}")
    return "\n".join(lines)


def plot(result: dict[str, Any], path: str) -> None:
    """Stage breakdown (P50, stacked, with the peer's end of speech → transcript) and distributions."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sequence = ["endpointing", "stt", "speaker_id", "brain", "tts_first_chunk", "first_output_sample", "reply_lead_in"]
    labels = ["endpointing", "speech-to-text", "speaker ID", "brain", "TTS first chunk", "output", "silence first"]
    turns = [r for r in result["jarvis"]["turns"] if not r["llm"] and not r.get("cut_off")]
    medians = [max(0.0, float(np.median([r.get(s) for r in turns if r.get(s) is not None] or [0])))
               for s in sequence]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7.5), gridspec_kw={"height_ratios": [1, 1.6]})
    left = 0.0
    colours = plt.cm.tab10.colors
    for i, (label, ms) in enumerate(zip(labels, medians)):
        top.barh("Jarvis (skills)", ms, left=left, color=colours[i], label=f"{label} {ms:.0f} ms")
        left += ms
    peer = result.get("peer", {}).get("end_of_speech_to_transcript_ms")
    if peer:
        top.barh("peer: end of speech\n→ transcript", peer["p50"], color="0.6",
                 label=f"peer (RealtimeSTT defaults) {peer['p50']:.0f} ms")
    goal = GOALS["skills_voice_to_voice_p50_ms"]
    top.axvline(goal, color="red", linestyle="--", linewidth=1)
    top.text(goal + 5, 0.35, f"goal {goal} ms", color="red", fontsize=8)
    top.set_xlabel("milliseconds after the last voiced input sample (medians)")
    top.legend(fontsize=7, loc="lower right", ncol=2)
    top.set_title(f"Voice to voice, {result['turns']} spoken turns; {result['hardware']}", fontsize=9)
    names = [s for s in STAGES if result["stages_ms"].get(s)]
    data = [[r[s] for r in result["jarvis"]["turns"] if r[s] is not None] for s in names]
    if peer:
        names.append("peer: end of speech → transcript")
        data.append([r["end_of_speech_to_transcript"] for r in result["peer"]["turns"]
                     if r["end_of_speech_to_transcript"] is not None])
    bottom.boxplot(data, vert=False, tick_labels=names, showfliers=True)
    bottom.set_xlabel("milliseconds (all turns)")
    bottom.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def apply_preset_and_overrides(settings, preset: str | None, assignments: list[str]) -> None:
    """A bench's ``--preset`` (its values) and then each ``--set SECTION.KEY=VALUE``, for this run only."""
    if preset:
        from jarvis import presets
        presets.apply(settings, preset)
    for assignment in assignments:
        _override(settings, assignment)


def _override(settings, assignment: str) -> None:
    from jarvis.errors import BadInput

    key, _, value = assignment.partition("=")
    section, _, name = key.strip().partition(".")
    target = getattr(settings, section, None)
    if not _ or target is None or not dataclasses.is_dataclass(target) or not hasattr(target, name):
        raise BadInput("bad_args", f"--set {assignment}: expected SECTION.KEY=VALUE with a known setting, "
                                   "e.g. listen.post_speech_silence=0.3")
    current = getattr(target, name)
    try:
        setattr(target, name, type(current)(value) if not isinstance(current, bool) else value.lower() == "true")
    except ValueError as exc:
        raise BadInput("bad_args", f"--set {assignment}: {name} should be {type(current).__name__}") from exc


def add_arguments(parser) -> None:
    parser.add_argument("--turns", type=int, default=24, help="spoken turns (at least 20 for a result)")
    parser.add_argument("--no-peer", action="store_true", help="skip RealtimeSTT's defaults on the same audio")
    parser.add_argument("--json", metavar="FILE", help="write the result as JSON")
    parser.add_argument("--plot", metavar="FILE.png", help="draw the stage breakdown and distributions")
    from jarvis import presets

    parser.add_argument("--preset", choices=tuple(presets.PRESETS),
                        help="run with this performance preset (before any --set)")
    parser.add_argument("--set", metavar="SECTION.KEY=VALUE", action="append", default=[],
                        help="try a setting for this run only, e.g. --set listen.post_speech_silence=0.3")
    parser.add_argument("--voices", choices=tuple(VOICE_SETS), default="espeak",
                        help="who speaks: espeak-ng's robotic voices with Piper's joe (the default), or four Piper "
                             "speakers with natural prosody")
    parser.add_argument("--serve-load", type=int, default=0, metavar="CLIENTS",
                        help="serve from the assistant (serve.enabled) and have this many clients ask it for speech "
                             "during the turns; --set serve.enabled=true serves without clients (the idle run)")


def main(args, settings) -> int:
    from jarvis.errors import BadInput

    if args.turns < 1:
        raise BadInput("bad_args", "--turns must be at least 1.")
    if args.serve_load < 0:
        raise BadInput("bad_args", "--serve-load must be 0 or more clients.")
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError as exc:
            raise BadInput("no_matplotlib", "--plot needs matplotlib: scripts/setup.sh --test installs it.") from exc
    apply_preset_and_overrides(settings, args.preset, args.set)
    result = bench(settings, args.turns, peer=not args.no_peer, progress=lambda line: print(line, file=sys.stderr),
                   serve_load=args.serve_load, voices=args.voices)
    print(format_text(result))
    if args.json:
        write_json(args.json, result)
    if args.plot:
        plot(result, args.plot)
        print(f"wrote {args.plot}")
    return 0
