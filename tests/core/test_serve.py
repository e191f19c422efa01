"""`jarvis serve`: the real server (uvicorn on a free loopback port) with the real TTS chain (Piper, then espeak-ng),
the bundled Whisper tiny.en and the token in a real Secret Service (tests/keyring_server.py); requests over HTTP."""
from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from jarvis.bench.serve import free_port
from jarvis.config import Settings
from jarvis.serve import security
from jarvis.serve.scheduler import Refused, Scheduler
from tests.speech import espeak_wav, piper_16k


@pytest.fixture(scope="module")
def server(secret_service, tmp_path_factory):
    from jarvis.serve import server as serve_module

    home = tmp_path_factory.mktemp("serve_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JARVIS_HOME", str(home))   # uploaded voices go here, never to the user's folder
        yield from _serving(serve_module, home)


def _serving(serve_module, home):
    settings = Settings()
    settings.tts.engines = ["piper", "system"]
    port, wyoming = free_port(), (free_port(), free_port())
    ready, stop = threading.Event(), threading.Event()
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(serve_module.serve(settings, "127.0.0.1", port, ready,
                                                                               stop, wyoming)), daemon=True)
    thread.start()
    assert ready.wait(120), "the server did not start"
    token = security.api_token(create=False)
    yield {"url": f"http://127.0.0.1:{port}", "token": token, "port": port, "wyoming": wyoming, "home": home}
    stop.set()
    thread.join(10)
    assert result == [0]


def call(server, path: str, body=None, token: str | None = "default", headers: dict | None = None,
         method: str | None = None, raw: bytes | None = None, content_type: str = "application/json"):
    """(status, headers, body bytes) of one request."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(server["url"] + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", content_type)
    if token is not None:
        request.add_header("Authorization", f"Bearer {server['token'] if token == 'default' else token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def error_of(reply) -> dict:
    status, headers, body = reply
    assert headers.get("content-type", "").startswith("application/json"), (status, body[:200])
    return json.loads(body)["error"]


def multipart(fields: dict, file_name: str, file_bytes: bytes) -> tuple[bytes, str]:
    boundary = "jarvis-test-boundary"
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n".encode())
    out.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n"
              "Content-Type: application/octet-stream\r\n\r\n".encode())
    out.write(file_bytes + f"\r\n--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def transcribe(server, audio: bytes, name: str = "clip.wav", **fields):
    body, ctype = multipart({"model": "whisper-1", **fields}, name, audio)
    return call(server, "/v1/audio/transcriptions", raw=body, content_type=ctype)


# -- security ---------------------------------------------------------------------------------------
def test_the_token_is_made_once_kept_in_the_keyring_and_shown_by_the_cli(server, secret_service):
    assert len(server["token"]) >= security.MIN_TOKEN_CHARS
    shown = subprocess.run([sys.executable, "-m", "jarvis", "serve", "--show-token"], capture_output=True,
                           text=True, env=secret_service.subprocess_env(), timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == server["token"]


def test_no_token_wrong_token_and_a_foreign_host_are_refused_with_one_json_line(server):
    missing = error_of(call(server, "/v1/models", token=None))
    assert missing["code"] == "missing_token" and "--show-token" in missing["message"]
    assert call(server, "/v1/models", token=None)[0] == 401
    wrong = call(server, "/v1/models", token="x" * 43)
    assert wrong[0] == 401 and error_of(wrong)["code"] == "bad_token"
    # DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends its own name as Host
    rebound = call(server, "/v1/models", headers={"Host": f"evil.example:{server['port']}"})
    assert rebound[0] == 403 and error_of(rebound)["code"] == "bad_host"
    assert call(server, "/v1/models", headers={"Host": f"localhost:{server['port']}"})[0] == 200
    # no CORS unless configured: a browser gets no permission to read answers
    status, headers, _ = call(server, "/v1/models", headers={"Origin": "http://evil.example"})
    assert status == 200 and "access-control-allow-origin" not in headers


@pytest.mark.parametrize("args, says", [
    (["--port", "0"], "not between 1 and 65535"),
    (["--host", "no-such-host.invalid"], "not an address of this machine"),
    (["--port", "IN_USE"], "pick another with --port"),
])
def test_serve_refuses_a_bad_address_in_one_line_before_loading_anything(args, says):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        args = [str(taken.getsockname()[1]) if a == "IN_USE" else a for a in args]
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "jarvis", "serve", *args], capture_output=True, text=True,
                                env={**os.environ, security.TOKEN_ENV: "t" * 32}, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ") and says in result.stderr, result.stderr
    assert time.monotonic() - started < 30


def test_allowed_hosts_and_tokens_rules():
    assert security.host_allowed("127.0.0.1:8844", security.allowed_hosts("127.0.0.1"))
    assert security.host_allowed("[::1]:8844", security.allowed_hosts("127.0.0.1"))
    assert not security.host_allowed(None, security.allowed_hosts("127.0.0.1"))
    assert security.allowed_hosts("0.0.0.0") is None and security.host_allowed("anything", None)
    assert security.token_matches("Bearer abc", "abc") and not security.token_matches("abc", "abc")
    assert not security.token_matches("Bearer abd", "abc")


def test_a_weak_token_from_the_environment_is_refused(monkeypatch):
    from jarvis.errors import BadInput

    monkeypatch.setenv(security.TOKEN_ENV, "short")
    with pytest.raises(BadInput, match="shorter than"):
        security.api_token()
    monkeypatch.setenv(security.TOKEN_ENV, "a" * 40)
    assert security.api_token() == "a" * 40


# -- names ------------------------------------------------------------------------------------------
def test_models_voices_health_queue_and_gpu(server):
    status, _, body = call(server, "/v1/models")
    ids = [m["id"] for m in json.loads(body)["data"]]
    assert status == 200 and "tts-1" in ids and "whisper-1" in ids
    voices = json.loads(call(server, "/v1/audio/voices")[2])["voices"]
    assert [v["id"] for v in voices] == ["jarvis", "piper", "system"] and all(v["available"] for v in voices)
    assert json.loads(call(server, "/health")[2])["status"] == "ok"
    stats = json.loads(call(server, "/queue/stats")[2])
    assert stats["waiting"] == 0 and stats["memory_pressure"] is None  # no GPU on this machine
    assert json.loads(call(server, "/gpu/status")[2]) == {"gpus": []}


# -- speech -----------------------------------------------------------------------------------------
def test_speech_round_trip_through_whisper_names_the_engine(server):
    import soundfile

    status, headers, body = call(server, "/v1/audio/speech", {"model": "tts-1", "input": "What time is it?",
                                                              "voice": "alloy", "response_format": "wav"})
    assert status == 200, body[:300]
    assert headers["x-jarvis-engine"] == "piper"
    samples, rate = soundfile.read(io.BytesIO(body), dtype="float32")
    assert rate == 24000 and 0.5 < len(samples) / rate < 5
    status, _, text = transcribe(server, body)
    assert status == 200 and "time" in json.loads(text)["text"].lower(), text


@pytest.mark.parametrize("fmt", ["pcm", "mp3", "opus", "flac", "aac"])
def test_every_response_format_decodes(server, fmt):
    import av

    status, headers, body = call(server, "/v1/audio/speech", {"model": "tts-1", "input": "Hello there.",
                                                              "voice": "piper", "response_format": fmt})
    assert status == 200, body[:300]
    if fmt == "pcm":
        assert len(body) % 2 == 0 and 0.3 < len(body) / 2 / 24000 < 5
        return
    with av.open(io.BytesIO(body)) as container:
        seconds = sum(frame.samples / frame.sample_rate for frame in container.decode(audio=0))
    assert 0.3 < seconds < 5, seconds


def test_a_voice_puts_its_engine_first(server):
    status, headers, _ = call(server, "/v1/audio/speech", {"model": "tts-1", "input": "Hello.", "voice": "system",
                                                           "response_format": "pcm"})
    assert status == 200 and headers["x-jarvis-engine"] == "system"


@pytest.mark.parametrize("body, status, code", [
    ({"model": "tts-1", "input": "", "voice": "alloy"}, 400, "empty_text"),
    ({"model": "tts-1", "input": "   ", "voice": "alloy"}, 400, "empty_text"),
    ({"model": "tts-1", "input": "Hi.", "voice": "nobody"}, 400, "unknown_voice"),
    ({"model": "tts-9", "input": "Hi.", "voice": "alloy"}, 400, "unknown_model"),
    ({"model": "tts-1", "input": "Hi.", "voice": "alloy", "response_format": "ogg"}, 400, "bad_format"),
    ({"model": "tts-1", "input": "Hi.", "voice": "alloy", "speed": 10}, 422, "invalid_field"),
    ({"model": "tts-1", "voice": "alloy"}, 422, "invalid_field"),
    ({"model": "tts-1", "input": "word " * 1000, "voice": "alloy"}, 413, "input_too_long"),
])
def test_bad_speech_requests_get_one_json_line(server, body, status, code):
    reply = call(server, "/v1/audio/speech", body)
    assert reply[0] == status and error_of(reply)["code"] == code, reply[2][:300]


def test_bodies_over_the_cap_are_413_and_garbage_is_422(server):
    huge = call(server, "/v1/audio/speech", raw=b"{" + b" " * 70_000 + b"}")
    assert huge[0] == 413 and error_of(huge)["code"] == "too_large"
    garbage = call(server, "/v1/audio/speech", raw=b"not json")
    assert garbage[0] == 422 and error_of(garbage)["code"] == "invalid_field"
    missing = call(server, "/v1/audio/nothing", {"x": 1})
    assert missing[0] == 404 and "/v1/audio/speech" in error_of(missing)["message"]


def test_a_client_that_goes_away_frees_the_models(server):
    """Read the first bytes of a long reply, hang up: the generation stops and the next request is served."""
    import http.client

    story = " ".join(["The dragon flew over the mountains and the quiet village below."] * 30)
    connection = http.client.HTTPConnection("127.0.0.1", server["port"], timeout=60)
    connection.request("POST", "/v1/audio/speech", json.dumps({"model": "tts-1", "input": story, "voice": "piper",
                                                                "response_format": "pcm"}),
                       {"Authorization": f"Bearer {server['token']}", "Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.status == 200 and response.read(4096)
    connection.close()
    deadline = time.monotonic() + 30
    while json.loads(call(server, "/queue/stats")[2])["running"]:
        assert time.monotonic() < deadline, "the abandoned generation still holds the models"
        time.sleep(0.1)
    assert call(server, "/v1/audio/speech", {"model": "tts-1", "input": "Next.", "response_format": "pcm"})[0] == 200


def test_the_official_openai_client_speaks_and_transcribes(server, tmp_path):
    """The openai package, as any app would use it: speech streamed to a file, then transcribed back."""
    import openai

    client = openai.OpenAI(base_url=server["url"] + "/v1", api_key=server["token"], max_retries=0)
    out = tmp_path / "speech.mp3"
    with client.audio.speech.with_streaming_response.create(model="tts-1", voice="alloy", response_format="mp3",
                                                             input="Set a timer for five minutes.") as response:
        response.stream_to_file(out)
    assert response.headers["x-jarvis-engine"] == "piper"
    with out.open("rb") as audio:
        text = client.audio.transcriptions.create(model="whisper-1", file=audio).text
    assert "timer" in text.lower() and "five" in text.lower().replace("5", "five"), text
    with out.open("rb") as audio:
        plain = client.audio.transcriptions.create(model="whisper-1", file=audio, response_format="text")
    assert "timer" in str(plain).lower()
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server["url"] + "/v1", api_key="wrong", max_retries=0).models.list()
    with pytest.raises(openai.BadRequestError, match="No voice named"):
        client.audio.speech.create(model="tts-1", voice="nobody", input="Hi.")


def test_jarvis_on_another_desktop_speaks_through_this_server(server):
    """Jarvis's own ``openai`` TTS engine pointed at this server (tts.cloud.openai_base_url), the server's token as
    its key: a desktop without a GPU speaks with the GPU box's voices."""
    from jarvis import secrets
    from jarvis.speak.openai_engine import OpenAiEngine

    secrets.set_secret(secrets.OPENAI_API_KEY, server["token"])
    try:
        engine = OpenAiEngine(model="tts-1", voice="jarvis", base_url=server["url"] + "/v1")
        engine.load()
        engine.warmup()
        audio = np.concatenate(list(engine.synthesize("Good morning.")))
    finally:
        secrets.delete_secret(secrets.OPENAI_API_KEY)
    assert 0.3 < len(audio) / engine.sample_rate < 5 and np.abs(audio).max() > 0.05
    assert json.loads(call(server, "/v1/models/tts-1")[2])["id"] == "tts-1"
    assert error_of(call(server, "/v1/models/tts-9"))["code"] == "unknown_model"


# -- transcription ----------------------------------------------------------------------------------
def test_transcription_formats(server, tmp_path):
    import soundfile

    soundfile.write(tmp_path / "q.flac", piper_16k("What is the date today?"), 16000)
    clip = (tmp_path / "q.flac").read_bytes()
    status, headers, body = transcribe(server, clip, response_format="text")
    assert status == 200 and headers["content-type"].startswith("text/plain") and "date" in body.decode().lower()
    verbose = json.loads(transcribe(server, clip, response_format="verbose_json")[2])
    assert "date" in verbose["text"].lower() and verbose["duration"] > 0.5 and verbose["segments"]


@pytest.mark.parametrize("data, name, fields, code", [
    (b"", "empty.wav", {}, "empty_audio"),
    (b"this is not audio at all" * 50, "fake.wav", {}, "bad_audio"),
    (b"RIFF", "short.wav", {}, "bad_audio"),
    (None, "clip.wav", {"response_format": "srt"}, "bad_format"),
    (None, "clip.wav", {"language": "english; drop table"}, "bad_language"),
])
def test_bad_uploads_get_one_json_line(server, tmp_path, data, name, fields, code):
    if data is None:
        data = espeak_wav("hello", tmp_path / "h.wav").read_bytes()
    reply = transcribe(server, data, name, **fields)
    assert reply[0] == 400 and error_of(reply)["code"] == code, reply[2][:300]


def test_an_unknown_transcription_model_is_400(server, tmp_path):
    body, ctype = multipart({"model": "whisper-9"}, "h.wav", espeak_wav("hello", tmp_path / "h.wav").read_bytes())
    reply = call(server, "/v1/audio/transcriptions", raw=body, content_type=ctype)
    assert reply[0] == 400 and error_of(reply)["code"] == "unknown_model"


# -- the queue --------------------------------------------------------------------------------------
def test_a_full_queue_is_429_with_retry_after():
    scheduler = Scheduler(max_waiting=1)
    first = scheduler.admit()
    with pytest.raises(Refused) as refused:
        scheduler.admit()
    assert refused.value.status == 429 and refused.value.retry_after_s >= 1
    first.wait()
    first.release()
    assert scheduler.stats()["served"] == 1 and scheduler.stats()["rejected"] == 1


def test_the_voice_loop_goes_ahead_of_waiting_requests():
    scheduler = Scheduler(max_waiting=4)
    order: list[str] = []
    running = scheduler.admit()
    running.wait()                                   # a request holds the models
    waiting = scheduler.admit()
    api = threading.Thread(target=lambda: (waiting.wait(), order.append("api"), waiting.release()))
    api.start()
    time.sleep(0.2)

    def loop_turn():
        with scheduler.live():
            order.append("live")
    live = threading.Thread(target=loop_turn)
    live.start()
    time.sleep(0.2)
    running.release()
    api.join(5)
    live.join(5)
    assert order == ["live", "api"]


def test_a_request_waits_at_most_its_timeout():
    scheduler = Scheduler(timeout_s=0.3)
    holder = scheduler.admit()
    holder.wait()
    late = scheduler.admit()
    with pytest.raises(Refused) as refused:
        late.wait()
    assert refused.value.status == 503 and scheduler.stats()["timed_out"] == 1 and scheduler.stats()["waiting"] == 0


def test_memory_pressure_refuses_large_jobs_after_trying_to_free_memory():
    """A simulated memory source (no GPU here): 90 % full; freeing caches frees 8 GiB of 80 once."""
    from jarvis.pressure import MemoryPressure
    from tests.core.test_placement import GIB, SimulatedGpu

    gpu = SimulatedGpu(80 * GIB, 76 * GIB, cache=0)
    scheduler = Scheduler(pressure=MemoryPressure(gpu.read, gpu.relieve))
    with pytest.raises(Refused) as refused:
        scheduler.admit(large=True)
    assert refused.value.status == 503 and refused.value.code == "memory_pressure" and gpu.freed == 1
    assert "95% full" in refused.value.message and scheduler.stats()["rejected"] == 1
    scheduler.admit().release()                  # a small job still goes
    gpu.used = 60 * GIB
    scheduler.admit(large=True).release()
    assert scheduler.stats()["memory_pressure"] == 0.75


def test_encoding_follows_an_engine_switch_mid_reply():
    """A fallback changes the rate mid-reply (Piper 22050 Hz, then CSM 24000 Hz): one 24 kHz stream."""
    from jarvis.serve.audio_out import encode

    tone = np.sin(2 * np.pi * 440 * np.arange(22050) / 22050).astype(np.float32) * 0.3
    pcm = b"".join(encode(iter([(22050, tone), (24000, tone[:12000]), (22050, tone)]), "pcm"))
    seconds = len(pcm) / 2 / 24000
    assert abs(seconds - (1.0 + 0.5 + 1.0)) < 0.02, seconds


@pytest.mark.parametrize("speed", [0.5, 2.0, 4.0])
def test_speed_changes_the_length_not_the_rate(speed):
    from jarvis.serve.audio_out import encode

    tone = (np.sin(2 * np.pi * 300 * np.arange(24000 * 2) / 24000) * 0.3).astype(np.float32)
    pcm = b"".join(encode(iter([(24000, tone[:24000]), (24000, tone[24000:])]), "pcm", speed=speed))
    seconds = len(pcm) / 2 / 24000
    assert abs(seconds - 2.0 / speed) < 0.1, seconds


# -- Wyoming (Home Assistant) -------------------------------------------------------------------------
def _wyoming(port: int, events_out: list) -> list:
    """Send Wyoming events to the server on ``port``; the events it answers until it stops talking."""
    import asyncio

    from wyoming.client import AsyncTcpClient

    async def talk() -> list:
        replies = []
        async with AsyncTcpClient("127.0.0.1", port) as client:
            for event in events_out:
                await client.write_event(event)
            while True:
                try:
                    event = await asyncio.wait_for(client.read_event(), timeout=30)
                except asyncio.TimeoutError:
                    break
                if event is None:
                    break
                replies.append(event)
                if event.type in ("audio-stop", "transcript", "info", "error"):
                    break
        return replies

    return asyncio.run(talk())


def test_wyoming_describes_speaks_and_transcribes_what_it_said(server):
    from wyoming.asr import Transcribe, Transcript
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.info import Describe, Info
    from wyoming.tts import Synthesize, SynthesizeVoice

    tts_port, asr_port = server["wyoming"]
    info = Info.from_event(_wyoming(tts_port, [Describe().event()])[0])
    assert [v.name for v in info.tts[0].voices] == ["jarvis", "piper", "system"] and info.asr[0].models

    replies = _wyoming(tts_port, [Synthesize(text="What time is it?", voice=SynthesizeVoice(name="piper")).event()])
    assert replies[0].type == "audio-start" and replies[-1].type == "audio-stop"
    chunks = [AudioChunk.from_event(e) for e in replies if AudioChunk.is_type(e.type)]
    pcm = b"".join(c.audio for c in chunks)
    assert chunks[0].rate == 24000 and 0.5 < len(pcm) / 2 / 24000 < 5

    # Home Assistant sends its microphone at 16 kHz; this is Jarvis's 24 kHz voice: the server converts
    sent = [Transcribe(language="en").event(), AudioStart(rate=24000, width=2, channels=1).event()]
    sent += [AudioChunk(rate=24000, width=2, channels=1, audio=pcm[i:i + 4800]).event()
             for i in range(0, len(pcm), 4800)]
    replies = _wyoming(asr_port, sent + [AudioStop().event()])
    assert "time" in Transcript.from_event(replies[-1]).text.lower(), replies


def test_wyoming_answers_bad_requests_with_an_error_event(server):
    from wyoming.error import Error
    from wyoming.tts import Synthesize, SynthesizeVoice

    tts_port, _ = server["wyoming"]
    empty = Error.from_event(_wyoming(tts_port, [Synthesize(text="  ").event()])[-1])
    assert empty.code == "empty_text"
    unknown = _wyoming(tts_port, [Synthesize(text="Hi.", voice=SynthesizeVoice(name="nobody")).event()])[-1]
    assert Error.from_event(unknown).code == "unknown_voice" and "Voices:" in Error.from_event(unknown).text


# -- uploaded voices and mappings ---------------------------------------------------------------------
def _clip(tmp_path, text: str = "The quick brown fox jumps over the lazy dog.", rate: int = 22050) -> bytes:
    import soundfile
    import soxr

    audio = piper_16k(text)
    path = tmp_path / f"clip{rate}.wav"
    soundfile.write(path, soxr.resample(audio, 16000, rate) if rate != 16000 else audio, rate)
    return path.read_bytes()


def upload(server, name: str, data: bytes, transcript: str | None = None):
    fields = {"name": name} if transcript is None else {"name": name, "transcript": transcript}
    body, ctype = multipart(fields, "prompt.wav", data)
    return call(server, "/v1/audio/voices", raw=body, content_type=ctype)


def test_a_voice_prompt_is_validated_transcribed_and_kept_private(server, tmp_path):
    import stat

    status, _, body = upload(server, "fox", _clip(tmp_path))
    assert status == 201, body
    entry = json.loads(body)
    assert entry["transcribed"] and "fox" in entry["transcript"].lower() and 2 < entry["seconds"] < 6
    listed = json.loads(call(server, "/v1/audio/voices")[2])["prompts"]
    assert [p["id"] for p in listed] == ["fox"]
    folder = next(server["home"].rglob("server_voices"))
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert sorted(f.name for f in folder.iterdir()) == ["fox.json", "fox.wav"]
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in folder.iterdir())
    given = json.loads(upload(server, "fox-two", _clip(tmp_path), transcript="What the clip says.")[2])
    assert given["transcript"] == "What the clip says." and not given["transcribed"]
    assert call(server, "/v1/audio/voices/fox-two", method="DELETE")[0] == 200
    assert call(server, "/v1/audio/voices/fox-two", method="DELETE")[0] == 404
    assert sorted(f.name for f in folder.iterdir()) == ["fox.json", "fox.wav"]


@pytest.mark.parametrize("name, kind, code", [
    ("../../etc/passwd", "clip", "bad_voice_name"),
    ("Fox", "clip", "bad_voice_name"),
    ("alloy", "clip", "voice_name_taken"),
    ("piper", "clip", "voice_name_taken"),
    ("short", "short", "prompt_length"),
    ("phone", "8k", "prompt_rate"),
    ("silent", "silent", "prompt_silent"),
    ("junk", "junk", "bad_audio"),
])
def test_bad_voice_prompts_get_one_line_and_nothing_is_stored(server, tmp_path, name, kind, code):
    import soundfile

    if kind == "clip":
        data = _clip(tmp_path)
    elif kind == "short":
        data = _clip(tmp_path, "Hi.")[: 44 + 22050]     # half a second
    elif kind == "8k":
        data = _clip(tmp_path, rate=8000)
    elif kind == "silent":
        soundfile.write(tmp_path / "s.wav", np.zeros(3 * 16000, np.float32), 16000)
        data = (tmp_path / "s.wav").read_bytes()
    else:
        data = b"MZ" + b"\0" * 5000
    folder = server["home"] / "data" / "server_voices"
    before = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    reply = upload(server, name, data)
    assert reply[0] == 400 and error_of(reply)["code"] == code, reply[2][:300]
    assert (sorted(p.name for p in folder.iterdir()) if folder.exists() else []) == before


def test_a_mapping_names_an_engine_and_a_speed(server):
    reply = call(server, "/v1/audio/voice-mappings/quick", {"engine": "piper", "speed": 2.0}, method="PUT")
    assert reply[0] == 200, reply[2]
    assert "quick" in [v["id"] for v in json.loads(call(server, "/v1/audio/voices")[2])["voices"]]

    def seconds(voice: str) -> float:
        status, headers, body = call(server, "/v1/audio/speech", {"model": "tts-1", "voice": voice,
                                                                  "input": "One two three four five six.",
                                                                  "response_format": "pcm"})
        assert status == 200 and headers["x-jarvis-engine"] == "piper"
        return len(body) / 2 / 24000

    normal, quick = seconds("piper"), seconds("quick")
    assert 0.4 < quick / normal < 0.6, (quick, normal)
    for body, code in [({"engine": "nobody"}, "unknown_engine"), ({"engine": "piper", "speed": 9}, "bad_speed"),
                       ({"engine": "piper", "prompt": "fox"}, "prompt_needs_csm"),
                       ({"engine": "piper", "csm_speaker": "a"}, "bad_speaker")]:
        reply = call(server, "/v1/audio/voice-mappings/other", body, method="PUT")
        assert reply[0] == 400 and error_of(reply)["code"] == code, (body, reply[2])
    assert call(server, "/v1/audio/voice-mappings/quick", method="DELETE")[0] == 200
    assert call(server, "/v1/audio/voice-mappings/quick", method="DELETE")[0] == 404


def test_deleting_a_prompt_deletes_the_mappings_that_clone_it_and_damage_is_kept_aside(tmp_path):
    """The store on its own (no CSM here to speak a clone): a mapping to CSM with a prompt, then the prompt goes."""
    from jarvis.serve.voices import VoiceStore

    store = VoiceStore(tmp_path / "voices")
    store.add("fox", _clip(tmp_path), "The quick brown fox.", set(), lambda audio: "")
    store.set_mapping("fox-csm", {"engine": "csm", "prompt": "fox", "csm_speaker": 1}, ["csm", "piper"], set())
    assert store.clips()["fox"]["text"] == "The quick brown fox."
    assert store.remove("fox") == ["fox-csm"] and store.mappings() == {}
    (tmp_path / "voices" / "mappings.json").write_text("{ damaged")
    assert store.mappings() == {}
    assert [p.name.startswith("mappings-damaged-") for p in (tmp_path / "voices").iterdir()] == [True]
