"""`jarvis bench aec` on a tiny signal: real speech (espeak-ng here, Piper in the slow test), real cancellers,
Porcupine and Whisper; no mocks.

Only the structure and one physical fact are asserted (WebRTC AEC3 removes a plain echo); the figures of the
comparison are measured by the full run (benchmarks/results/aec-compare-cpu.json), never asserted here.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from jarvis.bench import aec

SHORT = aec.FAR_SENTENCES[1:2]      # one sentence: about 6 s of far-end speech
SIMPLE = aec.Condition("simple_30ms_0dB", delay_ms=30, gain_db=0.0, reverb=False)


def test_room_helpers_shift_and_clip():
    x = np.arange(1, 6, dtype=np.float32)
    assert aec.shift(x, 2).tolist() == [0, 0, 1, 2, 3]
    assert aec.shift(x, -2).tolist() == [3, 4, 5, 0, 0]
    pcm, clipped = aec.to_int16(np.array([0.5, 1.5, -2.0], np.float32))
    assert pcm.dtype == np.int16 and clipped == 2 and pcm[1] == 32767 and pcm[2] == -32768
    assert abs(aec.active_rms(aec.to_level(np.full(1600, 0.5, np.float32), -20.0)) - 0.1) < 1e-6


def test_every_canceller_is_known_or_says_why_not():
    assert aec.probe("none") is None
    assert aec.probe("livekit") is None     # a runtime requirement (requirements.txt)
    for lib in aec.LIBRARIES:
        why = aec.probe(lib)
        assert why is None or isinstance(why, str)


def test_tiny_run_livekit_cancels_a_plain_echo(tmp_path):
    out = tmp_path / "aec.json"
    libraries = [lib for lib in aec.LIBRARIES if aec.probe(lib) is None]
    result = aec.run(out, libraries=libraries, conditions=[SIMPLE], sentences=SHORT, near_in=(0,),
                     single_talk=False, stt=False, self_sentence=None, wake_alignments=(0,),
                     far_voice="en-us+m3")   # espeak-ng: no onnxruntime start-up in a fast test
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert result["benchmark"] == "aec" and "cores available" in result["hardware"]
    assert result["versions"]["livekit"] != "not installed"
    assert [c["name"] for c in result["conditions"]] == [SIMPLE.name]
    rows = result["results"][SIMPLE.name]
    assert set(rows) == set(libraries) and {"livekit", "none"} <= set(rows)
    for row in rows.values():
        assert {"erle_db", "convergence_s", "erle_windows_db", "double_talk_near_gain_db", "wake",
                "cpu_per_frame"} <= set(row)
        assert row["cpu_per_frame"]["wall"]["n"] == row["cpu_per_frame"]["thread_cpu"]["n"] > 300
        assert row["wake"]["double_talk_tries"] == 1
    assert abs(rows["none"]["erle_db"]) < 0.5                  # the baseline removes nothing
    assert rows["livekit"]["erle_db"] > 10                      # AEC3 on a plain echo: clearly positive
    assert set(result["summary"]) == set(libraries)


@pytest.mark.slow
def test_full_metrics_with_whisper_on_one_room():
    cond = aec.CONDITIONS[0]
    result = aec.run(None, libraries=["livekit", "none"], conditions=[cond], sentences=aec.FAR_SENTENCES[:5],
                     near_in=(4,), single_talk=True, stt=True, self_sentence=2, wake_alignments=(0, 256))
    rows = result["results"][cond.name]
    for row in rows.values():
        stt = row["stt"]
        assert len(stt["transcripts"]) == 2 and isinstance(stt["self_words"], int)
        assert row["wake"]["single_talk_tries"] == 2 and row["wake"]["double_talk_tries"] == 2
    assert rows["livekit"]["stt"]["single_talk_correct"] == 1   # the person alone: heard through the canceller
    assert rows["livekit"]["wake"]["single_talk_heard"] >= 1
    assert "livekit" in aec.format_text(result)
