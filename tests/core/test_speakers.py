"""Speaker ID: store, enrollment and identification with real resemblyzer and espeak-ng voices.

Voices: "alice" = en-us+f2, "bob" = en-us+m3 (resemblyzer separates them), and a stranger
en-us+whisperf (a whispering voice, cosine ~0.55 to both). Store-only tests use random unit
vectors instead of the model so they run in milliseconds.
"""
from __future__ import annotations

import json
import logging
import shutil
import stat
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from jarvis import paths
from jarvis.errors import BadInput, NotAvailable
from jarvis.speakers import (UNKNOWN, Identifier, Match, SpeakerEncoder, SpeakerStore,
                             enroll_from_mic, enroll_from_wavs)
from jarvis.audio.wav import read_speech_wav
from tests.speech import espeak_wav

THRESHOLD = 0.75   # SpeakerSettings default
ENROLL_SENTENCES = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Please remind me to water the plants every morning at eight.",
    "I would like a cup of tea with some honey and lemon.",
]
TEST_SENTENCES = [
    "Jarvis, turn off the lights in the living room please.",
    "What time does the train to the city leave tomorrow?",
]
VOICES = {"alice": "en-us+f2", "bob": "en-us+m3", "stranger": "en-us+whisperf"}


# ---- fixtures --------------------------------------------------------------------------------
@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("JARVIS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def store(home) -> SpeakerStore:
    s = SpeakerStore()
    assert s.folder == paths.speakers_dir() and home in s.folder.parents
    return s


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, list[Path]]:
    """espeak WAVs: '<who>/enroll' and '<who>/test' lists, plus bad inputs."""
    d = tmp_path_factory.mktemp("clips")
    out: dict[str, list[Path]] = {}
    for who, voice in VOICES.items():
        out[f"{who}/enroll"] = [espeak_wav(s, d / f"{who}-e{i}.wav", voice=voice)
                                for i, s in enumerate(ENROLL_SENTENCES)]
        out[f"{who}/test"] = [espeak_wav(s, d / f"{who}-t{i}.wav", voice=voice)
                              for i, s in enumerate(TEST_SENTENCES)]
    speech = read_speech_wav(out["alice/enroll"][0])
    sf.write(d / "silent.wav", np.zeros(3 * 16000, np.float32), 16000, subtype="PCM_16")
    sf.write(d / "stereo.wav", np.stack([speech, speech], axis=1), 16000, subtype="PCM_16")
    espeak_wav(ENROLL_SENTENCES[0], d / "rate44k.wav", voice=VOICES["alice"], rate=44100)
    (d / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage that is not audio")
    out["bad"] = [d / "silent.wav", d / "stereo.wav", d / "rate44k.wav", d / "corrupt.wav",
                  d / "missing.wav"]
    return out


@pytest.fixture(scope="module")
def encoder() -> SpeakerEncoder:
    enc = SpeakerEncoder()
    enc.load()
    enc.warmup()
    yield enc
    enc.close()


@pytest.fixture(scope="module")
def enrolled_folder(tmp_path_factory, clips, encoder) -> Path:
    """A speakers folder with alice and bob enrolled from three sentences each (copy before use)."""
    folder = tmp_path_factory.mktemp("enrolled") / "speakers"
    s = SpeakerStore(folder)
    for who in ("alice", "bob"):
        assert enroll_from_wavs(who, clips[f"{who}/enroll"], s, encoder) == 3
    return folder


@pytest.fixture
def enrolled(enrolled_folder, store) -> SpeakerStore:
    shutil.copytree(enrolled_folder, store.folder, dirs_exist_ok=True)
    return store


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(256).astype(np.float32)
    return v / np.linalg.norm(v)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# ---- store (no model) ------------------------------------------------------------------------
def test_store_files_are_private_embeddings_only_and_survive_reopen(store):
    a, b = unit(1), unit(2)
    assert store.add("Alice", [a, b]) == 2
    files = list(store.folder.glob("*.json"))
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    data = json.loads(files[0].read_text())
    assert set(data) == {"schema_version", "name", "embeddings", "created", "updated"}
    assert data["name"] == "Alice" and data["schema_version"] == 1
    assert np.asarray(data["embeddings"]).shape == (2, 256)
    assert not list(store.folder.glob("*.tmp")) and not list(store.folder.glob(".*.tmp"))

    again = SpeakerStore(store.folder)
    assert again.names() == ["Alice"]
    expected = (a + b) / np.linalg.norm(a + b)
    np.testing.assert_allclose(again.centroid("alice"), expected, atol=1e-5)
    assert abs(np.linalg.norm(again.centroid("Alice")) - 1.0) < 1e-5


def test_add_appends_and_names_match_case_insensitively(store):
    store.add("Alice", [unit(1)])
    assert store.add("  alice ", [unit(2), unit(3)]) == 3
    assert store.names() == ["Alice"] and store.embedding_count("ALICE") == 3
    created = json.loads(next(store.folder.glob("*.json")).read_text())["created"]
    assert created  # kept from the first enrollment


def test_similar_names_get_separate_files(store):
    store.add("Ann Lee", [unit(1)])
    store.add("ann-lee", [unit(2)])
    assert store.names() == ["Ann Lee", "ann-lee"]
    assert len(list(store.folder.glob("*.json"))) == 2
    assert float(store.centroid("Ann Lee") @ unit(1)) > 0.999
    assert float(store.centroid("ann-lee") @ unit(2)) > 0.999


def test_remove_and_rename(store):
    store.add("Alice", [unit(1)])
    store.add("Bob", [unit(2)])
    store.rename("Alice", "Carol")
    assert store.names() == ["Bob", "Carol"]
    assert float(store.centroid("Carol") @ unit(1)) > 0.999
    with pytest.raises(BadInput) as err:
        store.centroid("Alice")
    assert err.value.code == "unknown_speaker" and "Enrolled: Bob, Carol." in err.value.message
    assert len(list(store.folder.glob("*.json"))) == 2

    before = snapshot(store.folder)
    with pytest.raises(BadInput) as err:
        store.rename("Carol", "bob")
    assert err.value.code == "speaker_exists"
    assert snapshot(store.folder) == before

    store.rename("bob", "BOB")          # case change only: same person, new spelling
    assert store.names() == ["BOB", "Carol"]
    store.remove("carol")
    store.remove("Bob")
    assert store.names() == [] and not list(store.folder.glob("*.json"))


def test_unknown_names_say_who_is_enrolled(store):
    with pytest.raises(BadInput) as err:
        store.remove("Zed")
    assert err.value.code == "unknown_speaker"
    assert err.value.message == "No speakers enrolled yet; enroll with: jarvis enroll NAME FILE.wav"
    store.add("Bob", [unit(1)])
    store.add("Alice", [unit(2)])
    for call in (lambda: store.remove("Zed"), lambda: store.rename("Zed", "Y"),
                 lambda: store.centroid("Zed")):
        with pytest.raises(BadInput) as err:
            call()
        assert err.value.code == "unknown_speaker"
        assert err.value.message == "No enrolled speaker named Zed. Enrolled: Alice, Bob."


@pytest.mark.parametrize("name", ["", "   ", "x" * 65, "bad\nname", "tab\x00null", "unknown", None])
def test_bad_names_are_rejected_and_nothing_is_written(store, name):
    store.add("Alice", [unit(1)])
    before = snapshot(store.folder)
    for call in (lambda: store.add(name, [unit(2)]), lambda: store.rename("Alice", name),
                 lambda: store.remove(name)):
        with pytest.raises(BadInput) as err:
            call()
        assert err.value.code == "bad_name"
        assert "\n" not in err.value.message
    assert snapshot(store.folder) == before


def test_bad_embeddings_are_rejected_before_writing(store):
    store.add("Alice", [unit(1)])
    before = snapshot(store.folder)
    for embs in ([], [unit(2), np.zeros(256)], [unit(2), np.ones(128)],
                 [np.full(256, np.nan)]):
        with pytest.raises(BadInput):
            store.add("Alice", embs)
    assert snapshot(store.folder) == before


def test_corrupt_profile_is_reported_skipped_and_left_alone(store, caplog):
    store.add("Zed", [unit(1)])
    store.add("Alice", [unit(2)])
    zed = next(p for p in store.folder.glob("zed-*.json"))
    zed.write_text('{"schema_version": 1, "name": "Zed", "embeddings": [[0.1, 0.2')
    damaged = zed.read_bytes()

    with caplog.at_level(logging.WARNING, logger="jarvis.speakers.store"):
        assert store.names() == ["Alice"]
    assert "damaged speaker profile" in caplog.text
    problems = store.problems()
    assert len(problems) == 1 and zed.name in problems[0] and "remove" in problems[0]
    assert list(store.centroids()) == ["Alice"]

    for call in (lambda: store.add("zed", [unit(3)]), lambda: store.centroid("Zed"),
                 lambda: store.rename("Zed", "Zorro")):
        with pytest.raises(BadInput) as err:
            call()
        assert err.value.code == "corrupt_profile" and "jarvis speakers remove" in err.value.message
    store.add("Bob", [unit(4)])                   # other people still enroll fine
    assert zed.read_bytes() == damaged
    store.remove("Zed")                           # and the damaged one can be removed
    assert not zed.exists() and store.problems() == []


def test_identifier_reads_enrollments_made_by_another_store(store):
    ident = Identifier(store, SpeakerEncoder(), THRESHOLD)  # encoder never loads: embeddings given
    assert ident.identify_embedding(unit(1)) == Match(UNKNOWN, 0.0)
    assert ident.identify(np.zeros(16000, np.float32)) == Match(UNKNOWN, 0.0)

    other_process = SpeakerStore(store.folder)
    other_process.add("Alice", [unit(1)])
    m = ident.identify_embedding(unit(1))
    assert m.name == "Alice" and m.score > 0.999 and m.known
    other_process.add("Bob", [unit(2)])
    assert ident.identify_embedding(unit(2) * 3).name == "Bob"
    far = ident.identify_embedding(unit(9))     # random directions in 256-d: cosine near 0
    assert far.name == UNKNOWN and far.score < THRESHOLD and far.nearest in ("Alice", "Bob")
    other_process.remove("Bob")
    assert ident.identify_embedding(unit(2)).name == UNKNOWN


def test_threshold_must_be_a_cosine(store):
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(BadInput) as err:
            Identifier(store, SpeakerEncoder(), bad)
        assert err.value.code == "bad_threshold"


def test_missing_resemblyzer_is_not_available(monkeypatch):
    monkeypatch.setitem(sys.modules, "resemblyzer", None)   # makes `import resemblyzer` fail
    with pytest.raises(NotAvailable) as err:
        SpeakerEncoder().load()
    assert err.value.code == "speaker_model_missing" and "pip install" in err.value.message


# ---- real model ------------------------------------------------------------------------------
@pytest.mark.slow
def test_embed_is_unit_256_and_rejects_silence(encoder, clips):
    emb = encoder.embed(read_speech_wav(clips["alice/test"][0]))
    assert emb.shape == (256,) and emb.dtype == np.float32
    assert abs(float(np.linalg.norm(emb)) - 1.0) < 1e-5
    for quiet in (np.zeros(48000, np.float32), np.zeros(0, np.float32),
                  (1e-4 * np.random.default_rng(0).standard_normal(48000)).astype(np.float32)):
        with pytest.raises(BadInput) as err:
            encoder.embed(quiet)
        assert err.value.code == "no_speech"


def test_the_network_runs_on_one_cpu_thread_and_leaves_torch_as_it_was(encoder, clips, monkeypatch):
    """On the CPU the network's small products run on one of torch's threads (less CPU at a pause); torch's own
    setting is back as it was after, for other models in the process; the embedding is the one all threads give."""
    import torch

    samples = read_speech_wav(clips["alice/test"][0])
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        network, seen = encoder._model, []
        monkeypatch.setattr(encoder, "_model", _Watched(network, lambda: seen.append(torch.get_num_threads())))
        one_thread = encoder.embed(samples)
        assert seen == [1] and torch.get_num_threads() == 2
        monkeypatch.setattr("jarvis.speakers.encoder._intra_op_threads", lambda torch_, threads: _no_change())
        np.testing.assert_allclose(encoder.embed(samples), one_thread, atol=1e-5)
        assert seen == [1, 2]
    finally:
        torch.set_num_threads(before)


class _Watched:
    """The speaker network, calling ``on_call`` as it runs."""

    def __init__(self, network, on_call):
        self.network, self.on_call, self.device = network, on_call, network.device

    def __call__(self, mels):
        self.on_call()
        return self.network(mels)


def _no_change():
    import contextlib

    return contextlib.nullcontext()


@pytest.mark.slow
def test_embed_is_thread_safe(encoder, clips):
    samples = [read_speech_wav(p) for p in clips["alice/test"] + clips["bob/test"]]
    serial = [encoder.embed(s) for s in samples]
    results: dict[int, np.ndarray] = {}
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, encoder.embed(samples[i])))
               for i in range(len(samples))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, ref in enumerate(serial):
        np.testing.assert_allclose(results[i], ref, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("who", ["alice", "bob"])
def test_enrolled_voices_are_identified(enrolled, encoder, clips, who):
    assert enrolled.names() == ["alice", "bob"]
    ident = Identifier(enrolled, encoder, THRESHOLD)
    other = "bob" if who == "alice" else "alice"
    for path in clips[f"{who}/test"]:
        match = ident.identify(read_speech_wav(path))
        assert match.name == who, (path.name, match)
        assert match.score >= THRESHOLD
        emb = encoder.embed(read_speech_wav(path))
        assert match.score - float(enrolled.centroid(other) @ emb) > 0.1   # a clear margin


@pytest.mark.slow
def test_stranger_or_strict_threshold_is_unknown(enrolled, encoder, clips):
    ident = Identifier(enrolled, encoder, THRESHOLD)
    for path in clips["stranger/test"]:
        match = ident.identify(read_speech_wav(path))
        assert match.name == UNKNOWN and match.score < THRESHOLD and not match.known, match
    strict = Identifier(enrolled, encoder, 0.99)
    match = strict.identify(read_speech_wav(clips["alice/test"][0]))
    assert match.name == UNKNOWN and match.nearest == "alice" and THRESHOLD <= match.score < 0.99


@pytest.mark.slow
@pytest.mark.parametrize("bad", ["silent", "stereo", "rate44k", "corrupt", "missing"])
def test_bad_wavs_leave_the_store_unchanged(enrolled, encoder, clips, bad):
    path = next(p for p in clips["bad"] if p.stem == bad)
    good = clips["alice/test"][0]
    before = snapshot(enrolled.folder)
    for name in ("alice", "carol"):            # appending to a person and creating one
        with pytest.raises(BadInput) as err:
            enroll_from_wavs(name, [good, path], enrolled, encoder)
        assert str(path) in err.value.message and "\n" not in err.value.message
        expected = {"silent": "silent_enrollment", "stereo": "wrong_format", "rate44k": "wrong_format",
                    "corrupt": "corrupt_wav", "missing": "missing_file"}[bad]
        assert err.value.code == expected
    assert snapshot(enrolled.folder) == before


@pytest.mark.slow
def test_enroll_rejects_bad_name_and_empty_list_without_writing(enrolled, encoder, clips):
    before = snapshot(enrolled.folder)
    with pytest.raises(BadInput) as err:
        enroll_from_wavs(" ", clips["alice/test"], enrolled, encoder)
    assert err.value.code == "bad_name"
    with pytest.raises(BadInput) as err:
        enroll_from_wavs("carol", [], enrolled, encoder)
    assert err.value.code == "no_files"
    assert snapshot(enrolled.folder) == before


@pytest.mark.slow
def test_enroll_more_then_remove(enrolled, encoder, clips):
    assert enroll_from_wavs("Alice", clips["alice/test"][:1], enrolled, encoder) == 1
    assert enrolled.embedding_count("alice") == 4
    enrolled.remove("alice")
    ident = Identifier(enrolled, encoder, THRESHOLD)
    assert ident.identify(read_speech_wav(clips["alice/test"][1])).name != "alice"


@pytest.mark.slow
def test_enroll_from_mic_records_each_phrase(store, encoder, clips):
    # Stand-in for the microphone (jarvis.audio.capture.record): it replays espeak recordings,
    # so prompts, recording and embedding are real; the virtual-mic path is an e2e concern.
    takes = [read_speech_wav(p) for p in clips["bob/enroll"]]
    calls, prompts = [], []

    def recorder(seconds, device, on_open):
        calls.append((seconds, device))
        on_open()
        return takes[len(calls) - 1]

    n = enroll_from_mic("Bob", store, encoder, device="pulse", phrases=("one", "two", "three"),
                        seconds=3.5, on_prompt=prompts.append, recorder=recorder)
    assert n == 3 and calls == [(3.5, "pulse")] * 3
    assert [p for p in prompts if "Say" in p] == ['[1/3] Say: "one"', '[2/3] Say: "two"',
                                                  '[3/3] Say: "three"']
    ident = Identifier(store, encoder, THRESHOLD)
    assert ident.identify(read_speech_wav(clips["bob/test"][0])).name == "Bob"


@pytest.mark.slow
def test_enroll_from_mic_with_a_silent_take_stores_nothing(store, encoder, clips):
    takes = [read_speech_wav(clips["bob/enroll"][0]), np.zeros(16000 * 4, np.float32)]
    with pytest.raises(BadInput) as err:
        enroll_from_mic("Bob", store, encoder, phrases=("one", "two"), on_prompt=lambda s: None,
                        recorder=lambda seconds, device, on_open: takes.pop(0))
    assert err.value.code == "silent_enrollment" and "phrase 2" in err.value.message
    assert store.names() == [] and snapshot(store.folder) == {}


@pytest.mark.slow
def test_unusable_device_is_not_available():
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the failure path needs a machine without it")
    with pytest.raises(NotAvailable) as err:
        SpeakerEncoder(device="cuda").load()
    assert err.value.code == "speaker_model_failed" and "'cpu'" in err.value.message


@pytest.mark.slow
@pytest.mark.e2e
def test_enroll_from_the_virtual_microphone(virtual_audio, store, encoder, clips):
    """Real capture path: each prompt plays a bob sentence into the virtual mic while record() runs."""
    takes = list(clips["bob/enroll"])
    prompts = []

    def speak_when_prompted(text):
        prompts.append(text)
        if "Say" in text:
            virtual_audio.play_into_mic(takes.pop(0), block=False)

    n = enroll_from_mic("Bob", store, encoder, phrases=("one", "two", "three"), seconds=3.0,
                        on_prompt=speak_when_prompted)
    assert n == 3 and not takes and prompts[-1] == "Enrolled Bob with 3 recordings."
    ident = Identifier(store, encoder, THRESHOLD)
    match = ident.identify(read_speech_wav(clips["bob/test"][0]))
    assert match.name == "Bob" and match.score >= THRESHOLD, match
