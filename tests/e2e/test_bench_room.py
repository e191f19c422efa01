"""`jarvis bench room --quick` works end to end: one command and one barge-in chain (with its follow-up) at
-18 dB echo and 20 dB SNR, through the real loop on its own private audio server. Shape and consistency of the
result only: no timing thresholds here (those are the benchmark's targets)."""
from __future__ import annotations

import json

import pytest

from tests.core.test_cli_bad_input import jarvis

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_bench_room_quick_writes_consistent_json_and_a_chart(tmp_path):
    out, chart = tmp_path / "room.json", tmp_path / "room.png"
    result = jarvis("bench", "room", "--quick", "--json", str(out), "--plot", str(chart), timeout=300,
                    env_extra={"TMPDIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert not list(tmp_path.glob("jarvis-*")), "the benchmark left its clips or audio server folder behind"
    data = json.loads(out.read_text())
    assert data["benchmark"] == "room" and "cores available" in data["hardware"]
    assert [(c["echo_db"], c["snr_db"]) for c in data["conditions"]] == [(-18.0, 20.0)]
    path = data["room"]["echo_paths"]["-18 dB"]
    assert path["gain_db"] == -18.0 and path["measured"]["delay_ms"] is not None
    turns = data["conditions"][0]["turns"]
    assert [t["kind"] for t in turns] == ["command", "barge_in"]
    chain = turns[1]
    assert {"outcome", "story_woke", "story_intent"} <= set(chain)
    if "woke" in chain:
        assert {"cut", "cut_ms", "success"} <= set(chain)
    if chain.get("cut"):  # a follow-up is asked once the barge-in's answer was given
        assert {"answered", "right", "transcript", "reply"} <= set(chain["follow_up"])
    for kind in ("overall", "by_echo", "by_snr", "by_condition"):
        assert data["summary"][kind], kind
    o = data["summary"]["overall"]
    barged = "woke" in chain  # the barge-in clip is played once the story is being answered
    assert o["barge_ins"] == 1 and o["follow_ups"] == int("follow_up" in chain)
    assert o["intent_turns"] == 1 + barged + o["follow_ups"]                 # command, barge-in, follow-up
    assert o["wake_clips"] == 2 + barged and 0 <= o["wake_misses"] <= o["wake_clips"]  # command, story, barge-in
    assert 0 <= o["barge_in_success"] <= o["barge_ins_valid"] <= o["barge_ins"]
    assert 0 <= o["follow_ups_answered"] <= o["follow_ups"]
    assert o["intent_right"] <= o["intent_answered"] <= o["intent_turns"]
    assert o["barge_in_success"] <= int(bool(chain.get("success")))
    assert o["self_transcripts"] == data["conditions"][0]["self_transcripts"]
    assert data["summary"]["by_echo"]["echo -18 dB"] == o and data["summary"]["by_snr"]["20 dB SNR"] == o
    assert set(data["targets"]) >= {"barge_in_echo -18 dB", "follow_ups_echo -18 dB", "intent_accuracy_20 dB SNR"}
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Room benchmark" in result.stdout
