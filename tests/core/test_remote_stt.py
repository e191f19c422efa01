"""Speech-to-text on another machine's `jarvis serve` (``listen.stt_remote_url``): a real server in a child process,
the listener's real RealtimeSTT with the remote executor, and this machine's Whisper when the server is gone."""
from __future__ import annotations

import time

import numpy as np
import pytest

from jarvis import events
from jarvis.bench.serve import ServerProcess
from jarvis.config import ListenSettings
from jarvis.errors import BadInput
from jarvis.listen.remote_stt import RemoteTranscription, check_url
from jarvis.listen.stt import Transcriber
from tests.speech import piper_16k


@pytest.fixture(scope="module")
def server():
    process = ServerProcess(engines=["piper"])
    yield process
    process.stop()


@pytest.fixture(scope="module")
def question():
    return piper_16k("What is the date today?")


def _remote(server, token: str | None, seen: list):
    bus = events.EventBus()
    bus.subscribe(seen.append)
    remote = RemoteTranscription(f"http://127.0.0.1:{server.port}/v1", Transcriber(ListenSettings()), bus,
                                 token=token)
    remote.warmup()
    return remote


def test_commands_are_transcribed_by_the_server(server, question):
    seen: list = []
    remote = _remote(server, server.token, seen)
    assert "date" in remote.transcribe(question).text.lower()
    assert (remote.remote_count, remote.local_count) == (1, 0) and not seen


def test_a_refused_token_falls_back_to_this_machine_and_says_why_once(server, question):
    seen: list = []
    remote = _remote(server, "wrong-token-" + "x" * 30, seen)
    assert "date" in remote.transcribe(question).text.lower()
    assert (remote.remote_count, remote.local_count) == (0, 1), "refused at start (warm-up): not asked again"
    degraded = [e for e in seen if e.type == events.EventType.DEGRADED]
    assert len(degraded) == 1 and "HTTP 401" in degraded[0].reason and "this machine's Whisper" in degraded[0].reason


def test_listener_hears_through_the_server_and_goes_on_when_it_dies(secret_service, question):
    """The listener's RealtimeSTT with the remote executor (no Whisper worker process), fed a spoken command at
    the pace of a microphone; then the server is killed and the next command is heard here."""
    from jarvis import secrets
    from jarvis.listen.listener import Listener
    from tests.core.test_listener import _utterance_of

    server = ServerProcess(engines=["piper"])    # its own: this test kills it
    secrets.set_secret("stt_remote_token", server.token)
    bus = events.EventBus()
    listener = Listener(ListenSettings(stt_remote_url=f"http://127.0.0.1:{server.port}/v1", end_of_turn="silence"),
                        bus)
    try:
        listener.load()
        listener.warmup()
        listener.bus_events = []
        bus.subscribe(listener.bus_events.append)
        command = np.concatenate([piper_16k("Jarvis."), np.zeros(4000, np.float32), question,
                                  np.zeros(24000, np.float32)])
        pcm = (command * 32767).astype(np.int16)
        utterance, _ = _utterance_of(listener, pcm, 1.5)
        assert "date" in utterance.text.lower() and listener.remote_stt.remote_count >= 1
        server.stop()
        time.sleep(0.5)
        utterance, _ = _utterance_of(listener, pcm, 1.5)
        assert "date" in utterance.text.lower() and listener.remote_stt.local_count >= 1
        assert any(e.type == events.EventType.DEGRADED and e.engine == "stt_remote" for e in listener.bus_events)
    finally:
        listener.close()
        server.stop()
        secrets.delete_secret("stt_remote_token")


@pytest.mark.parametrize("url", ["gpu-box:8844", "ftp://gpu-box/v1", "", "http://"])
def test_a_bad_url_is_one_line(url):
    with pytest.raises(BadInput, match="stt_remote_url"):
        check_url(url)
