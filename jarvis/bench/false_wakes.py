"""`jarvis bench false-wakes`: the wake-word detector on hours of speech without the wake word, and which
TTS voices it can wake on at all (the voice scan `jarvis bench room` uses).

Honest about the set-up: speech is fed to the detector directly, as Jarvis configures it (pvporcupine 1.9.5,
built-in keyword "jarvis", ``listen.wake_sensitivity``, 512-sample frames of 16 kHz int16; Jarvis's four-phase
``jarvis.listen.wake.PhasedPorcupine`` where it exists, and one plain Porcupine beside it for comparison),
faster than real time, not through the audio server, the echo canceller or the voice loop (whose own-voice gate
only acts while Jarvis talks).

- Text: the King James Bible (1611, public domain) from Debian's ``bible-kjv-text`` (read with its ``bible``
  program), Genesis onwards, verse numbers dropped and any "Jarvis" removed; without that package, the licence
  texts in ``/usr/share/common-licenses`` (always on Debian). The JSON names the source.
- Voices: every espeak-ng English voice x variant the scan says Porcupine wakes on, plus Piper's voice at two
  speeds, in turn, one passage (~40 words) each, so every voice reads different text.
- Conditions: the same audio clean and with background noise (pink, and six-talker espeak-ng babble) at
  10 dB SNR against the speech's active level: detector hours = audio hours x conditions.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from jarvis.bench.stats import command, date, hardware, versions, write_json

RATE = 16000
FRAME = 512
PIPER_SPEEDS = (1.0, 0.8)     # Piper length_scale: its normal pace and 20 % faster
ALIGNMENTS = 8                # the scan plays "Jarvis" at 8 offsets within one phase step of the detector
WAKES_ON = 7                  # detected at >= 7 of 8 offsets: a voice Porcupine wakes on
ACTIVE_DBFS = -26.0           # near-end speech is normalised to this active level (ITU-T P.56's nominal)
_BIBLE_BOOKS = ("Gen1:1-50:26", "Exo1:1-40:38", "Lev1:1-27:34", "Num1:1-36:13")


# -- the detector, as Jarvis sets it up --------------------------------------------------------------------

def detector(sensitivity: float | None = None):
    """Jarvis's wake-word detector for "jarvis" at ``ListenSettings().wake_sensitivity`` (or ``sensitivity``):
    ``jarvis.listen.wake.PhasedPorcupine`` (several Porcupines at offset frame phases), as the listener uses it."""
    from jarvis.config import ListenSettings

    s = ListenSettings()
    sens = float(s.wake_sensitivity if sensitivity is None else sensitivity)
    from jarvis.listen.wake import PhasedPorcupine

    return PhasedPorcupine([s.wake_word], [sens])


def _fast(porcupine):
    """A Porcupine whose ``process`` hands the numpy frame to the same C function without building a ctypes array
    of it sample by sample (``jarvis.listen.wake.frame_caller``); same result."""
    from jarvis.listen.wake import frame_caller

    porcupine.process = frame_caller(porcupine)
    return porcupine


def _single():
    """One plain Porcupine with Jarvis's keyword and sensitivity (RealtimeSTT's own set-up)."""
    import pvporcupine

    from jarvis.config import ListenSettings

    s = ListenSettings()
    return _fast(pvporcupine.create(keywords=[s.wake_word], sensitivities=[float(s.wake_sensitivity)]))


def detector_name() -> str:
    try:
        from jarvis.listen.wake import PHASES
    except ImportError:
        return "pvporcupine (one detector, as RealtimeSTT creates it)"
    return f"jarvis.listen.wake.PhasedPorcupine ({PHASES} Porcupines at offset frame phases)"


def _phases() -> int:
    try:
        from jarvis.listen.wake import PHASES
    except ImportError:
        return 1
    return int(PHASES)


def detections(porcupine, samples: np.ndarray) -> list[int]:
    """Frame indices where ``porcupine`` fires on float32 16 kHz ``samples`` (fed in whole 512-sample frames)."""
    pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
    n = len(pcm) // FRAME
    return [i for i in range(n) if porcupine.process(pcm[i * FRAME:(i + 1) * FRAME]) >= 0]


# -- voices ------------------------------------------------------------------------------------------------

def espeak_voices() -> list[str]:
    """English espeak-ng voices (MBROLA ones only when their data is installed)."""
    out = subprocess.run(["espeak-ng", "--voices=en"], capture_output=True, text=True, check=True).stdout
    voices = []
    for line in out.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 5:
            continue
        language, file = cols[1], cols[4]
        if language == "variant":
            continue
        if file.startswith("mb/"):
            if shutil.which("mbrola") is None:
                continue
            language = file.split("/")[1]
        if language not in voices:
            voices.append(language)
    return voices


def espeak_variants() -> list[str]:
    """Variant names for ``voice+variant`` (``f1``..``f5``, ``m1``..``m7``, ``klatt``, ``Annie``, ...)."""
    out = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True, check=True).stdout
    return sorted({line.split()[4].removeprefix("!v/") for line in out.splitlines()[1:]
                   if len(line.split()) > 4 and line.split()[4].startswith("!v/")})


def speak(text: str, voice: str) -> np.ndarray:
    """``text`` in ``voice`` (espeak-ng ``voice[+variant]`` or ``piper:<length_scale>``), 16 kHz float32,
    normalised to ``ACTIVE_DBFS`` active level (silent audio is returned as is)."""
    from jarvis.bench.pipeline import espeak

    samples = espeak(text, voice, None)
    return normalise(samples)


def normalise(samples: np.ndarray, dbfs: float = ACTIVE_DBFS) -> np.ndarray:
    level = active_rms(samples)
    return (samples * (10 ** (dbfs / 20) / level)).astype(np.float32) if level > 1e-5 else samples


def active_rms(samples: np.ndarray) -> float:
    """RMS of the 10 ms windows within 30 dB of the loudest (speech's active level, pauses left out)."""
    win = RATE // 100
    n = len(samples) // win
    if n == 0:
        return 0.0
    rms = np.sqrt(np.mean(samples[: n * win].reshape(n, win).astype(np.float64) ** 2, axis=1))
    active = rms[rms > rms.max() * 10 ** (-30 / 20)]
    return float(np.sqrt(np.mean(active ** 2))) if active.size else 0.0


def wake_rate(samples: np.ndarray, sensitivity: float | None = None) -> tuple[int, float | None]:
    """At how many of ``ALIGNMENTS`` frame offsets the detector hears "Jarvis" in ``samples`` (one detector, each
    try after 1.5 s of silence, which clears what it heard before, and followed by 0.6 s of it), and the median
    time from the voiced end of the word to the end of the frame it fired on (ms)."""
    from jarvis.bench.pipeline import voiced_bounds

    hits, delays, step = 0, [], FRAME // (_phases() * ALIGNMENTS)  # offsets a phase apart give the same result
    word_end = (voiced_bounds(samples) or (0.0, 0.0))[1]
    porcupine = detector(sensitivity)
    try:
        for k in range(ALIGNMENTS):
            clip = np.concatenate([np.zeros(int(1.5 * RATE) + k * step, np.float32), samples,
                                   np.zeros(int(0.6 * RATE), np.float32)])
            cut = clip.size % FRAME
            fired = detections(porcupine, clip[cut:])
            hits += bool(fired)
            if fired:
                start = int(1.5 * RATE) + k * step - cut   # where the word starts in what was fed
                delays.append(((fired[0] + 1) * FRAME - start) / RATE - word_end)
    finally:
        porcupine.delete()
    return hits, round(float(np.median(delays)) * 1000, 1) if delays else None


def scan_voices(voices: Iterable[str] | None = None, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Which voices Porcupine wakes on: "Jarvis" in every English espeak-ng voice x variant (and the plain
    voice) plus Piper at ``PIPER_SPEEDS``, each at ``ALIGNMENTS`` frame offsets."""
    if voices is None:
        variants = espeak_variants()
        voices = [v for base in espeak_voices() for v in [base, *(f"{base}+{x}" for x in variants)]]
        voices += [f"piper:{s}" for s in PIPER_SPEEDS]
    voices = list(voices)
    started = time.monotonic()

    def one(voice: str) -> tuple[str, tuple[int, float | None] | None]:
        try:
            samples = speak("Jarvis", voice)
        except Exception:  # a voice that cannot speak here
            return voice, None
        return voice, wake_rate(samples) if active_rms(samples) > 1e-4 else None

    with ThreadPoolExecutor(max_workers=2) as pool:
        measured = dict(pool.map(one, voices))
    rates = {v: None if m is None else m[0] for v, m in measured.items()}
    wakes = [v for v, r in rates.items() if r is not None and r >= WAKES_ON]
    delays = {v: measured[v][1] for v in wakes}
    progress(f"voice scan: {len(wakes)} of {len(voices)} voices wake Porcupine "
             f"({time.monotonic() - started:.0f} s)")
    return {"detector": detector_name(), "alignments": ALIGNMENTS, "wakes_on_threshold": WAKES_ON,
            "rates": rates, "wakes": wakes,
            # how long after the voiced end of "Jarvis" the detector fires, per voice it wakes on (median, ms)
            "detection_ms_after_word": delays,
            "detection_ms_after_word_p50": round(float(np.median(list(delays.values()))), 1) if delays else None,
            "unreliable": [v for v, r in rates.items() if r is not None and 0 < r < WAKES_ON],
            "never": [v for v, r in rates.items() if r == 0],
            "cannot_speak": [v for v, r in rates.items() if r is None],
            "seconds": round(time.monotonic() - started, 1)}


def load_scan(path: str) -> dict[str, Any]:
    """The voice scan saved in a ``jarvis bench false-wakes`` or ``jarvis bench room`` JSON."""
    import json

    from jarvis.errors import BadInput

    try:
        data = json.loads(Path(path).read_text())
        scan = data.get("voice_scan") or data["voices"]["scan"]
        if not scan or not scan["wakes"]:
            raise KeyError("wakes")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BadInput("bad_args", f"--scan {path}: no voice scan in it (write one with "
                                   "jarvis bench false-wakes --json FILE).") from exc
    return scan


# -- text and noise ----------------------------------------------------------------------------------------

def book_sentences() -> tuple[str, list[str]]:
    """(source, sentences) of a long public-domain text without the word "Jarvis"."""
    if shutil.which("bible"):
        lines = "\n".join(subprocess.run(["bible", "-l10000", book], capture_output=True, text=True,
                                        timeout=60).stdout for book in _BIBLE_BOOKS).splitlines()
        # "  12 And they ..." verse lines, without the number; "Genesis 1" chapter headings left out
        text = " ".join(re.sub(r"^\s*\d+\s+", "", line) for line in lines if line.startswith(" "))
        source = "King James Bible (public domain), Debian bible-kjv-text: " + ", ".join(_BIBLE_BOOKS)
    else:
        files = sorted(Path("/usr/share/common-licenses").glob("*"))
        text = " ".join(f.read_text(errors="replace") for f in files if f.is_file())
        source = "licence texts in /usr/share/common-licenses (install Debian bible-kjv for a real book)"
    text = re.sub(r"jarvis", "", text, flags=re.IGNORECASE)
    text = re.sub(r"[^A-Za-z0-9.,;:!?'()\- ]+", " ", text)
    sentences = [s.strip() for s in re.split(r"(?<=[.;:!?])\s+", re.sub(r"\s+", " ", text)) if len(s.split()) > 2]
    return source, sentences


def passages(sentences: list[str], words: int = 40) -> Iterable[str]:
    """Consecutive sentences joined into passages of about ``words`` words."""
    current: list[str] = []
    for sentence in sentences:
        current.append(sentence)
        if sum(len(s.split()) for s in current) >= words:
            yield " ".join(current)
            current = []
    if current:
        yield " ".join(current)


def pink_noise(seconds: float, seed: int = 1) -> np.ndarray:
    """Pink (1/f) noise: a fan or air conditioning, unit RMS."""
    n = int(seconds * RATE)
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.fft.rfftfreq(n, 1 / RATE), 20.0))
    noise = np.fft.irfft(spectrum, n)
    return (noise / np.sqrt(np.mean(noise ** 2))).astype(np.float32)


def babble(seconds: float, sentences: list[str], talkers: int = 6) -> np.ndarray:
    """Six espeak-ng voices reading different sentences at once (a room of people talking), unit RMS."""
    voices = ["en-us+m3", "en-gb+f2", "en-us+f4", "en-gb-x-rp+m5", "en-029+m1", "en-us-nyc+f1"][:talkers]
    n = int(seconds * RATE)
    mix = np.zeros(n, np.float32)
    for t, voice in enumerate(voices):
        track, i = np.zeros(0, np.float32), t * 97
        while track.size < n:
            track = np.concatenate([track, speak(sentences[i % len(sentences)], voice)])
            i += 1
        mix += track[:n]
    return (mix / np.sqrt(np.mean(mix ** 2))).astype(np.float32)


def make_noise(kind: str, seconds: float, sentences: list[str] | None = None) -> np.ndarray:
    if kind == "pink":
        return pink_noise(seconds)
    if kind == "babble":
        return babble(seconds, sentences or book_sentences()[1])
    raise ValueError(f"unknown noise {kind!r}: pink or babble")


def add_noise(speech: np.ndarray, noise: np.ndarray, snr_db: float, offset: int) -> np.ndarray:
    """``speech`` plus looped ``noise`` (unit RMS) at ``snr_db`` below the speech's active level."""
    idx = (offset + np.arange(speech.size)) % noise.size
    return speech + noise[idx] * (10 ** (ACTIVE_DBFS / 20) / 10 ** (snr_db / 20))


# -- the run -----------------------------------------------------------------------------------------------

def bench(minutes: float = 60.0, noises: tuple[str, ...] = ("pink", "babble"), snr_db: float = 10.0,
          voices: list[str] | None = None, scan: dict | None = None,
          progress: Callable[[str], None] = print) -> dict[str, Any]:
    from jarvis.config import ListenSettings

    load_before = os.getloadavg()
    source, sentences = book_sentences()
    if voices is None and scan is None:
        scan = scan_voices(progress=progress)
    voices = voices or scan["wakes"]
    if not voices:
        raise RuntimeError("no voice wakes Porcupine: nothing to read the text with")
    noise = {kind: make_noise(kind, 60.0, sentences[5000:]) for kind in noises}
    conditions = ["clean", *(f"{kind} {snr_db:g} dB SNR" for kind in noises)]
    detectors = {c: detector() for c in conditions}
    fired: dict[str, list] = {c: [] for c in conditions}
    # With Jarvis's phased detector, one plain Porcupine hears the same audio too: how much the phases add.
    singles = {c: _single() for c in conditions} if _phases() > 1 else {}
    single_fired = {c: 0 for c in singles}
    per_voice: dict[str, float] = {}
    target_s, total_s, offset = minutes * 60, 0.0, 0
    gap = np.zeros(int(0.5 * RATE), np.float32)
    started = time.monotonic()
    texts = passages(sentences)
    # Two threads synthesise (espeak-ng runs as a process; Piper's onnxruntime leaves the GIL) while the
    # detectors run here on what is ready.
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending: list = []
        i = 0
        while total_s < target_s:
            while len(pending) < 4:
                voice = voices[i % len(voices)]
                text = next(texts, None)
                if text is None:
                    break
                pending.append((voice, text, pool.submit(speak, text, voice)))
                i += 1
            if not pending:
                break
            voice, text, future = pending.pop(0)
            audio = np.concatenate([future.result(), gap])
            for condition, porcupine in detectors.items():
                kind = condition.split()[0]
                heard = audio if condition == "clean" else add_noise(audio, noise[kind], snr_db, offset)
                for frame in detections(porcupine, heard):
                    fired[condition].append({"at_s": round(total_s + frame * FRAME / RATE, 2), "voice": voice,
                                             "in_passage_s": round(frame * FRAME / RATE, 2), "text": text})
                if condition in singles:
                    single_fired[condition] += len(detections(singles[condition], heard))
            offset += audio.size
            total_s += audio.size / RATE
            per_voice[voice] = per_voice.get(voice, 0.0) + audio.size / RATE
            if i % 50 == 0:
                progress(f"{total_s / 60:.1f} of {minutes:g} min of speech; false wakes so far "
                         + ", ".join(f"{c}: {len(f)}" for c, f in fired.items()))
    for porcupine in [*detectors.values(), *singles.values()]:
        porcupine.delete()
    hours = total_s / 3600
    results = {c: {"false_wakes": len(f), "per_hour": round(len(f) / hours, 3) if hours else None, "wakes": f}
               for c, f in fired.items()}
    for c, n in single_fired.items():
        results[c]["one_plain_porcupine"] = {"false_wakes": n, "per_hour": round(n / hours, 3) if hours else None}
    all_wakes = sum(len(f) for f in fired.values())
    return {
        "benchmark": "false-wakes", "hardware": hardware(),
        "method": "speech fed straight to the wake-word detector as Jarvis configures it (keyword 'jarvis', "
                  "listen.wake_sensitivity, 512-sample int16 frames), faster than real time; not through the "
                  "audio server, RealtimeSTT or the voice loop",
        "detector": detector_name(),
        "sensitivity": ListenSettings().wake_sensitivity, "text": source,
        "voices": len(voices), "seconds_per_voice": {v: round(s, 1) for v, s in per_voice.items()},
        "audio_minutes": round(total_s / 60, 1), "conditions": conditions, "snr_db": snr_db,
        "detector_hours": round(hours * len(conditions), 2), "results": results,
        "false_wakes_per_hour": round(all_wakes / (hours * len(conditions)), 3) if hours else None,
        "target": {"goal_per_hour": 0.1, "met": bool(hours and all_wakes / (hours * len(conditions)) <= 0.1)},
        "wall_s": round(time.monotonic() - started, 1), "load_average": {"start": load_before, "end": os.getloadavg()},
        "voice_scan": scan,
        "versions": versions(("pvporcupine", "piper-tts")), "command": command(), "date": date(),
    }


def add_arguments(parser) -> None:
    parser.add_argument("--minutes", type=float, default=60.0, help="minutes of speech (at least 60 for a result)")
    parser.add_argument("--snr", type=float, default=10.0, help="background noise level, dB below the speech")
    parser.add_argument("--voices", metavar="V,V", help="voices instead of all that wake Porcupine "
                                                        "(espeak-ng names, piper:<length_scale>)")
    parser.add_argument("--scan", metavar="FILE.json", help="take the voice scan from an earlier false-wakes or "
                                                            "room result instead of scanning (minutes)")
    parser.add_argument("--json", metavar="FILE", help="write the result as JSON")


def main(args, settings) -> int:
    from jarvis.errors import BadInput

    if args.minutes <= 0:
        raise BadInput("bad_args", "--minutes must be positive.")
    voices = [v.strip() for v in args.voices.split(",")] if args.voices else None
    scan = load_scan(args.scan) if args.scan else None
    result = bench(args.minutes, snr_db=args.snr, voices=voices, scan=scan,
                   progress=lambda line: print(line, file=sys.stderr))
    print(f"False wakes: {result['audio_minutes']} min of speech x {len(result['conditions'])} conditions "
          f"({result['detector_hours']} detector hours) on {result['hardware']}")
    for condition, r in result["results"].items():
        single = r.get("one_plain_porcupine")
        print(f"  {condition:24} {r['false_wakes']:3d} false wakes, {r['per_hour']} per hour"
              + (f" (one plain Porcupine: {single['false_wakes']}, {single['per_hour']} per hour)" if single else ""))
    print(f"  overall {result['false_wakes_per_hour']} per hour (goal <= 0.1: "
          f"{'met' if result['target']['met'] else 'NOT met'})")
    if args.json:
        write_json(args.json, result)
    return 0
