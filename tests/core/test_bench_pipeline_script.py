"""`jarvis bench pipeline`'s script and its reading of a turn, without the audio server: commands said with a pause
mid-sentence, and a turn cut off in that pause counted as one (real espeak-ng speech, events as the loop emits)."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from jarvis import events
from jarvis.bench import pipeline
from jarvis.bench.pipeline import RATE, build_script, voiced_bounds


@pytest.fixture(scope="module")
def script(tmp_path_factory):
    return build_script(tmp_path_factory.mktemp("script"), 9, llm_every=5, distractor_every=0, pause_every=3)


def test_every_third_command_is_said_with_a_pause_in_the_middle(script):
    assert [t.pause_s for t in script] == [0, 0, 0.3, 0, 0, 0.45, 0, 0, 0.6]
    for turn in script:
        body = turn.samples[int((turn.wake_end_s + 0.3) * RATE):]
        win = RATE // 100
        quiet = [(i + 1) * win for i in range(len(body) // win) if (body[i * win:(i + 1) * win] ** 2).mean() ** 0.5
                 <= pipeline.VOICED_RMS]
        start, end = voiced_bounds(body)
        inner = [q for q in quiet if start * RATE < q < end * RATE]
        longest = _longest_run(inner, win) / RATE
        if turn.pause_s:
            assert turn.pause_s - 0.02 <= longest <= turn.pause_s + 0.15, (turn.text, turn.pause_s, longest)
        else:
            assert longest < 0.25, (turn.text, longest)


@pytest.mark.slow
def test_a_piper_voice_pauses_inside_one_sentence_at_the_word_break():
    """Piper says the whole command; the silence goes in where its phoneme times put the break after the first
    words: Whisper hears exactly those words before the pause and the whole command with it."""
    from jarvis.config import ListenSettings
    from jarvis.listen.stt import Transcriber

    whisper = Transcriber(ListenSettings())
    for text, voice in (("what is the time", "piper@1.15"), ("tell me the time", "piper")):
        said = pipeline.said_with_pause(text, voice, 0.6)
        win = RATE // 100
        rms = np.sqrt((said[: len(said) // win * win].reshape(-1, win) ** 2).mean(axis=1))
        quiet = np.flatnonzero(rms <= pipeline.VOICED_RMS)
        runs = np.split(quiet, np.flatnonzero(np.diff(quiet) != 1) + 1)
        pause = max((r for r in runs if r[0] > 0 and r[-1] < len(rms) - 1), key=len)
        assert 0.58 <= len(pause) * win / RATE <= 0.7, (text, len(pause))
        head = said[: pause[0] * win]
        words = lambda clip: " ".join(whisper.transcribe(clip).lower().strip(" .?!,").replace(",", "").split())  # noqa: E731
        assert words(head) == pipeline.PAUSED_COMMANDS[text][0], (text, words(head))
        assert words(said) == text, (text, words(said))
    assert pipeline.pause_made_by(pipeline.VOICE_SETS["piper"]).startswith("one sentence")
    assert pipeline.pause_made_by(pipeline.VOICE_SETS["espeak"]).startswith("two parts")


def _longest_run(ends: list[int], step: int) -> int:
    best = run = 0
    for a, b in zip([None] + ends, ends):
        run = run + step if a is not None and b - a == step else step
        best = max(best, run)
    return best


def _figures(turn, speech_end_at: float, heard: float | None = None):
    """The loop's events for ``turn`` as arriving at t=100 s; the speech ends at ``speech_end_at``."""
    said = turn.last_voiced_s - turn.first_voiced_s
    evs = [events.Wake(t=100.5, turn=1), events.SpeechStart(t=100.6, turn=1),
           events.VadSilence(t=speech_end_at - 0.2, turn=1),
           events.EndOfTurn(finished=True, probability=0.9, after_ms=90, wait_s=0.1, t=speech_end_at - 0.1,
                           turn=1),
           events.SpeechEnd(t=speech_end_at, turn=1), events.Transcript(text=turn.text, t=speech_end_at + 0.1, turn=1),
           events.Speaker(name=turn.speaker, score=0.8, t=speech_end_at + 0.12, turn=1),
           events.Reply(text="It is noon.", t=speech_end_at + 0.13, turn=1),
           events.TtsFirstChunk(engine="piper", t=speech_end_at + 0.2, turn=1),
           events.PlaybackStart(t=speech_end_at + 0.25, turn=1)]
    tap = SimpleNamespace(first=np.float64(100.0), last=np.float64(100.0 + said))  # as the real tap's numpy sums
    loop = SimpleNamespace(capture=SimpleNamespace(latency_s=0.0), player=SimpleNamespace(latency_s=0.0))
    return pipeline._turn_figures(turn, evs, tap, loop, heard), 100.0 + said


def test_a_command_that_ended_in_its_pause_is_a_false_cut_off(script):
    paused = script[2]
    figures, last = _figures(paused, speech_end_at=100.0 + 1.2)  # inside the pause, before the rest was said
    assert figures["cut_off"] and figures["pause_s"] == 0.3
    figures, last = _figures(paused, speech_end_at=last + 0.3)
    assert not figures["cut_off"]
    assert figures["end_of_turn_decision"] == 100.0 and figures["endpointing"] == 300.0
    assert figures["end_of_turn"] == [{"finished": True, "probability": 0.9, "after_ms": 90, "heard": "",
                                       "wait_s": 0.1}]
    json.dumps(figures)  # the result file takes it as it is


def test_voice_to_voice_ends_at_the_replys_first_voiced_sample_heard(script):
    """Voice to voice runs to the first voiced sample of the reply as heard; the first block of the reply plus the
    output latency (the measure before 2026-12-07) and the silence between the two are kept beside it."""
    turn = script[0]
    said = turn.last_voiced_s - turn.first_voiced_s
    evs_figures, last = _figures(turn, speech_end_at=100.0 + said + 0.2)
    assert evs_figures["voice_to_voice"] is None   # no voiced sample heard: not measured
    played = 100.0 + said + 0.2 + 0.25             # PlaybackStart of _figures, latency 0
    figures = _figures(turn, speech_end_at=100.0 + said + 0.2, heard=played + 0.04)[0]
    assert figures["voice_to_voice_first_block"] == pytest.approx(450.0, abs=0.2)
    assert figures["reply_lead_in"] == pytest.approx(40.0, abs=0.2)
    assert figures["voice_to_voice"] == pytest.approx(490.0, abs=0.2)


def test_the_output_tap_finds_the_first_voiced_sample_and_keeps_the_tap_before_it():
    seen = []
    player = SimpleNamespace(on_output=lambda block, rate, heard_at, underflow: seen.append(heard_at))
    heard = pipeline.AudibleOutput()
    heard.install(player)
    rate, silence = 48000, np.zeros(960, np.float32)
    player.on_output(silence, rate, 10.0, False)
    assert heard.first is None
    quiet_then_voice = np.concatenate([np.full(480, 1e-4, np.float32), 0.1 * np.ones(480, np.float32)])
    player.on_output(quiet_then_voice, rate, 10.02, False)
    assert heard.first == pytest.approx(10.02 + 480 / rate)
    player.on_output(0.1 * np.ones(960, np.float32), rate, 10.04, False)
    assert heard.first == pytest.approx(10.03) and seen == [10.0, 10.02, 10.04]   # the first one stays
    heard.reset()
    assert heard.first is None


def test_the_piper_voices_are_four_speakers_speaker_id_tells_apart(tmp_path):
    """``--voices piper``: Piper's joe and three speed-perturbed copies of it (natural prosody) are enrolled and
    identified as four people by the real resemblyzer and Jarvis's identifier, as the benchmark does."""
    from jarvis.speakers import Identifier, SpeakerEncoder, SpeakerStore, enroll_from_wavs

    encoder = SpeakerEncoder()
    encoder.load()
    store = SpeakerStore(tmp_path / "speakers")
    voices = pipeline.VOICE_SETS["piper"]
    try:
        for name, voice in voices.items():
            clips = [pipeline.write_wav(tmp_path / f"{name}{i}.wav", pipeline.espeak(line, voice, None))
                     for i, line in enumerate(pipeline.ENROLL_LINES)]
            enroll_from_wavs(name, [str(c) for c in clips], store, encoder)
        identifier = Identifier(store, encoder)
        for name, voice in voices.items():
            said = pipeline.espeak("Jarvis, what day is it?", voice, None)
            assert identifier.identify(said).name == name, name
    finally:
        encoder.close()


def test_rss_growth_is_counted_after_the_warm_turns_with_and_without_the_llms_states():
    rss = [1000.0 + 5 * min(i, 10) + 0.5 * max(i - 10, 0) for i in range(31)]   # fast first, then 0.5 MB a turn
    states = [None] + [0.4 * i for i in range(1, 31)]                         # of which 0.4 are LLM states
    growth = pipeline._growth(rss, states)
    assert growth["warm_turns"] == pipeline.WARM_TURNS == 10
    assert growth["growth_per_turn_after_warm_turns"] == pytest.approx(0.5)
    assert growth["growth_per_turn_less_llm_states"] == pytest.approx(0.1)
    assert growth["fitted_per_turn_after_warm_turns"] == pytest.approx(0.5)
    assert growth["fitted_per_turn_less_llm_states"] == pytest.approx(0.1)
    assert pipeline._growth(rss[:20], states[:20]) == {}                      # too short to say
    assert "growth_per_turn_less_llm_states" not in pipeline._growth(rss, [None] * 31)


def _bench_like_script(turns: int) -> list:
    """The benchmark's rota: four speakers in turn, every fifth turn a question for the LLM."""
    names = ["alice", "carol", "fiona", "joe"]
    return [pipeline.Turn(names[i % 4], "", Path("x.wav"), np.zeros(1, np.float32), 0, 0, 0, llm=i % 5 == 4)
            for i in range(turns)]


def test_the_steady_window_starts_once_every_conversation_forgot_and_spans_whole_forgetting_cycles():
    # Each speaker asks every 20 turns (alice first at turn 5, joe at 20); with 6 remembered pairs a conversation
    # forgets its oldest half at the 7th question (joe's at turn 140), then every 4th: a cycle of 80 turns.
    assert pipeline._steady_window(_bench_like_script(300), 6) == (140, 160)
    assert pipeline._steady_window(_bench_like_script(299), 6) == (140, 80)
    assert pipeline._steady_window(_bench_like_script(200), 6) is None           # not one whole cycle after
    assert pipeline._steady_window(_bench_like_script(100), 6) is None           # conversations still filling
    assert pipeline._steady_window(_bench_like_script(300), 0) is None           # nothing remembered
    assert pipeline._steady_window(_bench_like_script(300), 2) == (60, 240)     # forgets at every 2nd question


def test_a_sawtooth_of_kept_states_over_whole_cycles_is_no_growth_and_a_trend_under_it_is_measured():
    window = pipeline._steady_window(_bench_like_script(300), 6)
    saw = [float(i % 80) / 8 for i in range(301)]                      # rises 10 MB, drops at once, every 80 turns
    rss = [1000.0 + 0.05 * i + s for i, s in enumerate(saw)]           # a real 0.05 MB a turn under it
    growth = pipeline._steady_growth(rss, saw, window)
    assert (growth["from_turn"], growth["turns"]) == (140, 160)
    assert growth["growth_per_turn"] == pytest.approx(0.05)
    assert growth["llm_states_per_turn"] == pytest.approx(0.0)
    part = rss[140:241]                                                # 100 turns, not whole cycles: phase
    assert abs((part[-1] - part[0]) / 100 - 0.05) > 0.05
    assert pipeline._steady_growth(rss, saw, None) == {}
    assert "llm_states_per_turn" not in pipeline._steady_growth(rss, [None] * 301, window)


def test_the_fitted_growth_is_moved_less_than_the_end_to_end_one_by_a_step_at_the_last_turn():
    rss = [1000.0] * 110 + [1020.0]          # flat, then one 20 MB step at the very end
    growth = pipeline._growth(rss, [None] * 111)
    assert growth["growth_per_turn_after_warm_turns"] == pytest.approx(0.2)
    assert 0 < growth["fitted_per_turn_after_warm_turns"] < 0.02
    assert "fitted_per_turn_less_llm_states" not in growth
