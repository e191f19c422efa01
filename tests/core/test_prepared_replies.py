"""Answering ahead: while a command's last pause is still being heard, its answer is worked out from the early
transcript (``Brain.ahead``: a skill that only reads, or the LLM, which remembers nothing until its answer is adopted)
and the first sentence synthesized (``TtsChain.prepare``, real Piper), so the reply plays the moment the turn ends."""
from __future__ import annotations

import threading
import time
from datetime import datetime
from types import SimpleNamespace

import numpy as np
import pytest

from jarvis import events
from jarvis.brain import Brain, Turn
from jarvis.config import Settings
from jarvis.listen import early_transcript
from jarvis.loop.turns import TurnTaker
from jarvis.speak.chain import TtsChain
from jarvis.speak.normalize import normalize_for_speech as spoken
from tests.core.test_llm_local import local_model  # noqa: F401 - the real local LLM (a fixture)
from jarvis.speak.piper_engine import PiperEngine

NOON = datetime(2026, 12, 5, 12, 30)


class CountingPiper(PiperEngine):
    """The real Piper engine, counting the sentences it is asked to synthesize."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def synthesize(self, text, cancel=None):
        self.asked.append(text)
        yield from super().synthesize(text, cancel)


@pytest.fixture(scope="module")
def piper():
    engine = CountingPiper()
    engine.load()
    yield engine
    engine.close()


@pytest.fixture
def chain(piper):
    bus = events.EventBus()
    chain = TtsChain([piper], bus)
    chain.load()
    chain.first_chunks = []
    bus.subscribe(lambda e: chain.first_chunks.append(e) if e.type == "tts_first_chunk" else None)
    piper.asked.clear()
    return chain


def _wait_prepared(chain: TtsChain) -> None:
    deadline = time.monotonic() + 10
    while chain._prepared is None and time.monotonic() < deadline:   # started on another thread
        time.sleep(0.005)
    assert chain._prepared is not None, "nothing was prepared"
    assert chain._prepared.done.wait(10), "the preparation never finished"


def test_a_prepared_first_sentence_plays_without_being_synthesized_again(chain, piper):
    assert chain.prepare("It's 12:30 PM. Anything else?")
    _wait_prepared(chain)
    assert piper.asked == [spoken("It's 12:30 PM.")]          # only the first sentence is made ahead
    chunks = list(chain.speak("It's 12:30 PM. Anything else?"))
    assert piper.asked == [spoken("It's 12:30 PM."), "Anything else?"]  # the reply made only the rest
    assert len(chunks) >= 2 and all(rate == piper.sample_rate and chunk.size > 2000 for rate, chunk in chunks)
    assert [e.prepared for e in chain.first_chunks] == [True]
    # Taken once: the same reply again is synthesized as usual.
    list(chain.speak("It's 12:30 PM."))
    assert piper.asked[-1] == spoken("It's 12:30 PM.") and [e.prepared for e in chain.first_chunks] == [True, False]


def test_a_reply_that_starts_otherwise_ignores_what_was_prepared(chain, piper):
    assert chain.prepare("It's 12:30 PM.")
    _wait_prepared(chain)
    list(chain.speak("It's 12:31 PM."))   # the minute turned while the turn ended
    assert piper.asked == [spoken("It's 12:30 PM."), spoken("It's 12:31 PM.")]
    assert [e.prepared for e in chain.first_chunks] == [False]


def test_a_reply_waits_for_a_preparation_still_running_rather_than_start_again(chain, piper):
    assert chain.prepare("Today is Saturday, December 5.")
    chunks = list(chain.speak("Today is Saturday, December 5."))   # at once: the preparation is still running
    assert piper.asked == ["Today is Saturday, December 5."] and len(chunks) >= 1
    assert [e.prepared for e in chain.first_chunks] == [True]


class AtSecondPiece(CountingPiper):
    """The real Piper engine; ``at_second()``, when set, runs before each sentence's second piece."""
    at_second = None

    def synthesize(self, text, cancel=None):
        for n, chunk in enumerate(super().synthesize(text, cancel)):
            if n == 1 and self.at_second is not None:
                self.at_second()
            yield chunk


def test_a_reply_plays_the_first_prepared_piece_while_the_rest_is_being_made(piper):
    """Real Piper pieces, held after the first until the reply has played it (a gate: timing-free)."""
    engine, gate = AtSecondPiece(), threading.Event()
    chain = _chain_of(engine)

    def held():
        assert gate.wait(10), "the reply never played the first piece"

    engine.at_second = held
    assert chain.prepare(LONG_SENTENCE)
    prepared = _first_piece_made(chain)
    reply = chain.speak(LONG_SENTENCE)
    first_rate, first = next(reply)   # the first piece, while the preparation waits at the gate
    assert not prepared.done.is_set() and first_rate == engine.sample_rate and first.size > 2000
    gate.set()
    rest = [chunk for _, chunk in reply]
    assert rest and prepared.done.is_set() and engine.asked == [spoken(LONG_SENTENCE)]   # the same preparation


def test_a_preparation_that_fails_after_its_first_piece_played_ends_that_sentence(piper):
    """Real Piper pieces, then a stand-in failure (Piper itself does not fail here): the start was heard, so the
    sentence is not said again; the next one is."""
    def hiccup():
        raise RuntimeError("onnxruntime hiccup")

    engine = AtSecondPiece()
    chain = _chain_of(engine)
    engine.at_second = hiccup
    assert chain.prepare(LONG_SENTENCE)
    prepared = _first_piece_made(chain)
    assert prepared.done.wait(10) and prepared.failed
    engine.at_second = None
    chunks = list(chain.speak(LONG_SENTENCE + " Anything else?"))
    assert engine.asked == [spoken(LONG_SENTENCE), "Anything else?"] and len(chunks) >= 2
    assert chain.status()[0]["healthy"]


LONG_SENTENCE = "The sky is blue because of a process called atmospheric scattering."   # several Piper pieces


def _chain_of(engine: CountingPiper) -> TtsChain:
    """``engine`` loaded and warmed in a chain of its own, its warm-up's sentences forgotten."""
    engine.load()
    chain = TtsChain([engine], events.EventBus())
    chain.load()
    engine.asked.clear()
    return chain


def _first_piece_made(chain: TtsChain):
    deadline = time.monotonic() + 10
    while (chain._prepared is None or not chain._prepared.chunks) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert chain._prepared is not None and chain._prepared.chunks, "nothing was prepared"
    return chain._prepared


def test_only_an_engine_that_speaks_beside_a_reply_prepares():
    from jarvis.speak.system_engine import SystemEngine

    system = SystemEngine()
    chain = TtsChain([system], events.EventBus())
    try:
        chain.load()
        assert not system.concurrent and not chain.prepare("It's 12:30 PM.")
        assert not TtsChain([CountingPiper()], events.EventBus()).prepare("Hello.")  # not loaded: nothing healthy
        assert not chain.prepare("")
    finally:
        chain.close()


def test_a_failed_preparation_leaves_the_reply_to_synthesize_it(piper):
    """An engine whose first synthesis fails (a stand-in failure: Piper itself does not fail here)."""
    class FailsOnce(CountingPiper):
        failed = False

        def synthesize(self, text, cancel=None):
            if not self.failed:
                self.failed = True
                raise RuntimeError("onnxruntime hiccup")
            yield from super().synthesize(text, cancel)

    engine = FailsOnce()
    engine.load()
    engine.failed = True   # the warm-up synthesizes: fail from the next one
    chain = TtsChain([engine], events.EventBus())
    chain.load()
    engine.failed = False
    assert chain.prepare("It's 12:30 PM.")
    _wait_prepared(chain)
    chunks = list(chain.speak("It's 12:30 PM."))
    assert chunks and all(chunk.size > 2000 for _, chunk in chunks)
    assert chain.status()[0]["healthy"]  # a failure ahead of the turn does not mark the engine down


def test_a_barge_in_stops_a_reply_waiting_for_its_preparation_and_the_preparation(chain):
    long = ("This sentence is long enough that Piper needs a good while to synthesize it, even on a fast machine, "
            "because it goes on and on about nothing in particular until it reaches its very end")
    assert chain.prepare(long + ".")
    prepared, cancel = chain._prepared, threading.Event()
    threading.Timer(0.005, cancel.set).start()
    assert list(chain.speak(long + ".", cancel=cancel)) == []
    assert prepared.cancel.is_set() and prepared.done.wait(10)


# -- the brain, ahead of the turn ---------------------------------------------------------------------

@pytest.mark.parametrize("text, reply", [("What time is it?", "It's 12:30 PM."),
                                         ("what day is it", "Today is Saturday, December 5.")])
def test_ahead_answers_what_only_reads(text, reply):
    brain = Brain(clock=lambda: NOON)
    response = brain.ahead(Turn(text=text))
    assert response.text == reply
    assert brain.last_reply is None   # nothing remembered: "repeat" still repeats the last real answer
    brain.adopt(response)
    assert brain.last_reply is response


@pytest.mark.parametrize("text", ["stop", "who am I", "repeat that", "why is the sky blue", "", "   "])
def test_ahead_leaves_actions_the_speaker_and_a_fallback_that_cannot_wait_to_the_turn(text):
    asked = []
    brain = Brain(clock=lambda: NOON, fallback=lambda turn, context: asked.append(turn))
    assert brain.ahead(Turn(text=text)) is None
    assert asked == [] and brain.last_reply is None


# -- the turn taker ------------------------------------------------------------------------------

def _taker(chain, prepare: bool = True) -> TurnTaker:
    """A turn taker with the real brain and TTS chain; its host is a stand-in holding the chain (the model host
    would load Whisper, Smart Turn and the speaker model, which preparing does not use)."""
    settings = Settings()
    settings.tts.prepare_replies = prepare
    own_voice = SimpleNamespace(heard=lambda text: False)
    from jarvis.speakers.strangers import UnknownVoices

    return TurnTaker(events.EventBus(), SimpleNamespace(tts=chain), Brain(clock=lambda: NOON), None, own_voice,
                     UnknownVoices(0.75, 300), threading.Event(), lambda: settings)


@pytest.mark.parametrize("heard, prepared", [("What time is it.", "It's 12:30 PM."),
                                             ("Why is the sky blue?", None), ("", None), ("Thank you.", None)])
def test_the_early_transcript_prepares_an_answer_that_only_reads(chain, piper, heard, prepared):
    taker = _taker(chain)
    try:
        taker.prepare_early(heard, turn=3)
        taker._prepare_pool.submit(lambda: None).result(10)
        assert piper.asked == ([spoken(prepared)] if prepared else [])
    finally:
        taker.close()


def test_a_skills_answer_is_prepared_without_waiting_for_the_speaker(chain, piper):
    """Speaker ID on the pause's audio is held up (a stand-in identifier that waits): the time's sentence is
    synthesized meanwhile, as it does not depend on who asked."""
    from jarvis.speakers.identify import Match

    release = threading.Event()
    taker = _taker(chain)
    taker.host.identifier = SimpleNamespace(identify=lambda audio: release.wait(30) and Match("unknown", 0.0))
    try:
        taker.prepare_early("What time is it.", 3, np.full(16000, 0.1, np.float32))
        _wait_prepared(chain)
        assert piper.asked == [spoken("It's 12:30 PM.")] and not release.is_set()
    finally:
        release.set()
        taker.close()


def test_speaking_again_drops_what_was_worked_out_for_the_pause(chain):
    taker = _taker(chain)
    try:
        taker.prepare_early("Tell me.", 3)
        ahead = taker._ahead
        taker.went_on()
        assert taker._ahead is None and ahead.cancel.is_set()   # its LLM generation, had it one, stops
        taker.went_on()                                         # nothing to drop: fine
    finally:
        taker.close()


def test_answering_ahead_can_be_turned_off(chain, piper):
    taker = _taker(chain, prepare=False)
    try:
        taker.prepare_early("What time is it.", turn=3)
        taker._prepare_pool.submit(lambda: None).result(10)
        assert piper.asked == [] and chain._prepared is None
    finally:
        taker.close()


# -- which early transcripts are reported --------------------------------------------------------

def test_a_transcript_is_reported_only_while_its_pause_lasts():
    """The rule alone, on a stand-in for RealtimeSTT's recorder state (the listener test below runs the real one)."""
    reported = []
    recorder = SimpleNamespace(is_recording=True, speech_end_silence_start=100.0)
    answers = early_transcript._Answers(recorder, lambda text, heard, provisional: reported.append(text))
    answers.answered(100.0, "What time is it?")      # still in that pause
    answers.answered(0.0, "What time is it?")        # asked once the recording had ended: the final pass
    answers.answered(99.0, "What time")              # an earlier pause: the person went on since
    recorder.is_recording = False
    answers.answered(100.0, "What time is it?")      # the turn ended first: the utterance carries it
    recorder.is_recording = True
    answers.answered(100.0, "")                      # Whisper heard nothing
    assert reported == ["What time is it?"]


@pytest.mark.parametrize("whisper", ["worker process", "shared with the speech server"])
def test_the_listener_reports_the_transcript_before_the_command_ends(tmp_path, whisper):
    """Real RealtimeSTT and Whisper (its worker process, or the speech server's in this process): the transcript of
    the pause comes before the 2 s of silence end the command, in the command's turn, with the words the utterance
    then carries."""
    from jarvis.config import ListenSettings
    from jarvis.listen.listener import Listener
    from jarvis.listen.shared_stt import SharedTranscription
    from jarvis.listen.stt import Transcriber
    from jarvis.serve.scheduler import Scheduler
    from tests.core.test_listener import _pcm, _silence, _utterance_of
    from tests.speech import espeak_wav

    bus = events.EventBus()
    settings = ListenSettings(end_of_turn="silence", post_speech_silence=2.0)
    shared = SharedTranscription(Transcriber(settings), Scheduler()) if whisper != "worker process" else None
    listener = Listener(settings, bus, shared_stt=shared)
    listener.load()
    listener.warmup()
    listener.bus_events = []
    bus.subscribe(listener.bus_events.append)
    early = []
    listener.on_early_transcript = lambda text, turn, audio: early.append((text, turn, events.now(), audio))
    went_on = []
    listener.on_went_on = lambda: went_on.append(events.now())
    try:
        listener.listen_without_wake_word(5.0, "follow_up")
        command = _pcm(espeak_wav("What time is it?", tmp_path / "command.wav"))
        utterance, _ = _utterance_of(listener, np.concatenate((_silence(0.3), command, _silence(3.0))), tail_s=3.0)
        assert "time" in utterance.text.lower(), utterance
        assert early, "no early transcript"
        text, turn, at, audio = early[-1]
        assert (text, turn) == (utterance.text, utterance.turn)
        assert at < utterance.t_speech_end
        # Its audio is the command's (speaker ID runs on it): the recording so far, all of the command's voice.
        assert audio.dtype == np.float32 and len(command) / 16000 < len(audio) / 16000 < len(utterance.audio) / 16000
        assert np.abs(audio).max() > 0.1
        assert all(t < utterance.t_speech_end for t in went_on), went_on   # never for the recording's end
    finally:
        listener.close()


# -- speaker ID in the pause ------------------------------------------------------------------------

@pytest.mark.parametrize("said_after_the_pause, named", [(False, "alice"), (True, "bob")])
def test_the_speaker_identified_in_the_pause_names_the_turn_when_no_words_came_after(tmp_path, chain,
                                                                                     said_after_the_pause, named):
    """Real resemblyzer, alice and bob enrolled from espeak-ng voices. The pause's audio is alice's and the whole
    recording's bob's (not what a room gives: it tells which one named the turn). The pause's speaker ID starts as
    the pause begins; when no voice came after it, it names the turn (it was ready before the turn ended) and
    neither the answer worked out ahead nor the recording is identified again; when more words came after the pause
    (the listener's ``went_on``), the recording's does."""
    from jarvis.audio.wav import read_speech_wav
    from jarvis.listen.listener import Utterance
    from jarvis.speakers import Identifier, SpeakerEncoder, SpeakerStore, enroll_from_wavs
    from jarvis.speakers.strangers import UnknownVoices
    from tests.core.test_speakers import ENROLL_SENTENCES
    from tests.speech import espeak_wav

    encoder = SpeakerEncoder()
    encoder.load()
    store = SpeakerStore(tmp_path / "speakers")
    for who, voice in (("alice", "en-us+f2"), ("bob", "en-us+m3")):
        clips = [espeak_wav(s, tmp_path / f"{who}{i}.wav", voice=voice) for i, s in enumerate(ENROLL_SENTENCES)]
        assert enroll_from_wavs(who, clips, store, encoder) == 3
    command = {who: read_speech_wav(espeak_wav("Jarvis, what time is it?", tmp_path / f"{who}-c.wav", voice=voice))
               for who, voice in (("alice", "en-us+f2"), ("bob", "en-us+m3"))}
    bus, seen, spoken = events.EventBus(), [], []
    bus.subscribe(seen.append)
    settings = Settings()
    identifier, identified = Identifier(store, encoder), []
    host = SimpleNamespace(identifier=SimpleNamespace(identify=lambda audio: identified.append(audio) or
                                                      identifier.identify(audio)), tts=chain)
    speaker = SimpleNamespace(speak_async=lambda response, cancel: spoken.append(response.text))
    taker = TurnTaker(bus, host, Brain(clock=lambda: NOON), speaker, SimpleNamespace(heard=lambda text: False),
                      UnknownVoices(0.75, 300), threading.Event(), lambda: settings)
    try:
        taker.identify_pause(command["alice"], 7)        # the pause began
        taker.prepare_early("What time is it.", 7, command["alice"])
        if said_after_the_pause:
            taker.went_on()                              # the voice came back after the pause
        taker.identify_early(command["bob"])             # the recording, as it ended
        text = "What time is it now." if said_after_the_pause else "What time is it."
        taker._handle(Utterance(text=text, raw_text=text, audio=command["bob"], t_speech_end=0.0, turn=7))
        assert [e.name for e in seen if e.type == "speaker"] == [named]
        assert spoken and spoken[0].startswith("It's")
        assert len(identified) == (2 if said_after_the_pause else 1), "one speaker ID per stretch of voice"
    finally:
        taker.close()
        encoder.close()



# -- the LLM, ahead of the turn (the real local model) ----------------------------------------------------

def _llm_brain(local_model, bus=None):
    from jarvis.brain.llm import LlmResponder
    from jarvis.config import BrainSettings

    responder = LlmResponder(BrainSettings(temperature=0.0), bus, local_model)
    return Brain(clock=lambda: NOON, fallback=responder), responder


@pytest.mark.slow
def test_an_llm_answer_worked_out_ahead_is_remembered_only_once_adopted(local_model):
    brain, responder = _llm_brain(local_model)
    turn = Turn(text="The secret word is banana.", speaker="alice")
    dropped = brain.ahead(turn)
    assert dropped.source == "llm" and dropped.text        # generated to its end, never adopted
    assert responder.memory.history("alice") == [] and brain.last_reply is None and len(responder.cache) == 0
    adopted = brain.ahead(turn)
    said = adopted.text                                     # generated to its end before the turn ended
    assert responder.memory.history("alice") == []
    brain.adopt(adopted)
    assert [m["content"] for m in responder.memory.history("alice")] == [turn.text, said]
    assert brain.last_reply is adopted and len(responder.cache) == 1
    # From the cache now (the same question, a fresh conversation): remembered only once adopted as well.
    responder.memory.forget()
    cached = brain.ahead(turn)
    assert cached.source == "llm-cache" and cached.text == said and responder.memory.history("alice") == []
    brain.adopt(cached)
    assert len(responder.memory.history("alice")) == 2


def _llm_taker(local_model, chain, tmp_path):
    """A turn taker with the real brain (local LLM), Piper chain and speaker ID (nobody enrolled: each voice is an
    unknown one with a conversation of its own); the host and the reply speaker are stand-ins that hold them and
    take the reply (the model host would load Whisper and Smart Turn, which answering ahead does not use)."""
    from jarvis.speakers import Identifier, SpeakerEncoder, SpeakerStore
    from jarvis.speakers.strangers import UnknownVoices

    encoder = SpeakerEncoder()
    encoder.load()
    bus, seen, replies = events.EventBus(), [], []
    bus.subscribe(seen.append)
    brain, responder = _llm_brain(local_model, bus)
    settings = Settings()
    host = SimpleNamespace(identifier=Identifier(SpeakerStore(tmp_path / "speakers"), encoder), tts=chain)
    speaker = SimpleNamespace(speak_async=lambda response, cancel: replies.append((response, cancel)))
    taker = TurnTaker(bus, host, brain, speaker, SimpleNamespace(heard=lambda text: False),
                      UnknownVoices(0.75, 300), threading.Event(), lambda: settings)
    return taker, responder, seen, replies, encoder


@pytest.mark.slow
@pytest.mark.parametrize("went_on", [False, True])
def test_the_llm_answer_started_in_the_pause_is_the_reply_when_no_words_came_after(local_model, chain, piper,
                                                                                   tmp_path, went_on):
    from jarvis.audio.wav import read_speech_wav
    from jarvis.listen.listener import Utterance
    from tests.speech import espeak_wav

    voice = read_speech_wav(espeak_wav("Jarvis, why is the sky blue?", tmp_path / "q.wav"))
    taker, responder, seen, replies, encoder = _llm_taker(local_model, chain, tmp_path)
    try:
        taker.prepare_early("Why is the sky blue.", 4, voice)
        taker._prepare_pool.submit(lambda: None).result(30)     # worked out: its first clause is synthesized
        ahead = taker._ahead
        assert ahead.response is not None and piper.asked == [spoken(ahead.response._read[0])]
        assert not [e for e in seen if e.type == "llm_first_token"]   # told only if it becomes the turn's answer
        text = "Why is the sky blue in the evening." if went_on else "Why is the sky blue."
        taker.identify_early(voice)
        with events.in_turn(4):
            taker._handle(Utterance(text=text, raw_text=text, audio=voice, t_speech_end=0.0, turn=4))
        ((response, cancel),) = replies
        assert (response is ahead.response) is not went_on and ahead.cancel.is_set() is went_on
        with events.in_turn(4):   # as the reply speaker's thread, in the turn
            said = response.text  # read to its end (the adopted one replays its first clause)
        (first_token,) = [e for e in seen if e.type == "llm_first_token"]
        assert said and first_token.turn == 4
        transcript = next(e for e in seen if e.type == "transcript")
        assert (first_token.t < transcript.t) is not went_on   # the adopted answer's first token came in the pause
        remembered = [m["content"] for key in list(responder.memory._conversations)
                      for m in responder.memory.history(key)]
        assert remembered == [text, said], remembered   # only the turn's exchange, never the dropped one's
    finally:
        taker.close()
        encoder.close()



def test_the_listener_says_when_the_person_goes_on_after_a_pause(tmp_path):
    """Real RealtimeSTT: "What time" and 1.2 s of silence, then "is it": the pause's transcript is reported, the
    voice coming back is reported before the command ends, and the command is the whole sentence."""
    from jarvis.config import ListenSettings
    from jarvis.listen.listener import Listener
    from tests.core.test_listener import _pcm, _silence, _utterance_of
    from tests.speech import espeak_wav

    listener = Listener(ListenSettings(end_of_turn="silence", post_speech_silence=2.0), events.EventBus())
    listener.load()
    listener.warmup()
    listener.bus_events = []
    early, went_on = [], []
    listener.on_early_transcript = lambda text, turn, audio: early.append((text, events.now()))
    listener.on_went_on = lambda: went_on.append(events.now())
    try:
        listener.listen_without_wake_word(5.0, "follow_up")
        head = _pcm(espeak_wav("What time", tmp_path / "head.wav"))
        tail = _pcm(espeak_wav("is it?", tmp_path / "tail.wav"))
        audio = np.concatenate((_silence(0.3), head, _silence(1.2), tail, _silence(3.0)))
        utterance, _ = _utterance_of(listener, audio, tail_s=3.0)
        assert "is it" in utterance.text.lower(), utterance
        assert went_on and all(t < utterance.t_speech_end for t in went_on)
        assert early and early[-1][0] == utterance.text, early
        assert any(t < max(went_on) for _, t in early), (early, went_on)   # the first pause's came before "is it"
    finally:
        listener.close()
