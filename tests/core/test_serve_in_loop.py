"""The speech server inside the running assistant (``serve.enabled``, the tray's switch): the model host serves its
own loaded TTS chain and one in-process Whisper that the listener shares, the voice loop ahead of every request.
Real parts: Piper, the bundled Whisper tiny.en, RealtimeSTT's listener (no audio device needed), uvicorn on a free
loopback port, the token in a real Secret Service (tests/keyring_server.py)."""
from __future__ import annotations

import socket
import threading
import time
import urllib.error

import pytest

from jarvis import events
from jarvis.bench.serve import free_port
from jarvis.config import Settings
from jarvis.host import ModelHost
from jarvis.serve import security
from jarvis.serve.scheduler import Scheduler
from tests.core.test_serve import call, transcribe
from tests.speech import piper_16k


def _settings(port: int) -> Settings:
    settings = Settings()
    settings.tts.engines = ["piper"]
    settings.brain.backend = "off"
    settings.serve.enabled, settings.serve.port = True, port
    return settings


@pytest.fixture(scope="module")
def serving_host(secret_service, tmp_path_factory):
    home = tmp_path_factory.mktemp("serving_host_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JARVIS_HOME", str(home))
        bus = events.EventBus()
        seen: list = []
        bus.subscribe(seen.append)
        settings = _settings(free_port())
        host = ModelHost(settings, bus)
        host.load()
        host.serve(settings.serve)
        server = {"url": f"http://127.0.0.1:{settings.serve.port}", "token": security.api_token(create=False)}
        yield host, server, seen
        host.close()


def test_the_server_speaks_with_the_loops_chain_and_hears_with_the_listeners_whisper(serving_host):
    host, server, seen = serving_host
    assert host.serving is not None, [e for e in seen if isinstance(e, events.Degraded)]
    # One copy: the listener's executor, the server's service and the host hold the same Whisper and chain.
    assert host.listener.shared_stt.transcriber is host.transcriber
    assert host.listener._recorder.transcription_executor.wrapped is host.listener.shared_stt   # no worker process
    assert host.serving.service.transcriber is host.transcriber
    assert host.serving.service.engines() == [s["name"] for s in host.tts.status()] == ["piper"]
    # Where each part runs, as the status window's model rows say it ("ready on …").
    assert host._placed("listen", "ready") == "ready on cpu (int8), shared with the speech server"
    assert host._placed("tts:piper", "ready") == "ready on cpu (onnxruntime)"
    assert host._placed("speakers", "ready") == "ready on cpu" and host._placed("brain", "off") == "off"
    status, headers, body = call(server, "/v1/audio/speech", {"model": "tts-1", "input": "What time is it?",
                                                               "voice": "jarvis", "response_format": "wav"})
    assert status == 200 and headers["x-jarvis-engine"] == "piper"
    status, _, text = transcribe(server, body, "speech.wav")
    assert status == 200 and "time" in text.decode().lower()
    # The listener's commands go through the same model, in this process.
    heard = host.listener.shared_stt.transcribe(piper_16k("What is the date today?")).text
    assert "date" in heard.lower()


def test_a_request_waits_while_the_voice_loop_works_and_steps_aside_between_chunks(serving_host):
    host, server, _ = serving_host
    replies: list = []
    with host.scheduler.live():          # a reply is speaking
        thread = threading.Thread(target=lambda: replies.append(call(
            server, "/v1/audio/speech", {"model": "tts-1", "input": "Hello there.", "response_format": "pcm"})))
        thread.start()
        time.sleep(1.0)
        assert not replies and host.scheduler.stats()["live"] == 1   # the request waits for the loop
    thread.join(60)
    assert replies and replies[0][0] == 200 and len(replies[0][2]) > 0


def test_a_running_request_lets_the_loop_in_between_chunks():
    scheduler = Scheduler()
    ticket = scheduler.admit()
    ticket.wait()                      # an API request is streaming
    order: list[str] = []

    def loop_job():
        with scheduler.live():
            order.append("loop")
    loop = threading.Thread(target=loop_job)
    loop.start()
    time.sleep(0.2)
    assert order == []                 # mid-chunk: the loop waits for the chunk
    ticket.step()                      # between chunks: the loop goes first, then the request goes on
    order.append("next chunk")
    loop.join(5)
    ticket.release()
    assert order == ["loop", "next chunk"]
    assert scheduler.stats()["running"] == 0 and scheduler.stats()["served"] == 1


def test_the_loops_own_jobs_never_wait_for_each_other():
    scheduler = Scheduler()
    with scheduler.live():             # a reply is speaking ...
        done = threading.Event()
        threading.Thread(target=lambda: (scheduler.live().__enter__(), done.set())).start()
        assert done.wait(2)            # ... and a barge-in's command is transcribed meanwhile


def test_a_port_in_use_is_one_degraded_line_and_the_assistant_goes_on(secret_service, tmp_path, monkeypatch):
    monkeypatch.setenv("JARVIS_HOME", str(tmp_path))
    bus = events.EventBus()
    seen: list = []
    bus.subscribe(seen.append)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings = _settings(taken.getsockname()[1])
        host = ModelHost(settings, bus)
        host.serve(settings.serve)     # no exception: the loop would go on
    degraded = [e for e in seen if isinstance(e, events.Degraded)]
    assert host.serving is None and len(degraded) == 1 and degraded[0].engine == "speech_server"
    assert "--port" in degraded[0].reason or "port" in degraded[0].reason


def test_switching_the_server_restarts_the_listener_and_a_new_port_only_the_server(monkeypatch):
    from jarvis.pipeline import VoiceLoop

    settings = Settings()
    loop = VoiceLoop(settings, events.EventBus())
    served: list = []
    monkeypatch.setattr(loop.host, "serve", served.append)
    on = Settings()
    on.serve.enabled = True
    assert loop.apply_settings(on) is True           # the listener's Whisper moves into this process
    moved = Settings()
    moved.serve.port = 9000
    assert loop.apply_settings(moved) is False and [s.port for s in served] == [9000]


def test_a_bad_port_in_settings_falls_back_with_one_line(tmp_path):
    from jarvis import config

    path = tmp_path / "settings.json"
    path.write_text('{"schema_version": 3, "serve": {"enabled": true, "port": 70000}}')
    loaded = config.load(path)
    assert loaded.serve.enabled is True and loaded.serve.port == 8844
    assert "serve.port" in loaded.notice


def test_the_server_stops_with_the_host(secret_service, tmp_path, monkeypatch):
    monkeypatch.setenv("JARVIS_HOME", str(tmp_path))
    settings = _settings(free_port())
    host = ModelHost(settings, events.EventBus())
    host.tts = _tiny_chain()
    host.serve(settings.serve)
    server = {"url": f"http://127.0.0.1:{settings.serve.port}", "token": security.api_token(create=False)}
    assert call(server, "/health")[0] == 200
    host.close()
    with pytest.raises(urllib.error.URLError):
        call(server, "/health")


def _tiny_chain():
    from jarvis.speak.chain import TtsChain

    settings = Settings()
    settings.tts.engines = ["system"]
    chain = TtsChain.from_settings(settings.tts, events.EventBus())
    chain.load()
    return chain



def test_switching_the_server_off_lets_go_of_the_shared_whisper(secret_service, tmp_path, monkeypatch):
    from jarvis.listen.stt import Transcriber

    monkeypatch.setenv("JARVIS_HOME", str(tmp_path))
    settings = _settings(free_port())
    host = ModelHost(settings, events.EventBus())
    host.transcriber = shared = Transcriber(settings.listen)
    same = Settings()
    same.serve = settings.serve
    same.tts, same.brain = settings.tts, settings.brain
    host.release_for(same)                           # a new microphone, the server still on: kept
    assert host.transcriber is shared
    off = Settings()
    host.release_for(off)                            # the server switched off: no second copy left loaded
    assert host.transcriber is None


def test_requests_step_aside_from_a_persons_first_word_to_the_end_of_the_answer():
    from jarvis.pipeline import VoiceLoop

    loop = VoiceLoop(Settings(), events.EventBus())
    scheduler = loop.host.scheduler
    ticket = scheduler.admit()
    ticket.wait()                                      # a request is streaming
    loop.bus.emit(events.Wake(turn=7))                 # "Jarvis, ..." (the capture thread: this never blocks)
    stepped = threading.Event()
    threading.Thread(target=lambda: (ticket.step(), stepped.set()), daemon=True).start()
    assert not stepped.wait(0.5)                       # the request waits at its next chunk ...
    late = scheduler.admit()
    started = threading.Event()
    threading.Thread(target=lambda: (late.wait(), started.set(), late.release()), daemon=True).start()
    loop.bus.emit(events.PlaybackEnd(interrupted=True, turn=6))   # the reply cut by this turn ends: still held
    assert not stepped.wait(0.3) and not started.is_set()          # ... and none starts
    loop.bus.emit(events.PlaybackEnd(interrupted=False, turn=7))  # the answer was heard
    assert stepped.wait(2)
    ticket.release()
    assert started.wait(2)
    loop.stop()


def test_a_turn_that_never_ends_stops_holding_requests_back():
    scheduler = Scheduler()
    scheduler.turn_started(guard_s=0.3)
    ticket = scheduler.admit()
    start = time.monotonic()
    ticket.wait()
    assert 0.25 < time.monotonic() - start < 2
    ticket.release()
