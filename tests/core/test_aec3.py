"""AEC3 called with prepared requests gives exactly what livekit's own per-call methods give."""
import numpy as np
import pytest

from jarvis.audio.aec3 import Aec3, _PreparedCalls
from jarvis.audio.echo import FRAME, RATE, load_processor
from tests.room_sim import room_echo


def _room() -> tuple[np.ndarray, np.ndarray]:
    """An echo of a noisy "voice" at -6 dB, 30 ms late, with a person speaking over it for a second."""
    rng = np.random.default_rng(3)
    far = (rng.normal(0, 0.1, 3 * RATE) * np.sin(np.arange(3 * RATE) / RATE * 2 * np.pi * 3) ** 2).astype(np.float32)
    mic = room_echo(far, 0.03, -6.0)[:len(far)].astype(np.float32)
    mic[RATE:2 * RATE] += (0.2 * np.sin(np.arange(RATE) / RATE * 2 * np.pi * 220)).astype(np.float32)
    return (np.clip(far * 32768, -32768, 32767).astype(np.int16), np.clip(mic * 32768, -32768, 32767).astype(np.int16))


def _livekit_public(far: np.ndarray, mic: np.ndarray) -> np.ndarray:
    """As the echo canceller called AEC3 before: livekit's methods, the delay hint before every frame."""
    rtc, apm = load_processor()
    out = []
    for i in range(0, len(mic), FRAME):
        apm.process_reverse_stream(rtc.AudioFrame(far[i:i + FRAME].tobytes(), RATE, 1, FRAME))
        near = rtc.AudioFrame(mic[i:i + FRAME].tobytes(), RATE, 1, FRAME)
        apm.set_stream_delay_ms(60)
        apm.process_stream(near)
        out.append(np.frombuffer(near.data, np.int16).copy())
    return np.concatenate(out)


@pytest.mark.parametrize("prepared", [True, False])
def test_the_same_samples_as_livekits_own_methods(prepared):
    far, mic = _room()
    aec = Aec3(*load_processor(), RATE, FRAME, delay_ms=60)
    assert (aec._call is not None) is True  # this livekit's internals are the ones the prepared calls expect
    if not prepared:
        aec._call = None
    ours = np.concatenate([aec.process(mic[i:i + FRAME], far[i:i + FRAME]) for i in range(0, len(mic), FRAME)])
    theirs = _livekit_public(far, mic)
    assert np.array_equal(ours, theirs)
    kept = np.sum(ours[:RATE].astype(float) ** 2) / np.sum(mic[:RATE].astype(float) ** 2)
    assert kept < 0.1   # it does cancel the echo (the first second: echo only)


def test_a_failed_request_raises_with_livekits_reason():
    class UnknownModule:
        class _ffi_handle:
            handle = 987654321

    calls = _PreparedCalls(UnknownModule(), bytearray(2 * FRAME), bytearray(2 * FRAME), RATE)
    with pytest.raises(RuntimeError, match="apm_process_stream"):
        calls.stream()
