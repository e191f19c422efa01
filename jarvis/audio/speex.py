"""Speex's linear echo canceller (MDF) from the system's libspeexdsp, through ctypes.

Used only for the wake-word stream (see ``jarvis.audio.echo``): it removes less echo than WebRTC's AEC3 (~15 dB
against 30+), but it has no residual-echo suppressor, so a person speaking over Jarvis comes through whole;
AEC3's suppressor gates most of that speech away and Porcupine then misses "Jarvis" (measured in
benchmarks/results/aec-compare-cpu.json). Debian/Ubuntu: ``libspeexdsp1``; macOS: ``brew install speexdsp``.

While Jarvis has been silent for longer than the filter's tail, the filter has nothing to subtract and Speex's
output is its input through its DC notch: that notch, run here with scipy (~0.01 ms a frame), stands in for the
library (~0.09 ms a frame), and the listener idles cheaper. It is checked against the library when made (to the
rounding, or the library runs every frame).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import math

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
        self._silent_frames = 0                                   # frames since the far end last sounded
        self._history_frames = math.ceil(rate * tail_ms / 1000 / frame) + 1   # the filter's far-end memory
        self._notch = DcNotch(rate) if DcNotch.matches(self._lib, frame, tail_ms, rate) else None
        self.frames_without_library = 0

    def process(self, mic: np.ndarray, far: np.ndarray) -> np.ndarray:
        mic = np.ascontiguousarray(mic, np.int16)
        far = np.ascontiguousarray(far, np.int16)
        self._silent_frames = 0 if far.any() else self._silent_frames + 1
        if self._notch is not None:
            notched = self._notch(mic)   # every frame, so its memory is the library's when it stands in
            if self._silent_frames > self._history_frames:
                self.frames_without_library += 1
                return notched
        self._lib.speex_echo_cancellation(self._state, mic.ctypes.data_as(_I16), far.ctypes.data_as(_I16),
                                          self._out.ctypes.data_as(_I16))
        return self._out.copy()

    def close(self) -> None:
        if self._state:
            self._lib.speex_echo_state_destroy(self._state)
            self._state = None

    def __del__(self) -> None:
        self.close()


class DcNotch:
    """Speex's DC notch (``filter_dc_notch16``, floating-point build) on int16 frames, rounded as Speex rounds:
    ``H(z) = r (1 - 2 z^-1 + z^-2) / (1 - 2 r z^-1 + (r^2 + 0.7 (1 - r)^2) z^-2)``, r by the sampling rate."""

    def __init__(self, rate: int):
        from scipy.signal import lfilter

        radius = 0.9 if rate < 12000 else 0.982 if rate < 24000 else 0.992
        self._b = np.array([radius, -2 * radius, radius])
        self._a = np.array([1.0, -2 * radius, radius * radius + 0.7 * (1 - radius) ** 2])
        self._lfilter = lfilter
        self._memory = np.zeros(2)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        out, self._memory = self._lfilter(self._b, self._a, frame.astype(np.float64), zi=self._memory)
        return np.clip(np.floor(out + 0.5), -32768, 32767).astype(np.int16)

    @classmethod
    def matches(cls, lib: ctypes.CDLL, frame: int, tail_ms: int, rate: int) -> bool:
        """Whether this library's output with a silent far end is this notch's, within one step of rounding (a
        fixed-point build, or another version, may differ: then the library runs every frame)."""
        try:
            notch = cls(rate)
        except ImportError:
            return False
        state = lib.speex_echo_state_init(frame, rate * tail_ms // 1000)
        if not state:
            return False
        try:
            value = ctypes.c_int(rate)
            lib.speex_echo_ctl(state, _SET_SAMPLING_RATE, ctypes.byref(value))
            rng = np.random.default_rng(0)
            far, out = np.zeros(frame, np.int16), np.zeros(frame, np.int16)
            for _ in range(8):
                mic = (rng.standard_normal(frame) * 3000 + 500).astype(np.int16)
                lib.speex_echo_cancellation(state, mic.ctypes.data_as(_I16), far.ctypes.data_as(_I16),
                                            out.ctypes.data_as(_I16))
                if np.abs(out.astype(np.int32) - notch(mic)).max() > 1:
                    return False
            return True
        finally:
            lib.speex_echo_state_destroy(state)
