"""Piper's voice model run as two halves (``jarvis.speak.piper_stream``): the same samples as the whole model, the
first piece after one decoder run, and whole sentences as before for a voice that cannot be split. Real Piper,
the bundled joe voice."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper

from jarvis.speak import piper_stream
from jarvis.speak.piper_engine import WARMUP_SENTENCES, PiperEngine, bundled_voice

SENTENCE = "The sky is blue because of a process called atmospheric scattering."


@pytest.fixture(scope="module")
def engine():
    piper = PiperEngine()
    piper.load()
    yield piper
    piper.close()


def _steady_feeds(engine) -> dict:
    """The sentence's inputs without Piper's random noise, so two runs make the same audio."""
    feeds = engine._feeds(engine._voice.phonemize(SENTENCE)[0])
    feeds["scales"] = np.array([0.0, 1.0, 0.0], np.float32)
    return feeds


def test_the_bundled_voice_is_split(engine):
    assert isinstance(engine._voice.session, piper_stream.SplitVoiceModel)


def test_the_pieces_are_the_whole_models_samples(engine):
    feeds = _steady_feeds(engine)
    whole = onnxruntime.InferenceSession(str(bundled_voice()), providers=["CPUExecutionProvider"])
    expected = whole.run(None, feeds)[0].reshape(-1)
    pieces = list(engine._voice.session.stream(feeds))
    hop = engine._voice.session.hop
    assert len(pieces) >= 2 and pieces[0].size == piper_stream.FIRST_FRAMES * hop
    assert all(later.size <= piper_stream.GROWTH * earlier.size * 1.5 for earlier, later in zip(pieces, pieces[1:]))
    streamed = np.concatenate(pieces)
    assert streamed.size == expected.size
    assert np.abs(streamed - expected).max() < 1e-4   # float rounding: the decoder saw each piece's neighbours
    assert np.allclose(engine._voice.session.run(None, feeds)[0].reshape(-1), expected, atol=1e-5)


def test_the_first_piece_comes_after_one_decoder_run(engine):
    split = engine._voice.session
    runs = []

    class Counting:
        def __init__(self, session):
            self.session = session

        def run(self, names, feeds):
            runs.append(next(iter(feeds.values())).shape[-1])
            return self.session.run(names, feeds)

    counted = piper_stream.SplitVoiceModel(split._encoder, Counting(split._decoder), split._latent, split.hop)
    pieces = counted.stream(_steady_feeds(engine))
    next(pieces)
    assert runs == [piper_stream.FIRST_FRAMES + piper_stream.PAD_FRAMES]   # its frames and the right context
    rest = list(pieces)
    assert len(runs) == 1 + len(rest)


def test_the_engine_gives_one_gain_to_every_piece(engine):
    gain = engine._streaming_gain()
    assert 0.5 < gain < 20
    pieces = list(engine.synthesize("It's 12:30 PM. " + SENTENCE))
    audio = np.concatenate(pieces)
    assert all(p.dtype == np.float32 and np.abs(p).max() <= 1.0 for p in pieces)
    assert np.abs(audio).max() > 0.3   # at the voice's level, not quieted


def test_the_warm_up_sets_the_gain_from_its_own_pieces_as_whole_sentences_would(monkeypatch):
    """The warm-up streams its sentences anyway; their pieces' peaks are the whole sentences' peaks, so the gain
    needs no whole sentence made first (1.3 s of every start). Piper's noise off, so both ways hear the same."""
    steady = np.array([0.0, 1.0, 0.0], np.float32)
    original = PiperEngine._feeds
    monkeypatch.setattr(PiperEngine, "_feeds", lambda self, phonemes: {**original(self, phonemes), "scales": steady})
    warmed, whole_runs = PiperEngine(), []
    warmed.load()
    split = warmed._voice.session
    monkeypatch.setattr(split, "run", lambda *args: whole_runs.append(args) or pytest.fail("a whole sentence"))
    warmed.warmup()
    assert whole_runs == []
    monkeypatch.undo()
    monkeypatch.setattr(PiperEngine, "_feeds", lambda self, phonemes: {**original(self, phonemes), "scales": steady})
    cold = PiperEngine()
    cold.load()
    assert np.isclose(warmed._gain, cold._streaming_gain(), rtol=1e-5)   # made whole: no warm-up ran
    loudest = max(float(np.abs(piece).max()) for text in WARMUP_SENTENCES for piece in warmed.synthesize(text))
    assert np.isclose(loudest, 1.0, atol=1e-4)   # the loudest warm-up sentence, heard in pieces, peaks at 1


def test_calibrate():
    assert piper_stream.calibrate([0.5, 0.25]) == 2.0
    assert piper_stream.calibrate([]) == piper_stream.calibrate([0.0]) == 1.0


def _tiny_model(path, inputs: list[str]) -> str:
    """An ONNX graph that is not a Piper voice's: Identity from the first input (made here, nothing downloads)."""
    graph = helper.make_graph([helper.make_node("Identity", [inputs[0]], ["output"])], "tiny",
                              [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1]) for name in inputs],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph), str(path))
    return str(path)


def test_a_graph_that_is_not_cut_as_expected_is_not_split(tmp_path):
    with pytest.raises(ValueError, match="multi-speaker"):
        piper_stream.split(_tiny_model(tmp_path / "speakers.onnx", ["input", "sid"]))
    with pytest.raises(ValueError, match="decoder"):
        piper_stream.split(_tiny_model(tmp_path / "other.onnx", ["input"]))


def test_a_voice_that_is_not_split_makes_whole_sentences(monkeypatch):
    def cannot(path):
        raise ValueError("not this voice")

    monkeypatch.setattr(piper_stream, "split", cannot)
    piper = PiperEngine()
    piper.load()
    assert not isinstance(piper._voice.session, piper_stream.SplitVoiceModel)
    pieces = list(piper.synthesize("It's 12:30 PM. Anything else?"))
    assert len(pieces) == 2   # one per sentence, Piper's own peak scaling
    assert all(np.isclose(np.abs(p).max(), 1.0, atol=1e-3) for p in pieces)
