"""Per-stage turn latency from event timestamps and turn ids (jarvis.ui.latency is Qt-free)."""
from __future__ import annotations

import subprocess
import sys

from jarvis import events
from jarvis.ui.latency import HEADLINE, STAGES, TurnTracker, turn_latencies

LABELS = ["listening", "end-of-turn decision", "silence wait", "speech-to-text", "speaker ID", "answer", "first audio", HEADLINE]


def a_turn(t0: float, turn: int = 1, wake: bool = True) -> list[events.Event]:
    opening = [events.Wake(t=t0, turn=turn), events.SpeechStart(t=t0 + 0.120, turn=turn)] if wake else \
        [events.SpeechStart(t=t0, turn=turn)]
    return opening + [
        events.SpeechEnd(t=t0 + 1.500, turn=turn),
        events.Transcript(text="what time is it", t=t0 + 1.730, turn=turn),
        events.Speaker(name="alice", score=0.83, t=t0 + 1.775, turn=turn),
        events.Reply(text="It's 3 PM.", t=t0 + 1.781, turn=turn),
        events.TtsFirstChunk(engine="piper", t=t0 + 1.912, turn=turn),
        events.PlaybackStart(t=t0 + 1.940, turn=turn),
        events.PlaybackEnd(interrupted=False, t=t0 + 3.100, turn=turn),
    ]


def test_stages_in_order_with_exact_milliseconds():
    assert [label for label, _a, _b in STAGES] == LABELS
    assert turn_latencies(a_turn(1000.0)) == [
        ("listening", 1500), ("end-of-turn decision", None), ("silence wait", 0), ("speech-to-text", 230),
        ("speaker ID", 45), ("answer", 6), ("first audio", 131), (HEADLINE, 440)]


def test_push_to_talk_turn_starts_at_speech_start():
    figures = dict(turn_latencies(a_turn(50.0, wake=False)))
    assert figures["listening"] == 1500
    assert figures[HEADLINE] == 440


def test_only_the_last_turn_counts_and_stages_not_reached_are_none():
    stream = a_turn(10.0) + [events.Wake(t=20.0, turn=2), events.SpeechStart(t=20.1, turn=2),
                             events.SpeechEnd(t=20.9, turn=2), events.Transcript(text="stop", t=21.05, turn=2)]
    assert turn_latencies(stream) == [
        ("listening", 900), ("end-of-turn decision", None), ("silence wait", 0), ("speech-to-text", 150),
        ("speaker ID", None), ("answer", None), ("first audio", None), (HEADLINE, None)]


def test_a_new_turn_opens_on_its_id_not_on_a_guess():
    tracker = TurnTracker()
    opened = [tracker.feed(e) for e in a_turn(10.0, turn=4)]
    assert opened == [True] + [False] * 8  # the speech_start right after the wake belongs to it
    assert tracker.feed(events.SpeechStart(t=30.0, turn=5)) is True   # a follow-up: a new turn without a wake word
    assert tracker.feed(events.SpeechEnd(t=30.4, turn=5)) is False
    assert dict(tracker.latencies())["listening"] == 400
    # A wake word inside that follow-up's recording belongs to it (one turn, one id).
    assert tracker.feed(events.Wake(t=30.5, turn=5)) is False


def test_late_events_of_an_interrupted_turn_do_not_spoil_the_next():
    """A barge-in: the next turn opens while the old reply is still being cut; its playback_end, and a follow-up
    window's vad_silence (no turn), used to be taken for the new turn's."""
    tracker = TurnTracker()
    for e in a_turn(10.0, turn=1)[:-1]:
        tracker.feed(e)
    assert tracker.feed(events.Degraded(engine="csm", reason="out of memory", t=12.5, turn=1)) is False
    assert tracker.feed(events.Wake(t=12.7, turn=2)) is True
    assert tracker.feed(events.PlaybackEnd(interrupted=True, t=12.8, turn=1)) is False
    assert tracker.feed(events.TtsFirstChunk(engine="piper", t=12.85, turn=1)) is False
    assert tracker.feed(events.VadSilence(t=12.9)) is False
    assert tracker.times == {"start": 12.7, "wake": 12.7}
    assert tracker.latencies() == [(label, None) for label in LABELS]


def test_events_of_a_turn_never_seen_opening_are_ignored():
    tracker = TurnTracker()
    assert tracker.feed(events.Transcript(text="hi", t=1.0, turn=7)) is False
    assert tracker.feed(events.Reply(text="hello", t=1.1)) is False  # no turn at all
    assert not tracker.started


def test_only_the_first_event_of_a_kind_counts_within_a_turn():
    stream = a_turn(0.0)[:-1] + [events.TtsFirstChunk(engine="piper", t=2.5, turn=1),
                                 events.PlaybackStart(t=2.6, turn=1)]
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
    turn[reply] = events.LlmFirstToken(backend="local", seconds=0.06, t=1000.0 + 1.835, turn=1)
    turn.append(events.Reply(text="The sky is blue because ...", t=1000.0 + 3.000, turn=1))
    latencies = dict(turn_latencies(turn))
    assert latencies["answer"] == 60 and latencies["first audio"] == 77


def test_an_llm_answer_worked_out_ahead_is_no_wait():
    """Its first token came in the last pause, before the transcript (the event is told when the turn adopts it):
    the answer stage is 0, and the first audio counts from when the speaker was known."""
    turn = a_turn(1000.0)
    reply = turn.index(next(e for e in turn if e.type == "reply"))
    turn[reply] = events.LlmFirstToken(backend="local", seconds=0.06, t=1000.0 + 1.400, turn=1)
    latencies = dict(turn_latencies(turn))
    assert latencies["answer"] == 0 and latencies["first audio"] == 137 and latencies[HEADLINE] == 440


def test_end_of_speech_is_when_the_vad_heard_the_voice_stop():
    """With early transcription the transcript can come soon after speech_end; the wait for silence before it
    is part of the turn's latency, so the headline starts at the last vad_silence before speech_end."""
    turn = a_turn(1000.0)
    end = turn.index(next(e for e in turn if e.type == "speech_end"))
    turn[end:end] = [events.VadSilence(t=1000.0 + 0.700, turn=1), events.VadSilence(t=1000.0 + 1.100, turn=1)]
    turn.append(events.VadSilence(t=1000.0 + 2.000, turn=1))  # during the reply: not this command's end
    latencies = dict(turn_latencies(turn))
    assert latencies["listening"] == 1100 - 120 + 120 and latencies["silence wait"] == 400
    assert latencies[HEADLINE] == 840


def test_the_end_of_turn_decision_on_the_last_pause_is_the_one_shown():
    """An unfinished pause's decision, then the voice again, then the pause that ended the command: its decision
    (95 ms into it) counts; the silence wait still runs from that pause to speech_end."""
    turn = a_turn(1000.0)
    end = turn.index(next(e for e in turn if e.type == "speech_end"))
    turn[end:end] = [events.VadSilence(t=1000.700, turn=1),
                     events.EndOfTurn(finished=False, probability=0.1, after_ms=110, t=1000.810, turn=1),
                     events.VadSilence(t=1001.300, turn=1),
                     events.EndOfTurn(finished=True, probability=0.9, after_ms=95, t=1001.395, turn=1)]
    latencies = dict(turn_latencies(turn))
    assert latencies["end-of-turn decision"] == 95 and latencies["silence wait"] == 200
    assert latencies[HEADLINE] == 640
