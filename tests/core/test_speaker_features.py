"""jarvis.speakers.features / encoder against the real resemblyzer + librosa (installed for tests).

Speaker ID must give the same embeddings as resemblyzer (enrolled voice signatures stay valid)
without importing librosa, numba, llvmlite or scipy. Clips are espeak-ng speech at its native
22050 Hz, resampled to 16 kHz float32 by jarvis, at several loudnesses and with long silences.
"""
from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from jarvis.audio.resample import resample
from jarvis.speakers import SpeakerEncoder, features
from jarvis.speakers.encoder import MIN_COVERAGE, PARTIAL_RATE, _partial_slices

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("librosa", "numba", "llvmlite", "scipy", "sklearn", "resemblyzer")
SENTENCES = {
    "f3": ("en-us+f3", "Jarvis, what is the weather going to be like tomorrow in the mountains?"),
    "m3": ("en-us+m3", "Please remind me to call my sister at six, and then to water the plants."),
    "m7": ("en-us+m7", "Turn it up."),
}


@pytest.fixture(scope="module")
def real():
    """The reference implementation: resemblyzer (which imports librosa and scipy)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import resemblyzer
    return resemblyzer


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, np.ndarray]:
    """16 kHz float32 speech: plain, quiet (raised to -30 dBFS), loud (left as is), with a 2 s
    pause in the middle and silence around it (trimmed by the VAD), and choppy: gated into
    bursts and gaps of 1-11 VAD windows, so the VAD smoothing and dilation decide what is kept."""
    d = tmp_path_factory.mktemp("speech")
    out = {}
    for name, (voice, text) in SENTENCES.items():
        path = d / f"{name}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True)
        wav, rate = sf.read(path, dtype="float32")
        assert rate != 16000   # espeak-ng speaks at 22050 Hz: the resampler makes non-16-bit values
        out[name] = resample(wav, rate, 16000)
    speech = out["f3"]
    out["quiet"] = (speech * 0.1).astype(np.float32)
    out["loud"] = (speech * (0.95 / np.abs(speech).max())).astype(np.float32)
    gap, edge = np.zeros(32000, np.float32), np.zeros(12345, np.float32)
    out["pauses"] = np.concatenate([edge, out["m3"], gap, speech, edge])
    runs = np.random.default_rng(7).integers(1, 12, 400) * 480
    gate = np.repeat(np.arange(400) % 2 == 0, runs)[:len(out["m3"])]
    out["choppy"] = (out["m3"] * gate).astype(np.float32)
    return out


def test_clips_cover_both_volume_branches(clips):
    def dbfs(x):
        return 20 * np.log10(np.sqrt(np.mean((x * 32767.0) ** 2)) / 32767)
    assert dbfs(clips["quiet"]) < -30 < dbfs(clips["loud"])


@pytest.mark.parametrize("name", ["f3", "m3", "m7", "quiet", "loud", "pauses", "choppy"])
def test_preprocess_matches_resemblyzer(real, clips, name):
    wav = clips[name]
    expected = real.preprocess_wav(wav, source_sr=16000)
    got = features.preprocess(wav)
    assert got.dtype == expected.dtype == np.float32
    assert got.shape == expected.shape           # same VAD windows kept
    assert np.allclose(got, expected, rtol=1e-6, atol=1e-9)
    if name == "pauses":                         # the long silences really were shortened
        assert got.size < wav.size - 32000


@pytest.mark.parametrize("name", ["f3", "m3", "m7", "quiet", "loud", "pauses", "choppy"])
def test_mel_frames_match_librosa(real, clips, name):
    for wav in (real.preprocess_wav(clips[name], source_sr=16000), clips[name][:12345]):
        expected = real.wav_to_mel_spectrogram(wav)
        got = features.mel_spectrogram(wav)
        assert got.dtype == np.float32 and got.shape == expected.shape
        assert got.shape == (1 + len(wav) // 160, 40)
        assert np.allclose(got, expected, rtol=1e-5, atol=1e-7 * float(expected.max()))


def test_window_and_mel_filters_match_scipy_and_librosa(real):
    import librosa
    import scipy.signal
    assert np.allclose(features._hann(400), scipy.signal.get_window("hann", 400, fftbins=True),
                       rtol=0, atol=1e-15)
    expected = librosa.filters.mel(sr=16000, n_fft=400, n_mels=40)
    assert features._mel_filters().dtype == expected.dtype
    assert np.allclose(features._mel_filters(), expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize("n", [0, 1, 3, 6, 7, 8, 13, 40, 200])
def test_dilation_matches_scipy(real, n):
    import scipy.ndimage
    rng = np.random.default_rng(n)
    for p in (0.05, 0.3, 0.8):
        mask = rng.random(n) < p
        expected = scipy.ndimage.binary_dilation(mask, np.ones(7))
        assert np.array_equal(features._dilate(mask, 7), expected)


def test_partial_slices_match_resemblyzer(real):
    for n in [0, 1, 159, 160, 8000, 16000, 25599, 25600, 25601, 30000, 31000, 47999, 48000,
              123457, 16000 * 30]:
        expected = real.VoiceEncoder.compute_partial_slices(n, PARTIAL_RATE, MIN_COVERAGE)
        assert _partial_slices(n, PARTIAL_RATE, MIN_COVERAGE) == expected, n


@pytest.mark.slow
def test_embeddings_match_resemblyzer(real, clips):
    ours = SpeakerEncoder()
    theirs = real.VoiceEncoder(device="cpu", verbose=False)
    embeddings = {}
    for name, wav in clips.items():
        got = ours.embed(wav)
        expected = theirs.embed_utterance(real.preprocess_wav(wav, source_sr=16000))
        assert float(got @ expected) > 0.9999, name
        embeddings[name] = got
    # different voices stay apart (the comparison above is not trivially true)
    assert float(embeddings["f3"] @ embeddings["m3"]) < 0.95


@pytest.mark.slow
def test_speaker_id_imports_no_librosa_numba_or_scipy(clips, tmp_path):
    """A fresh interpreter loads the encoder, embeds speech, and never imports the heavy stack."""
    path = tmp_path / "speech.wav"
    sf.write(path, clips["m3"], 16000, subtype="FLOAT")
    script = f"""
import json, sys
import soundfile as sf
from jarvis.speakers import SpeakerEncoder
enc = SpeakerEncoder()
enc.warmup()
emb = enc.embed(sf.read({str(path)!r}, dtype="float32")[0])
print(json.dumps({{"shape": list(emb.shape),
                  "loaded": sorted(m for m in sys.modules if m.split(".")[0] in {FORBIDDEN!r})}}))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["shape"] == [256]
    assert result["loaded"] == []
