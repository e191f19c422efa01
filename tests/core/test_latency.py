"""Per-stage turn latency from event timestamps (jarvis.ui.latency is Qt-free)."""
from __future__ import annotations

import subprocess
import sys

from jarvis import events
from jarvis.ui.latency import HEADLINE, STAGES, TurnTracker, turn_latencies

LABELS = ["listening", "silence wait", "speech-to-text", "speaker ID", "answer", "first audio", HEADLINE]


def a_turn(t0: float, wake: bool = True) -> list[events.Event]:
    opening = [events.Wake(t=t0), events.SpeechStart(t=t0 + 0.120)] if wake else [events.SpeechStart(t=t0)]
    return opening + [
        events.SpeechEnd(t=t0 + 1.500),
        events.Transcript(text="what time is it", t=t0 + 1.730),
        events.Speaker(name="alice", score=0.83, t=t0 + 1.775),
        events.Reply(text="It's 3 PM.", t=t0 + 1.781),
        events.TtsFirstChunk(engine="piper", t=t0 + 1.912),
        events.PlaybackStart(t=t0 + 1.940),
        events.PlaybackEnd(interrupted=False, t=t0 + 3.100),
    ]


def test_stages_in_order_with_exact_milliseconds():
    assert [label for label, _a, _b in STAGES] == LABELS
    assert turn_latencies(a_turn(1000.0)) == [
        ("listening", 1500), ("silence wait", 0), ("speech-to-text", 230), ("speaker ID", 45), ("answer", 6),
        ("first audio", 131), (HEADLINE, 440)]


def test_push_to_talk_turn_starts_at_speech_start():
    figures = dict(turn_latencies(a_turn(50.0, wake=False)))
    assert figures["listening"] == 1500
    assert figures[HEADLINE] == 440


def test_only_the_last_turn_counts_and_stages_not_reached_are_none():
    stream = a_turn(10.0) + [events.Wake(t=20.0), events.SpeechStart(t=20.1), events.SpeechEnd(t=20.9),
                             events.Transcript(text="stop", t=21.05)]
    assert turn_latencies(stream) == [
        ("listening", 900), ("silence wait", 0), ("speech-to-text", 150), ("speaker ID", None), ("answer", None),
        ("first audio", None), (HEADLINE, None)]


def test_a_command_after_a_finished_turn_without_wake_opens_a_new_turn():
    tracker = TurnTracker()
    opened = [tracker.feed(e) for e in a_turn(10.0)]
    assert opened == [True] + [False] * 8  # the speech_start right after the wake belongs to it
    assert tracker.feed(events.SpeechStart(t=30.0)) is True
    assert tracker.feed(events.SpeechEnd(t=30.4)) is False
    assert dict(tracker.latencies())["listening"] == 400


def test_barge_in_wake_opens_a_new_turn_and_other_events_are_ignored():
    tracker = TurnTracker()
    for e in a_turn(10.0)[:-1]:
        tracker.feed(e)
    assert tracker.feed(events.Degraded(engine="csm", reason="out of memory", t=12.5)) is False
    assert tracker.feed(events.Error(code="turn_failed", message="x", t=12.6)) is False
    assert tracker.feed(events.Wake(t=12.7)) is True
    assert tracker.latencies() == [(label, None) for label in LABELS]


def test_only_the_first_event_of_a_kind_counts_within_a_turn():
    stream = a_turn(0.0)[:-1] + [events.TtsFirstChunk(engine="piper", t=2.5), events.PlaybackStart(t=2.6)]
    figures = dict(turn_latencies(stream))
    assert figures["first audio"] == 131 and figures[HEADLINE] == 440


def test_empty_stream_and_no_qt():
    assert turn_latencies([]) == [(label, None) for label in LABELS]
    code = ("import sys, jarvis.ui.latency; "
            "sys.exit(1 if [m for m in sys.modules if m.startswith(('PySide6', 'qasync'))] else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_an_llm_answer_starts_at_its_first_token_not_at_its_reply():
    """The LLM's reply event comes when it has been spoken; its answer starts at the first token."""
    turn = a_turn(1000.0)
    reply = turn.index(next(e for e in turn if e.type == "reply"))
    turn[reply] = events.LlmFirstToken(backend="local", seconds=0.06, t=1000.0 + 1.835)
    turn.append(events.Reply(text="The sky is blue because ...", t=1000.0 + 3.000))
    latencies = dict(turn_latencies(turn))
    assert latencies["answer"] == 60 and latencies["first audio"] == 77


def test_end_of_speech_is_when_the_vad_heard_the_voice_stop():
    """With early transcription the transcript can come soon after speech_end; the wait for silence before it
    is part of the turn's latency, so the headline starts at the last vad_silence before speech_end."""
    turn = a_turn(1000.0)
    end = turn.index(next(e for e in turn if e.type == "speech_end"))
    turn[end:end] = [events.VadSilence(t=1000.0 + 0.700), events.VadSilence(t=1000.0 + 1.100)]  # a pause, then the end
    turn.append(events.VadSilence(t=1000.0 + 2.000))  # during the reply: not this command's end
    latencies = dict(turn_latencies(turn))
    assert latencies["listening"] == 1100 - 120 + 120 and latencies["silence wait"] == 400
    assert latencies[HEADLINE] == 840
