"""A cloned CSM voice over the speech API, end to end: a prompt uploaded (Whisper writes its transcript), a mapping
that names CSM, a speaker and that prompt, and speech requests that name the mapping. Real parts: a tiny random-weight
CSM (tests.csm_tiny: the same loading, prompt, generation and voice-cache code as csm-1b), Piper behind it, the bundled
Whisper tiny.en, uvicorn on a free loopback port."""
from __future__ import annotations

import json
import secrets
import socket

import pytest

from jarvis.config import CsmSettings, ListenSettings, TtsSettings
from jarvis.events import EventBus
from jarvis.serve.scheduler import Scheduler
from tests.core.test_serve import _clip, call, upload
from tests.csm_tiny import build_tiny_csm


@pytest.fixture(scope="module")
def csm_server(tmp_path_factory):
    from jarvis.listen.stt import Transcriber
    from jarvis.serve.server import Serving
    from jarvis.serve.service import SpeechService
    from jarvis.serve.voices import VoiceStore
    from jarvis.speak.chain import TtsChain

    home = tmp_path_factory.mktemp("csm_serve_home")
    token = secrets.token_urlsafe(32)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JARVIS_HOME", str(home))            # the prompt and the voice cache go here
        mp.setenv("JARVIS_API_TOKEN", token)
        tiny = build_tiny_csm(tmp_path_factory.mktemp("csm") / "tiny-csm")
        settings = TtsSettings(engines=["csm", "piper"], csm=CsmSettings(model=str(tiny), device="cpu",
                                                                          temperature=0.0, max_seconds=2.0))
        chain = TtsChain.from_settings(settings, EventBus())
        chain.load()
        service = SpeechService(chain, Transcriber(ListenSettings()), "tiny.en", VoiceStore(home / "server_voices"))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        serving = Serving(service, Scheduler(), "127.0.0.1", port)
        serving.start()
        yield {"url": f"http://127.0.0.1:{port}", "token": token, "home": home, "chain": chain}
        serving.stop()
        chain.close()


def test_a_mapping_speaks_with_csm_in_the_uploaded_voice(csm_server, tmp_path):
    csm = csm_server["chain"].engine_state("csm")[0]
    assert csm.placement == "cpu (float32, no CUDA graphs)"
    status, _, body = upload(csm_server, "narrator", _clip(tmp_path, "This is how the narrator sounds."))
    assert status == 201, body
    assert "narrator" in json.loads(body)["transcript"].lower()           # Whisper wrote it
    reply = call(csm_server, "/v1/audio/voice-mappings/storyteller",
                 {"engine": "csm", "csm_speaker": 2, "prompt": "narrator"}, method="PUT")
    assert reply[0] == 200, reply[2]

    def speak(voice: str) -> bytes:
        status, headers, audio = call(csm_server, "/v1/audio/speech", {"model": "tts-1", "voice": voice,
                                                                       "input": "Ready.", "response_format": "pcm"})
        assert status == 200 and headers["x-jarvis-engine"] == "csm", (status, audio[:200])
        assert len(audio) > 0
        return audio

    speak("csm")                                      # the plain speaker: no clip encoded
    assert csm._voice_codes.encodings == 0
    speak("storyteller")                              # the clone: the uploaded prompt is encoded once ...
    assert csm._voice_codes.encodings == 1
    stored = (csm_server["home"] / "server_voices" / "narrator.wav").read_bytes()
    key = csm._voice_codes.key(stored)                # ... and cached under the clip's SHA-256
    assert [p.name for p in csm._voice_codes.folder.glob("*.pt")] == [f"narrator-{key}.pt"]
    speak("storyteller")                              # the next request reuses it
    assert csm._voice_codes.encodings == 1


def test_gpu_memory_pressure_drops_the_cached_voice_prompts_and_says_so_once(csm_server, tmp_path):
    """A simulated GPU (the memory figures are made up here: there is no GPU on this machine) goes over the limit:
    the host frees CSM's cached voice prompts, says so once, refuses a second CSM, and says when it is over."""
    from jarvis import events
    from jarvis.config import Settings
    from jarvis.host import ModelHost
    from jarvis.pipeline import VoiceLoop

    chain = csm_server["chain"]
    csm = chain.engine_state("csm")[0]
    clip = tmp_path / "voice.wav"
    clip.write_bytes(_clip(tmp_path, "This is how the narrator sounds."))
    list(csm.in_voice(1, "narrator", {"narrator": {"clip": str(clip), "text": "This is how the narrator sounds."}})
         .synthesize("Ready."))
    assert csm._prefix                                  # the voice prompt's KV is cached
    bus, seen = events.EventBus(), []
    bus.subscribe(seen.append)
    settings = Settings()
    settings.tts = chain.settings
    loop = VoiceLoop(settings, bus)
    host = loop.host
    host.tts = chain
    used = {"bytes": 76 * 2**30}
    host.pressure.read = lambda: [{"index": 0, "name": "Simulated H100", "used_bytes": used["bytes"],
                                   "total_bytes": 80 * 2**30}]
    assert host.pressure.check() == "pressure" and host.pressure.check() == "pressure"
    assert not csm._prefix                              # freed first
    degraded = [e for e in seen if isinstance(e, events.Degraded)]
    assert [e.engine for e in degraded] == ["gpu_memory"] and "95% full on Simulated H100" in degraded[0].reason

    other = Settings()                                  # another CSM voice while over the limit: not loaded
    other.tts = type(chain.settings)(**{**vars(chain.settings), "system_rate": 200})
    assert loop.apply_settings(other) is False
    assert host.tts is chain and "were not applied" in [e for e in seen if isinstance(e, events.Degraded)][-1].reason

    used["bytes"] = 40 * 2**30
    assert host.pressure.check() == "ok"
    assert [e.engine for e in seen if isinstance(e, events.Recovered)] == ["gpu_memory"]
    host.tts = None                                     # the fixture's chain is not this host's to close
    host.close()
