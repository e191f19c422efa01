"""Settings → Voices "Preview" through the model host: the loaded engines are borrowed (CSM speaks the draft's voice
with the model already loaded), only what the draft changes is made, and nothing of the host's is closed.
Real engines: a tiny random-weight CSM (tests.csm_tiny), Piper's bundled voice and espeak-ng."""
from __future__ import annotations

import copy

import numpy as np
import pytest

from jarvis.config import CsmSettings, Settings, TtsSettings
from jarvis.events import EventBus
from jarvis.host import ModelHost
from jarvis.speak.chain import TtsChain
from jarvis.speak.csm.engine import CsmVoice
from jarvis.speak.preview import OTHER_CSM, preview_chain
from tests.csm_tiny import build_tiny_csm


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    tiny = build_tiny_csm(tmp_path_factory.mktemp("csm") / "tiny-csm")
    settings = TtsSettings(engines=["csm", "piper", "system"],
                           csm=CsmSettings(model=str(tiny), device="cpu", temperature=0.0))
    chain = TtsChain.from_settings(settings, EventBus())
    chain.load()
    yield chain
    chain.close()


def engines_of(chain: TtsChain) -> list:
    return [chain.engine_state(name)[0] for name in chain.settings.engines]


def test_the_draft_borrows_what_it_shares_and_makes_only_what_it_changes(loaded):
    csm, piper, system = engines_of(loaded)
    model = csm.model
    draft = copy.deepcopy(loaded.settings)
    draft.csm.speaker_id, draft.system_rate = 1, 220
    chain, made = preview_chain(loaded, draft, EventBus())
    view, borrowed_piper, new_system = engines_of(chain)
    assert isinstance(view, CsmVoice) and view.engine is csm and view.speaker_id == 1
    assert borrowed_piper is piper and new_system is not system and made == [new_system]
    assert [s["healthy"] for s in chain.status()] == [True, True, False]  # borrowed warm; the new one loads
    chain.load()
    assert csm.model is model and [s["healthy"] for s in chain.status()] == [True, True, True]
    audio = np.concatenate([chunk for _, chunk in chain.speak("Ready.", None)])
    assert audio.size > 0
    for engine in made:
        engine.close()
    assert csm.generator is not None and loaded.status() == [{"name": n, "healthy": True, "reason": ""}
                                                             for n in ("csm", "piper", "system")]


def test_another_csm_model_is_not_loaded_next_to_the_one_in_use(loaded, tmp_path):
    draft = copy.deepcopy(loaded.settings)
    draft.csm.model = str(tmp_path / "another-csm")
    chain, made = preview_chain(loaded, draft, EventBus())
    chain.load()
    status = chain.status()
    assert status[0] == {"name": "csm", "healthy": False, "reason": OTHER_CSM} and status[1]["healthy"]
    assert made == [] and chain.active_engine == "piper"


def test_the_host_keeps_its_chain_open_while_previewing_and_closes_only_what_the_preview_made():
    settings = TtsSettings(engines=["system"])
    host = ModelHost(Settings(), EventBus())
    host.tts = loaded = TtsChain.from_settings(settings, EventBus())
    loaded.load()
    (system,) = engines_of(loaded)
    draft = copy.deepcopy(settings)
    draft.engines = ["piper", "system"]
    with host.voice_preview(draft, EventBus()) as chain:
        piper, borrowed = engines_of(chain)
        assert borrowed is system and system._es is not None
        chain.load()
        assert piper._voice is not None
        host.replace_tts(TtsChain.from_settings(draft, EventBus()))  # settings applied meanwhile
        assert not loaded.closed, "the chain the preview speaks with was closed under it"
    assert piper._voice is None                  # made for the preview: closed
    assert loaded.closed and system._es is None  # the replaced chain retires once the preview is over
    host.tts.close()


def test_a_preview_before_anything_loaded_makes_its_own_engines_and_closes_them():
    host = ModelHost(Settings(), EventBus())
    with host.voice_preview(TtsSettings(engines=["system"]), EventBus()) as chain:
        chain.load()
        (system,) = engines_of(chain)
        assert list(chain.speak("Hi.", None)) and system._es is not None
    assert system._es is None and host.tts is None
