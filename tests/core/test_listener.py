"""The listener (real RealtimeSTT, Silero VAD, Porcupine and tiny.en) fed espeak-ng speech at the pace of a microphone.

RealtimeSTT times silences with the wall clock, so the audio is fed in real time, as the capture thread does.
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import soundfile

from jarvis import events
from jarvis.config import ListenSettings
from jarvis.listen.listener import Listener
from jarvis.listen.stt import cpu_threads
from tests.speech import espeak_wav

BLOCK = 512  # 32 ms, as the capture thread feeds it


def _pcm(path) -> np.ndarray:
    samples, _ = soundfile.read(str(path), dtype="int16")
    return samples


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * 16000), np.int16)


@pytest.fixture(scope="module")
def listener():
    bus = events.EventBus()
    listener = Listener(ListenSettings(wake_word_timeout=4.0), bus)
    listener.load()
    listener.bus_events = []
    bus.subscribe(listener.bus_events.append)
    yield listener
    listener.close()


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    folder = tmp_path_factory.mktemp("listener")
    return {"wake": _pcm(espeak_wav("Jarvis.", folder / "wake.wav")),
            "command": _pcm(espeak_wav("What time is it?", folder / "command.wav"))}


def _feed_in_real_time(listener: Listener, audio: np.ndarray) -> float:
    """Feed ``audio`` block by block at its own pace; returns when (events.now()) the voiced part ended."""
    start = time.monotonic()
    for i in range(0, len(audio), BLOCK):
        listener.feed(audio[i:i + BLOCK])
        delay = start + (i + BLOCK) / 16000 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    return events.now()


def _utterance_of(listener: Listener, audio: np.ndarray, tail_s: float):
    listener.bus_events.clear()
    ended = {}
    feeder = threading.Thread(target=lambda: ended.setdefault("t", _feed_in_real_time(listener, audio)))
    voiced_end = len(audio) / 16000 - tail_s
    feeder.start()
    t0 = events.now()
    utterance = listener.next_utterance()
    feeder.join()
    return utterance, utterance.t_speech_end - (t0 + voiced_end)


def test_follow_up_that_starts_with_the_wake_word_and_a_pause_keeps_the_command(listener, speech):
    # In a follow-up window any speech starts a recording. "Jarvis." and then a second's pause used to end that
    # recording: the command after it was lost and "Jarvis." alone was ignored as empty.
    listener.listen_without_wake_word(5.0, "follow_up")
    audio = np.concatenate((_silence(0.3), speech["wake"], _silence(1.0), speech["command"], _silence(2.5)))
    utterance, end_delay = _utterance_of(listener, audio, tail_s=2.5)
    assert "time" in utterance.text.lower(), utterance
    assert any(e.type == "wake" for e in listener.bus_events)
    # Once the command was spoken the usual end-of-speech silence applied again, not the wait for a command.
    assert end_delay < listener.settings.wake_word_timeout - 1.0, end_delay
    assert listener._recorder.post_speech_silence_duration == listener._pause_limit()
    # One turn: the speech opened it, the wake word inside it did not open another.
    assert _turns_of(listener) == {utterance.turn} and utterance.turn is not None


def test_commands_reach_jarvis_engine_one_at_a_time(listener):
    # RealtimeSTT's default batch of 16 sends a command through faster-whisper's batched pipeline, past Jarvis's engine
    # (jarvis.listen.command_engine): until 2026-12-05 the voice loop decoded commands with timestamps and temperature
    # retries, and without the short window, whatever the settings said.
    from jarvis.listen.command_engine import engine_for

    assert listener._recorder.batch_size == 0
    assert listener._recorder.transcription_engine == engine_for(listener.settings.stt_short_window)


def test_the_recording_reaches_back_to_the_start_of_the_wake_word(listener):
    """ "Jarvis." and, after a breath (0.7 s), "What time is it?", by a slow speaker (Piper's joe 1.3x slower, the
    pipeline bench's alice). The recording starts when voice follows the detection (here ~0.6 s after it; through
    the voice loop on 2 cores 0.4-0.5 s even without a pause), so the pre-roll must reach back over the pause and
    the whole word. With 1.2 s it began inside the word: Whisper wrote "...rvis" as "Service,", "I'm nervous," or
    dropped it, and, unsure, ran its full 30 s window too (benchmarks/results/pipeline-cpu-pre-roll.json)."""
    from jarvis.bench.pipeline import espeak as speak, voiced_bounds

    wake, command = speak("Jarvis.", "piper@1.3", None), speak("What time is it?", "piper@1.3", None)
    wake = wake[:int(voiced_bounds(wake)[1] * 16000)]
    command = command[int(voiced_bounds(command)[0] * 16000):]
    audio = np.concatenate((_silence(0.5), _pcm16(wake), _silence(0.7), _pcm16(command), _silence(2.5)))
    utterance, _ = _utterance_of(listener, audio, tail_s=2.5)
    assert utterance.raw_text.lower().startswith("jarvis"), utterance
    assert "time" in utterance.text.lower(), utterance


def _turns_of(listener: Listener) -> set:
    kinds = ("wake", "speech_start", "vad_silence", "speech_end")
    return {e.turn for e in listener.bus_events if e.type in kinds}


def test_follow_up_without_the_wake_word_ends_on_the_usual_silence(listener, speech):
    listener.listen_without_wake_word(5.0, "follow_up")
    audio = np.concatenate((_silence(0.3), speech["command"], _silence(2.5)))
    utterance, end_delay = _utterance_of(listener, audio, tail_s=2.5)
    assert "time" in utterance.text.lower(), utterance
    assert end_delay < listener.settings.wake_word_timeout - 1.0, end_delay
    assert _turns_of(listener) == {utterance.turn} and utterance.turn is not None


def test_a_wake_word_opens_a_turn_that_its_command_and_every_event_share(listener, speech):
    audio = np.concatenate((_silence(0.3), speech["wake"], _silence(0.3), speech["command"], _silence(2.5)))
    first, _ = _utterance_of(listener, audio, tail_s=2.5)
    assert "time" in first.text.lower(), first
    assert [e.type for e in listener.bus_events][:1] == ["wake"]
    assert _turns_of(listener) == {first.turn}
    second, _ = _utterance_of(listener, audio, tail_s=2.5)
    assert _turns_of(listener) == {second.turn} and second.turn > first.turn


def test_a_command_keeps_its_turn_when_the_end_of_speech_is_reported_late(listener, speech):
    # RealtimeSTT queues the recording for text() before it runs the stop callback on its own thread. On a loaded
    # machine the callback ran after the whole transcription (1 e2e run in 5): the reply's events then carried the
    # previous turn's id, and its latency figures the previous turn's end of speech. Made deterministic here by
    # holding the callback back for longer than tiny.en takes to transcribe the command.
    recorder = listener._recorder
    on_stop = recorder.on_recording_stop

    def late_stop():
        time.sleep(0.8)
        on_stop()

    audio = np.concatenate((_silence(0.3), speech["wake"], _silence(0.3), speech["command"], _silence(2.5)))
    recorder.on_recording_stop = late_stop
    try:
        first, _ = _utterance_of(listener, audio, tail_s=2.5)
        second, _ = _utterance_of(listener, audio, tail_s=2.5)
    finally:
        recorder.on_recording_stop = on_stop
    assert "time" in second.text.lower(), second
    assert first.turn is not None and second.turn > first.turn and _turns_of(listener) == {second.turn}
    assert second.t_speech_end == [e.t for e in listener.bus_events if e.type == "speech_end"][-1]


def _silence_wait(listener: Listener) -> float:
    """From the pause that ended the command (the last vad_silence) to its end (speech_end)."""
    end = next(e for e in listener.bus_events if e.type == "speech_end")
    pause = [e for e in listener.bus_events if e.type == "vad_silence" and e.t <= end.t][-1]
    return end.t - pause.t


@pytest.fixture(scope="module")
def quick_listener():
    """As the low-latency preset hears a command: a short Whisper window first (its pass ~0.15-0.3 s here, ~1 s
    when it is unsure and the full window runs too), and a long cap on pauses, so a pause's words always come before
    the cap in these tests."""
    bus = events.EventBus()
    listener = Listener(ListenSettings(wake_word_timeout=4.0, stt_short_window=True, unfinished_silence=2.5), bus)
    listener.load()
    listener.bus_events = []
    bus.subscribe(listener.bus_events.append)
    yield listener
    listener.close()


def _pcm16(audio: np.ndarray) -> np.ndarray:
    return (np.clip(audio, -1, 1) * 32767).astype(np.int16)


def test_a_finished_sentence_ends_the_command_as_soon_as_its_words_are_heard(quick_listener):
    """The model hears Piper's "Jarvis. What time is it?" finished; Whisper's words for the pause (the transcript
    the reply is worked out from) agree: the command ends then, long before the cap on a pause, and the verdict is
    an event of the turn with the words it was checked against. (Piper, not espeak-ng: the model hears espeak-ng's
    flat "What time is it?" as unfinished, probability 0.05.)"""
    from tests.speech import piper_16k

    listener = quick_listener
    # After the wake word: in a follow-up window the first pause keeps the usual silence (a late wake word may
    # still hold the recording, see Listener._decide).
    audio = np.concatenate((_silence(0.3), _pcm16(piper_16k("Jarvis. What time is it?")), _silence(2.5)))
    listener.listen_without_wake_word(5.0, "follow_up")
    utterance, _ = _utterance_of(listener, audio, tail_s=2.5)
    assert "time" in utterance.text.lower(), utterance
    verdicts = [e for e in listener.bus_events if e.type == "end_of_turn"]
    assert verdicts and verdicts[-1].finished and verdicts[-1].turn == utterance.turn, verdicts
    assert "time" in verdicts[-1].heard.lower(), verdicts[-1]
    end = next(e for e in listener.bus_events if e.type == "speech_end")
    pause = [e for e in listener.bus_events if e.type == "vad_silence" and e.t <= end.t][-1]
    # A window's first pause keeps at least the usual end-of-speech silence (Listener._conclude): the command ends
    # at the verdict or at that floor, whichever comes later (the verdict came 0.15-0.25 s into the pause here).
    s = listener.settings
    floor = pause.t + max(s.end_of_turn_silence, s.post_speech_silence)
    assert end.t - max(verdicts[-1].t, floor) < 0.2, "the verdict did not end the command"
    assert _silence_wait(listener) < listener.settings.unfinished_silence, _silence_wait(listener)


def test_whisper_is_asked_on_the_chunk_the_silence_was_heard_on_before_speaker_id_starts(quick_listener):
    """Real RealtimeSTT and its Whisper worker: the pause's request carries exactly the audio the pause began with
    (sent on that chunk, not 32 ms later), and speaker ID on the pause (``on_paused``) starts only after it went out:
    started first, its thread and the model's held the cores and the GIL from the one sending it. On a CPU with
    Whisper on more than one thread it starts once the short pass's encoder is done (at most ``ENCODER_FIRST_S``
    after the request), when the one-thread decoder leaves a core to it."""
    from jarvis.listen import short_window
    from jarvis.listen.listener import ENCODER_FIRST_S
    from tests.speech import piper_16k

    listener = quick_listener
    pipe = listener._recorder.parent_transcription_pipe
    sent, paused, encoded = [], [], []

    def send(request, _send=pipe.send):
        sent.append((time.monotonic(), len(request[0])))
        _send(request)

    def done(_done=short_window.ENCODER.done):
        encoded.append(time.monotonic())
        _done()

    pipe.send = send
    short_window.ENCODER.done = done
    listener.on_paused = lambda audio, turn: paused.append((time.monotonic(), len(audio)))
    try:
        audio = np.concatenate((_silence(0.3), _pcm16(piper_16k("Jarvis. What time is it?")), _silence(2.5)))
        listener.listen_without_wake_word(5.0, "follow_up")
        utterance, _ = _utterance_of(listener, audio, tail_s=2.5)
    finally:
        del pipe.send, short_window.ENCODER.done
        listener.on_paused = None
    assert "time" in utterance.text.lower(), utterance
    assert paused, "speaker ID never started on a pause"
    assert listener._encoder_first == (cpu_threads() > 1)
    for started, samples in paused:
        asked = [at for at, n in sent if n == samples]
        assert asked, f"no Whisper request held the pause's {samples} samples: {[n for _, n in sent]}"
        assert asked[0] <= started, "speaker ID started before Whisper was asked"
        if listener._encoder_first:
            assert any(asked[0] <= at <= started for at in encoded) or started - asked[0] >= ENCODER_FIRST_S, \
                "speaker ID started before Whisper's encoder was done"


def test_a_pause_mid_sentence_does_not_end_the_command_when_the_model_hears_it_unfinished(quick_listener):
    """Piper's sentence stopped after "What is the weather" for 0.6 s (longer than the 0.4 s end-of-speech silence
    that alone would have ended it there), then finished: one command, the whole sentence. The words could end a
    request; the model hears the sentence's unfinished prosody."""
    from tests.speech import cut_mid_sentence, piper_16k

    listener = quick_listener
    assert listener.turn_model is not None, "the end-of-turn model did not load"
    whole = piper_16k("What is the weather like in Paris today?")
    head = cut_mid_sentence(whole, 0.5)
    tail = whole[len(head):]
    pcm = lambda a: (np.clip(a, -1, 1) * 32767).astype(np.int16)  # noqa: E731
    listener.decisions.clear()
    listener.listen_without_wake_word(5.0, "follow_up")
    audio = np.concatenate((_silence(0.3), pcm(head), _silence(0.6), pcm(tail), _silence(2.5)))
    utterance, _ = _utterance_of(listener, audio, tail_s=2.5)
    assert "weather" in utterance.text.lower() and "today" in utterance.text.lower(), utterance
    assert listener.decisions[:1] == [False] and listener.decisions[-1] is True, listener.decisions


def test_words_that_ask_for_more_keep_the_command_open_though_the_voice_sounds_finished(quick_listener):
    """Piper's "Tell me" said on its own sounds finished to the model (p ~0.9); Whisper hears "Tell me." and a
    request does not stop there: the listener waits, and "the time" after the pause is the same command."""
    from tests.speech import piper_16k

    listener = quick_listener
    trim = lambda a: a[: int(np.flatnonzero(np.abs(a) > 0.01)[-1]) + 160]  # noqa: E731 - the voiced part
    head, tail = trim(piper_16k("Tell me")), piper_16k("the time.")
    tail = tail[int(np.flatnonzero(np.abs(tail) > 0.01)[0]):]
    listener.listen_without_wake_word(5.0, "follow_up")
    # A 1.6 s pause: Whisper's words for it come within it even when its short window is unsure of "Tell me" and
    # the full one runs too (~1 s here); the cap on a pause is longer (2.5 s).
    audio = np.concatenate((_silence(0.3), _pcm16(head), _silence(1.6), _pcm16(tail), _silence(3.0)))
    utterance, _ = _utterance_of(listener, audio, tail_s=3.0)
    assert "tell me" in utterance.text.lower() and "time" in utterance.text.lower(), utterance
    first = [e for e in listener.bus_events if e.type == "end_of_turn"][0]
    assert not first.finished and first.heard.lower().rstrip(".?!,").endswith("tell me"), first
    assert first.probability is None or first.probability > 0.5, first   # the model answered, or was not needed
    assert listener.turn_model.probability(np.concatenate((head, np.zeros(1600, np.float32)))) > 0.5, \
        "the model hears this Piper \"Tell me\" finished: the words alone kept the command open"


def test_a_half_command_whisper_finishes_from_its_prompt_keeps_the_command_open(quick_listener):
    """"What time… is it?" cut at the word break: Whisper, primed with the skills' commands, hears the half as
    "What time is it?" and the model may hear it finished; the words the audio holds ("What time", jarvis.listen.heard)
    ask for more, so the command stays open and "is it" after the pause is the same command."""
    from tests.speech import piper_16k, piper_cut_at_word

    listener = quick_listener
    whole, half = piper_cut_at_word("What time is it?", 2)
    tail = whole[len(half):]
    tail = tail[int(np.flatnonzero(np.abs(tail) > 0.01)[0]):]
    audio = np.concatenate((_silence(0.3), _pcm16(piper_16k("Jarvis.")), _silence(0.3), _pcm16(half), _silence(1.6),
                            _pcm16(tail), _silence(3.0)))
    pipe = listener._recorder.parent_transcription_pipe
    reports, report, full_passes = [], pipe.report, pipe.full_passes
    pipe.report = lambda *answer: (reports.append(answer), report(*answer))
    try:
        utterance, _ = _utterance_of(listener, audio, tail_s=3.0)
    finally:
        pipe.report = report
    assert "what time is it" in utterance.text.lower(), utterance
    first = [e for e in listener.bus_events if e.type == "end_of_turn"][0]
    assert not first.finished and first.heard.lower().rstrip(".?!,").endswith("what time"), first
    # The pause's 30 s pass was put off (the person went on) and never needed: the last pause's answer was whole.
    assert reports[0][2] is True and reports[0][0] == reports[0][1], reports
    assert reports[-1][2] is False and pipe.full_passes == full_passes, (reports, pipe.full_passes)


def test_a_half_command_that_ends_the_recording_gets_the_put_off_30_s_pass(quick_listener):
    """"Jarvis, what time…" and nothing more: the pause's short pass was unsure and its 30 s pass put off; the cap
    ends the recording in that pause, so the 30 s pass runs then and its transcript is the command's."""
    from tests.speech import piper_16k, piper_cut_at_word

    listener = quick_listener
    _, half = piper_cut_at_word("What time is it?", 2)
    audio = np.concatenate((_silence(0.3), _pcm16(piper_16k("Jarvis.")), _silence(0.3), _pcm16(half), _silence(3.5)))
    pipe = listener._recorder.parent_transcription_pipe
    full_passes = pipe.full_passes
    utterance, _ = _utterance_of(listener, audio, tail_s=3.5)
    assert pipe.full_passes == full_passes + 1, "the put-off 30 s pass did not run"
    assert "what time" in utterance.text.lower(), utterance


def test_the_words_check_judges_the_words_the_audio_held(tmp_path):
    """The pause's verdict when the model heard it finished and Whisper finished the half command from its prompt:
    the words the audio held ("Jarvis, what time") keep the command open; Whisper's whole text would have ended it."""
    from types import SimpleNamespace

    from jarvis.listen.turn_end import PauseVerdict

    bus = events.EventBus()
    seen = []
    bus.subscribe(seen.append)
    listener = Listener(ListenSettings(end_of_turn_silence=0.1, unfinished_silence=0.7), bus)
    for heard, finished, wait in (("Jarvis, what time", False, 0.7), (None, True, 0.1)):
        recorder = SimpleNamespace(is_recording=True, speech_end_silence_start=100.0 + wait, frames=[],
                                   post_speech_silence_duration=0.7, ensure_sentence_starting_uppercase=True,
                                   ensure_sentence_ends_with_period=True)
        listener._recorder, listener._verdict = recorder, PauseVerdict(use_words=True)
        assert listener._verdict.model(recorder.speech_end_silence_start, 0.9) is None   # the words decide
        listener._on_early_transcript("Jarvis, what time is it?", heard)
        verdict = [e for e in seen if e.type == "end_of_turn"][-1]
        assert (verdict.finished, recorder.post_speech_silence_duration) == (finished, wait), (heard, verdict)
        assert verdict.heard == (heard or "Jarvis, what time is it?")


def test_a_known_command_the_model_doubts_waits_the_usual_silence_not_the_cap():
    """The model heard "What time is it?" unfinished (p 0.05, as it did Piper voices' finished commands): the words
    are a command Jarvis knows, so the recording ends after post_speech_silence (0.3 s), not unfinished_silence."""
    from types import SimpleNamespace

    from jarvis.listen.turn_end import PauseVerdict

    bus = events.EventBus()
    seen = []
    bus.subscribe(seen.append)
    listener = Listener(ListenSettings(end_of_turn_silence=0.1, unfinished_silence=0.7, post_speech_silence=0.3), bus)
    knows = lambda text: text.rstrip("?.").lower() == "jarvis, what time is it"  # noqa: E731
    for raw, wait in (("Jarvis, what time is it?", 0.3), ("Jarvis, why is the sky blue?", 0.7)):
        recorder = SimpleNamespace(is_recording=True, speech_end_silence_start=100.0 + wait, frames=[],
                                   post_speech_silence_duration=0.7, ensure_sentence_starting_uppercase=True,
                                   ensure_sentence_ends_with_period=True)
        listener._recorder, listener._verdict = recorder, PauseVerdict(use_words=True, known=knows)
        assert listener._verdict.model(recorder.speech_end_silence_start, 0.05) is None   # the words decide
        listener._on_early_transcript(raw, raw)
        verdict = [e for e in seen if e.type == "end_of_turn"][-1]
        assert (verdict.finished, verdict.wait_s, recorder.post_speech_silence_duration) == (False, wait, wait), raw


def test_end_of_turn_silence_is_the_silence_alone_as_before(tmp_path):
    """listen.end_of_turn "silence": no model, every pause ends the command after post_speech_silence."""
    bus = events.EventBus()
    silent = Listener(ListenSettings(end_of_turn="silence"), bus)
    silent.load()
    silent.bus_events = []
    bus.subscribe(silent.bus_events.append)
    try:
        assert silent.turn_model is None
        assert silent._recorder.post_speech_silence_duration == silent.settings.post_speech_silence
        silent.listen_without_wake_word(5.0, "follow_up")
        command = _pcm(espeak_wav("What time is it?", tmp_path / "command.wav"))
        utterance, _ = _utterance_of(silent, np.concatenate((_silence(0.3), command, _silence(2.0))), tail_s=2.0)
        assert "time" in utterance.text.lower(), utterance
        assert not [e for e in silent.bus_events if e.type == "end_of_turn"]
        assert _silence_wait(silent) >= silent.settings.post_speech_silence - 0.01, _silence_wait(silent)
    finally:
        silent.close()


def test_a_missing_or_damaged_model_falls_back_to_silence_and_says_so(monkeypatch, tmp_path):
    from jarvis.listen import end_of_turn

    damaged = tmp_path / "smart-turn.onnx"
    damaged.write_bytes(b"\x00not an onnx model" * 100)
    real = end_of_turn._package_file
    for broken in (lambda relative: damaged if relative == end_of_turn.MODEL_FILE else real(relative),
                   lambda relative: real(relative.replace("smart-turn", "nowhere"))):
        monkeypatch.setattr(end_of_turn, "_package_file", broken)
        bus, seen = events.EventBus(), []
        bus.subscribe(seen.append)
        fallback = Listener(ListenSettings(), bus)
        fallback._load_turn_model()
        assert fallback.turn_model is None and fallback._pause_limit() == fallback.settings.post_speech_silence
        (degraded,) = [e for e in seen if e.type == "degraded"]
        assert degraded.engine == "end_of_turn" and "listen.end_of_turn" in degraded.reason
        assert "\n" not in degraded.reason and "0.4 s of silence" in degraded.reason, degraded.reason
