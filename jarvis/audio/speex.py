"""Speex's linear echo canceller (MDF) from the system's libspeexdsp, through ctypes.

Used only for the wake-word stream (see ``jarvis.audio.echo``): it removes less echo than WebRTC's AEC3 (~15 dB
against 30+), but it has no residual-echo suppressor, so a person speaking over Jarvis comes through whole;
AEC3's suppressor gates most of that speech away and Porcupine then misses "Jarvis" (measured in
benchmarks/results/aec-compare-cpu.json). Debian/Ubuntu: ``libspeexdsp1``; macOS: ``brew install speexdsp``.
"""
from __future__ import annotations

import ctypes
import ctypes.util

import numpy as np

from jarvis.errors import NotAvailable

_SET_SAMPLING_RATE = 24  # SPEEX_ECHO_SET_SAMPLING_RATE
_I16 = ctypes.POINTER(ctypes.c_int16)
_lib = None


def library() -> ctypes.CDLL:
    """libspeexdsp with the prototypes used here; ``NotAvailable`` when the system does not have it."""
    global _lib
    if _lib is None:
        name = ctypes.util.find_library("speexdsp") or "libspeexdsp.so.1"
        try:
            lib = ctypes.CDLL(name)
        except OSError as exc:
            raise NotAvailable("speexdsp_missing", "libspeexdsp is not installed, so the wake word is harder to "
                                                   "hear over Jarvis's voice (Debian/Ubuntu: sudo apt install "
                                                   "libspeexdsp1).") from exc
        lib.speex_echo_state_init.restype = ctypes.c_void_p
        lib.speex_echo_state_init.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.speex_echo_state_destroy.argtypes = [ctypes.c_void_p]
        lib.speex_echo_ctl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
        lib.speex_echo_cancellation.argtypes = [ctypes.c_void_p, _I16, _I16, _I16]
        _lib = lib
    return _lib


class SpeexEcho:
    """``process(mic, far)``: int16 frames of ``frame`` samples each; returns the microphone less the echo."""

    def __init__(self, frame: int = 160, tail_ms: int = 256, rate: int = 16000):
        self._lib = library()
        self.frame = frame
        self._state = self._lib.speex_echo_state_init(frame, rate * tail_ms // 1000)
        if not self._state:
            raise NotAvailable("speexdsp_failed", "libspeexdsp could not create an echo canceller.")
        value = ctypes.c_int(rate)
        self._lib.speex_echo_ctl(self._state, _SET_SAMPLING_RATE, ctypes.byref(value))
        self._out = np.zeros(frame, np.int16)

    def process(self, mic: np.ndarray, far: np.ndarray) -> np.ndarray:
        mic = np.ascontiguousarray(mic, np.int16)
        far = np.ascontiguousarray(far, np.int16)
        self._lib.speex_echo_cancellation(self._state, mic.ctypes.data_as(_I16), far.ctypes.data_as(_I16),
                                          self._out.ctypes.data_as(_I16))
        return self._out.copy()

    def close(self) -> None:
        if self._state:
            self._lib.speex_echo_state_destroy(self._state)
            self._state = None

    def __del__(self) -> None:
        self.close()
