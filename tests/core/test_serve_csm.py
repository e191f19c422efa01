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
