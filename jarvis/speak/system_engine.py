"""The system voice: espeak-ng rendered into memory, sentence by sentence.

Why pyttsx3's ctypes binding (``pyttsx3.drivers._espeak``) and not ``pyttsx3.init("espeak")`` with
``save_to_file`` + ``runAndWait``: that driver (pyttsx3 2.99) works from worker threads, but it
``print()``s "Audio saved to …" on stdout from espeak's callback for every file, which corrupts
``jarvis listen --events jsonl`` (and ``redirect_stdout`` would be process-wide, hiding other threads'
output); it writes a fixed 22050 Hz header whatever the voice's rate; ``runAndWait`` polls every
10 ms, can wait forever if espeak never reports the end, and leaves the engine "already running" for
good if anything raises inside it; and it needs a temporary file for audio that is already in memory.
The binding instead runs ``espeak_Synth`` + ``espeak_Synchronize`` on the calling thread, collects the
samples in our callback (returning 1 aborts synthesis when ``cancel`` is set) and takes the rate
from ``espeak_Initialize``. It still needs the ``libespeak-ng1`` shared library.

espeak-ng is one global synthesiser per process (one init, one callback, one current voice), so
every render holds ``_LOCK`` and sets voice, rate and callback itself; the lock is never held across
a ``yield``. Do not also use ``pyttsx3.init("espeak")`` in the same process: we replace its callback.
"""
from __future__ import annotations

import threading
from typing import Iterator

import numpy as np

from jarvis.errors import BadInput, NotAvailable
from jarvis.speak.base import TtsEngine
from jarvis.speak.sentences import split_sentences

DEFAULT_VOICE = "en"  # espeak-ng's own default voice
_LOCK = threading.Lock()
_state: dict = {"rate": 0}  # sample rate once espeak-ng is initialised (once per process)


def _binding():
    """pyttsx3's espeak-ng ctypes binding, initialised once for synchronous in-memory output."""
    try:
        from pyttsx3.drivers import _espeak
    except ImportError as exc:
        raise NotAvailable("tts_engine_missing", "pyttsx3 is not installed: pip install pyttsx3") from exc
    except Exception as exc:  # the binding raises RuntimeError when no libespeak-ng is found
        raise NotAvailable("tts_engine_missing",
                           "The system voice needs espeak-ng: install libespeak-ng1 "
                           "(sudo apt install libespeak-ng1).") from exc
    if not _state["rate"]:
        from pyttsx3.drivers import espeak as driver_module  # already initialised by pyttsx3's driver?
        if getattr(driver_module.EspeakDriver, "_moduleInitialized", False):
            rate = _espeak.dll.espeak_ng_GetSampleRate()
        else:
            rate = _espeak.Initialize(_espeak.AUDIO_OUTPUT_SYNCHRONOUS, 200, None, 0)
            driver_module.EspeakDriver._moduleInitialized = True  # espeak-ng must not init twice
        if rate <= 0:
            raise NotAvailable("tts_engine_missing",
                               "espeak-ng could not start (is espeak-ng-data installed?).")
        _state["rate"] = rate
    return _espeak


class SystemEngine(TtsEngine):
    """espeak-ng voice ``voice`` (empty = espeak-ng default) at ``rate`` words per minute."""

    placement = "cpu (espeak-ng)"
    name = "system"

    def __init__(self, voice: str = "", rate: int = 175) -> None:
        self.voice = voice or DEFAULT_VOICE
        self.rate = int(rate)
        self.sample_rate = 22050
        self._es = None

    def load(self) -> None:
        with _LOCK:
            es = _binding()
            if es.SetVoiceByName(self.voice.encode("utf-8")) != 0:
                raise BadInput("unknown_voice", f"espeak-ng has no voice '{self.voice}'. "
                                                f"Pick one from `espeak-ng --voices`, or leave it empty.")
            self.sample_rate = _state["rate"]
            self._es = es

    def synthesize(self, text: str, cancel: threading.Event | None = None) -> Iterator[np.ndarray]:
        if self._es is None:
            self.load()
        for sentence in split_sentences(text):
            if cancel is not None and cancel.is_set():
                return
            audio = self._render(sentence, cancel)
            if cancel is not None and cancel.is_set():
                return
            if audio.size:
                yield audio

    def _render(self, sentence: str, cancel: threading.Event | None) -> np.ndarray:
        es, parts = self._es, []

        def on_audio(wav, numsamples, events) -> int:
            if cancel is not None and cancel.is_set():
                return 1  # abort synthesis
            if numsamples > 0:
                parts.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
            return 0

        with _LOCK:
            es.SetSynthCallback(on_audio)
            if es.SetVoiceByName(self.voice.encode("utf-8")) != 0:
                raise RuntimeError(f"espeak-ng lost voice '{self.voice}'")
            es.SetParameter(es.RATE, self.rate, 0)
            status = es.Synth(sentence, flags=es.CHARS_UTF8 | es.ENDPAUSE)
            es.Synchronize()
        if status != 0:
            raise RuntimeError(f"espeak_Synth failed with status {status}")
        if not parts:
            return np.zeros(0, dtype=np.float32)
        return (np.concatenate(parts).astype(np.float32) / 32768.0).astype(np.float32)

    def close(self) -> None:
        self._es = None
