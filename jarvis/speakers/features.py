"""resemblyzer 0.1.4's audio front end in plain numpy (+ webrtcvad), for 16 kHz input only.

resemblyzer's own ``audio`` module pulls in librosa -> numba/llvmlite and scipy, whose JIT costs
seconds on first use. These functions reproduce ``resemblyzer.audio`` (``preprocess_wav``,
``wav_to_mel_spectrogram``) with librosa 0.11's defaults, operation for operation, so enrolled
voice signatures stay valid. ``tests/core/test_speaker_features.py`` checks them against the real
packages.
"""
from __future__ import annotations

import numpy as np
import webrtcvad

SAMPLE_RATE = 16000
INT16_MAX = 2 ** 15 - 1
TARGET_DBFS = -30            # resemblyzer hparams.audio_norm_target_dBFS
VAD_WINDOW_MS = 30           # vad_window_length
VAD_AVERAGE_WIDTH = 8        # vad_moving_average_width
VAD_MAX_SILENCE = 6          # vad_max_silence_length (frames)
N_FFT = 400                  # 25 ms window
HOP = 160                    # 10 ms step
N_MELS = 40


def preprocess(wav: np.ndarray) -> np.ndarray:
    """``resemblyzer.preprocess_wav(wav, source_sr=16000)``: raise quiet audio to -30 dBFS, then
    shorten silences (resampling 16 kHz -> 16 kHz is a no-op in librosa)."""
    return trim_long_silences(normalize_volume(wav, TARGET_DBFS, increase_only=True))


def normalize_volume(wav: np.ndarray, target_dbfs: float, increase_only: bool = False,
                     decrease_only: bool = False) -> np.ndarray:
    if increase_only and decrease_only:
        raise ValueError("Both increase only and decrease only are set")
    rms = np.sqrt(np.mean((wav * INT16_MAX) ** 2))
    wave_dbfs = 20 * np.log10(rms / INT16_MAX)
    change = target_dbfs - wave_dbfs
    if change < 0 and increase_only or change > 0 and decrease_only:
        return wav
    return wav * (10 ** (change / 20))


def trim_long_silences(wav: np.ndarray) -> np.ndarray:
    """Keep voiced 30 ms windows plus up to 6 windows of silence on either side of them."""
    window = VAD_WINDOW_MS * SAMPLE_RATE // 1000
    wav = wav[:len(wav) - len(wav) % window]
    pcm = np.round(wav * INT16_MAX).astype(np.int16).tobytes()   # == struct.pack("%dh", ...)
    vad = webrtcvad.Vad(mode=3)
    flags = np.array([vad.is_speech(pcm[start * 2:(start + window) * 2], sample_rate=SAMPLE_RATE)
                      for start in range(0, len(wav), window)])
    mask = np.round(_moving_average(flags, VAD_AVERAGE_WIDTH)).astype(bool)
    mask = _dilate(mask, VAD_MAX_SILENCE + 1)
    return wav[np.repeat(mask, window)]


def _moving_average(array: np.ndarray, width: int) -> np.ndarray:
    padded = np.concatenate((np.zeros((width - 1) // 2), array, np.zeros(width // 2)))
    ret = np.cumsum(padded, dtype=float)
    ret[width:] = ret[width:] - ret[:-width]
    return ret[width - 1:] / width


def _dilate(mask: np.ndarray, size: int) -> np.ndarray:
    """``scipy.ndimage.binary_dilation(mask, np.ones(size))`` for odd ``size`` (zero border)."""
    if mask.size == 0:
        return mask
    half = size // 2
    padded = np.pad(mask, half)
    return np.lib.stride_tricks.sliding_window_view(padded, size).any(axis=1)


def mel_spectrogram(wav: np.ndarray) -> np.ndarray:
    """``resemblyzer.wav_to_mel_spectrogram``: power mel spectrogram as float32 (frames, 40).

    Same as ``librosa.feature.melspectrogram(y=wav, sr=16000, n_fft=400, hop_length=160,
    n_mels=40)``: centred frames with zero padding, periodic Hann window, |rfft|^2, Slaney mel
    filters with Slaney (area) normalisation.
    """
    wav = np.asarray(wav)
    padded = np.pad(wav, N_FFT // 2, mode="constant")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP].T   # (n_fft, t)
    # librosa fills a Fortran-ordered complex matrix of the input's complex type (complex64 for
    # float32), so the float64 FFT is rounded to it before the magnitude is taken
    cdtype = np.complex64 if wav.dtype == np.float32 else np.complex128
    stft = np.zeros((1 + N_FFT // 2, frames.shape[1]), dtype=cdtype, order="F")
    stft[:] = np.fft.rfft(_hann(N_FFT)[:, None] * frames, axis=-2)
    power = np.abs(stft) ** 2.0
    mel = np.einsum("...ft,mf->...mt", power, _mel_filters(), optimize=True)
    return mel.astype(np.float32).T


def _hann(n: int) -> np.ndarray:
    """``scipy.signal.get_window("hann", n, fftbins=True)``, computed the way scipy does."""
    fac = np.linspace(-np.pi, np.pi, n + 1, dtype=np.float64)
    w = np.zeros(n + 1, dtype=np.float64)
    for k, a in enumerate((0.5, 0.5)):
        w += a * np.cos(k * fac)
    return w[:-1]


def _hz_to_mel(hz):
    """Slaney mel scale: linear below 1 kHz, logarithmic above (librosa, htk=False)."""
    hz = np.asanyarray(hz)
    f_sp = 200.0 / 3
    mels = hz / f_sp
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    if hz.ndim:
        log = hz >= min_log_hz
        mels[log] = min_log_mel + np.log(hz[log] / min_log_hz) / logstep
    elif hz >= min_log_hz:
        mels = min_log_mel + np.log(hz / min_log_hz) / logstep
    return mels


def _mel_to_hz(mels):
    mels = np.asanyarray(mels)
    f_sp = 200.0 / 3
    freqs = f_sp * mels
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    log = mels >= min_log_mel
    freqs[log] = min_log_hz * np.exp(logstep * (mels[log] - min_log_mel))
    return freqs


_MEL_BASIS: np.ndarray | None = None


def _mel_filters() -> np.ndarray:
    """``librosa.filters.mel(sr=16000, n_fft=400, n_mels=40)`` (fmin 0, fmax 8 kHz, float32)."""
    global _MEL_BASIS
    if _MEL_BASIS is None:
        weights = np.zeros((N_MELS, 1 + N_FFT // 2), dtype=np.float32)
        fftfreqs = np.fft.rfftfreq(n=N_FFT, d=1.0 / SAMPLE_RATE)
        mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(SAMPLE_RATE / 2.0), N_MELS + 2))
        fdiff = np.diff(mel_f)
        ramps = np.subtract.outer(mel_f, fftfreqs)
        for i in range(N_MELS):
            lower = -ramps[i] / fdiff[i]
            upper = ramps[i + 2] / fdiff[i + 1]
            weights[i] = np.maximum(0, np.minimum(lower, upper))
        weights *= (2.0 / (mel_f[2:N_MELS + 2] - mel_f[:N_MELS]))[:, np.newaxis]
        _MEL_BASIS = weights
    return _MEL_BASIS
