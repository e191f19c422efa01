"""Cloud TTS engines ("openai", "edge") with keys in a real Secret Service (tests/keyring_server.py).

The real clouds cannot be reached from the test machines, so:
- OpenAI runs against ``FakeOpenAi`` below: a loopback HTTP server (a fake of the cloud service) that
  implements ``POST /v1/audio/speech`` and ``GET /v1/models/{id}`` as OpenAI documents them, checks the
  bearer key against the one in the real keyring, and streams 24 kHz s16le PCM of a known sine in
  chunks of odd sizes. The engine, the openai client and its HTTP stack are all real.
- Edge is tried for real with the network unreachable (the chain must fall back in one clear line);
  its MP3 decoding is checked offline on a tone encoded locally with PyAV's LAME encoder; and its
  streaming/cancel plumbing is checked with the service's message source replaced by a local async
  generator yielding that MP3 (the only stand-in, since the service cannot be reached).
"""
from __future__ import annotations

import asyncio
import io
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from jarvis import secrets
from jarvis.config import CloudTtsSettings, TtsSettings
from jarvis.errors import NotAvailable
from jarvis.events import Degraded, Error, EventBus, TtsFirstChunk
from jarvis.speak import registry
from jarvis.speak.chain import TtsChain
from tests.core.test_speak import Recorder

RATE = 24000
FAKE_KEY = "sk-test-fake-key-for-the-loopback-server"  # never a real key anywhere
SET_KEY_CMD = "`jarvis secret set openai_api_key`"
PIECES = (1, 333, 4097, 2, 7, 1200, 99)  # odd sizes: samples split across network reads


def sine(seconds: float = 0.5, freq: float = 440.0, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


SINE_PCM = np.round(sine() * 32767).astype("<i2").tobytes()


# -- a loopback fake of OpenAI's speech API -------------------------------------------------------

class FakeOpenAi:
    """``url`` is an OpenAI base URL (``http://127.0.0.1:PORT/v1``). ``models_status``: what GET /models answers."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.models_status = 200
        self.revoked: set[str] = set()  # keys the server refuses even when they are the keyring's
        self.release = threading.Event()   # the speech response pauses after 3 pieces until set
        self.release.set()
        self.paused = threading.Event()    # set while it waits
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _authorised(self) -> bool:
                key = secrets.get_secret(secrets.OPENAI_API_KEY)  # the real keyring's key, unless revoked
                if self.headers.get("Authorization") == f"Bearer {key}" and key not in fake.revoked:
                    return True
                self._json(401, {"error": {"message": "Incorrect API key provided: sk-wr***ng.",
                                           "type": "invalid_request_error", "code": "invalid_api_key"}})
                return False

            def _json(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                fake.requests.append({"method": "GET", "path": self.path,
                                      "auth": self.headers.get("Authorization")})
                if fake.models_status != 200:  # a compatible server without this route
                    self._json(fake.models_status, {"error": {"message": "Not found", "type": "invalid_request_error"}})
                    return
                if not self._authorised():
                    return
                if self.path.startswith("/v1/models/"):
                    model = self.path.rsplit("/", 1)[1]
                    self._json(200, {"id": model, "object": "model", "created": 0, "owned_by": "system"})
                else:
                    self._json(404, {"error": {"message": "Not found", "type": "invalid_request_error"}})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                fake.requests.append({"method": "POST", "path": self.path, "json": body,
                                      "auth": self.headers.get("Authorization")})
                if not self._authorised():
                    return
                if self.path != "/v1/audio/speech" or body.get("response_format") != "pcm":
                    self._json(400, {"error": {"message": "unsupported request", "type": "invalid_request_error"}})
                    return
                self.send_response(200)
                self.send_header("Content-Type", "audio/pcm")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                data, sent, i = SINE_PCM, 0, 0
                while sent < len(data):
                    piece = data[sent:sent + PIECES[i % len(PIECES)]]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.flush()
                    sent, i = sent + len(piece), i + 1
                    if i == 3 and not fake.release.is_set():
                        fake.paused.set()
                        fake.release.wait(10)
                    time.sleep(0.002)  # separate network reads
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def of(self, method: str) -> list[dict]:
        return [r for r in self.requests if r["method"] == method]

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_openai(secret_service):
    server = FakeOpenAi()
    yield server
    server.stop()
    secrets.delete_secret(secrets.OPENAI_API_KEY)


def openai_engine(base_url: str, **cloud):
    settings = TtsSettings(cloud=CloudTtsSettings(openai_base_url=base_url, openai_voice="nova", **cloud))
    return registry.create("openai", settings)



def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- OpenAI ---------------------------------------------------------------------------------------

def test_registry_builds_cloud_engines_from_settings_without_loading():
    settings = TtsSettings(cloud=CloudTtsSettings(openai_model="tts-1", openai_voice="nova",
                                                  openai_base_url="http://localhost:9/v1",
                                                  edge_voice="en-GB-RyanNeural"))
    openai, edge = registry.create("openai", settings), registry.create("edge", settings)
    assert (openai.name, openai.model, openai.voice, openai.base_url, openai.sample_rate) == \
        ("openai", "tts-1", "nova", "http://localhost:9/v1", 24000)
    assert (edge.name, edge.voice, edge.sample_rate) == ("edge", "en-GB-RyanNeural", 24000)
    assert "openai" in registry.names() and "edge" in registry.names()


def test_openai_streams_the_servers_pcm_as_it_arrives(fake_openai):
    secrets.set_secret(secrets.OPENAI_API_KEY, FAKE_KEY)
    engine = openai_engine(fake_openai.url)
    engine.load()
    engine.warmup()
    # Warm-up costs nothing: one free GET of the model, no speech request.
    assert [(r["method"], r["path"]) for r in fake_openai.requests] == [("GET", "/v1/models/gpt-4o-mini-tts")]

    fake_openai.release.clear()  # the server stops after its first piece until we have audio
    chunks = engine.synthesize("Hello from the cloud.")
    first = next(chunks)
    # Audio arrived while the server still held the rest back (it may reach its pause just after our first chunk).
    assert fake_openai.paused.wait(5) and not fake_openai.release.is_set()
    fake_openai.release.set()
    out = [first, *chunks]
    engine.close()

    (speech,) = fake_openai.of("POST")
    assert speech["path"] == "/v1/audio/speech" and speech["auth"] == f"Bearer {FAKE_KEY}"
    assert speech["json"] == {"model": "gpt-4o-mini-tts", "voice": "nova", "input": "Hello from the cloud.",
                              "response_format": "pcm"}
    assert len(out) > 3 and all(c.dtype == np.float32 and c.ndim == 1 for c in out)
    audio = np.concatenate(out)
    expected = np.frombuffer(SINE_PCM, "<i2").astype(np.float32) / 32768.0
    assert audio.shape == expected.shape
    np.testing.assert_array_equal(audio, expected)  # PCM is lossless: odd splits must not shift a byte
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * RATE / len(audio) - 440) < 3


def test_openai_cancel_stops_the_stream(fake_openai):
    secrets.set_secret(secrets.OPENAI_API_KEY, FAKE_KEY)
    engine = openai_engine(fake_openai.url)
    cancel = threading.Event()
    got = 0
    for chunk in engine.synthesize("A long answer.", cancel):
        got += chunk.size
        cancel.set()
    assert 0 < got < len(SINE_PCM) // 2
    engine.close()


def test_openai_bad_key_falls_back_to_the_system_voice_at_start(fake_openai):
    from jarvis.speak.system_engine import SystemEngine
    secrets.set_secret(secrets.OPENAI_API_KEY, "sk-wrong-key")
    fake_openai.revoked.add("sk-wrong-key")
    openai = openai_engine(fake_openai.url)
    bus = EventBus()
    seen = Recorder(bus)
    chain = TtsChain([openai, SystemEngine()], bus)
    chain.load()
    (degraded,) = seen.of(Degraded)
    assert degraded.engine == "openai"
    assert degraded.reason == (f"OpenAI ({fake_openai.url}) rejected the API key: set a new one with "
                               f"{SET_KEY_CMD}.")
    assert chain.active_engine == "system"
    out = list(chain.speak("Still talking."))
    assert out and {rate for rate, _ in out} == {22050}
    assert [e.engine for e in seen.of(TtsFirstChunk)] == ["system"] and seen.of(Error) == []
    assert fake_openai.of("POST") == []  # no speech was requested (or billed)
    chain.close()


def test_openai_401_while_speaking_fails_over_without_losing_the_sentence(fake_openai):
    """A server without /models (404) passes warm-up; the 401 comes from the speech request itself."""
    secrets.set_secret(secrets.OPENAI_API_KEY, "sk-revoked-key")
    fake_openai.revoked.add("sk-revoked-key")
    fake_openai.models_status = 404
    from jarvis.speak.system_engine import SystemEngine
    openai = openai_engine(fake_openai.url)
    openai.load()
    with pytest.raises(NotAvailable) as err:
        list(openai.synthesize("Hello."))
    assert err.value.code == "cloud_auth" and SET_KEY_CMD in err.value.message
    assert "\n" not in err.value.message

    bus = EventBus()
    seen = Recorder(bus)
    chain = TtsChain([openai, SystemEngine()], bus)
    chain.load()
    assert seen.of(Degraded) == [] and chain.active_engine == "openai"  # 404 on /models is not fatal
    out = list(chain.speak("First sentence. Second sentence."))
    (degraded,) = seen.of(Degraded)
    assert degraded.engine == "openai"
    assert degraded.reason == (f"failed while speaking: OpenAI ({fake_openai.url}) rejected the API key: "
                               f"set a new one with {SET_KEY_CMD}.")
    assert len(out) == 2 and {rate for rate, _ in out} == {22050}  # both sentences, by the system voice
    assert chain.status()[0]["healthy"] is False
    chain.close()


def test_a_corrected_key_is_used_from_the_next_sentence_without_a_restart(fake_openai):
    """The engine used to keep the client made with the first key until Jarvis restarted."""
    secrets.set_secret(secrets.OPENAI_API_KEY, "sk-revoked-key")
    fake_openai.revoked.add("sk-revoked-key")
    engine = openai_engine(fake_openai.url)
    with pytest.raises(NotAvailable) as err:
        list(engine.synthesize("First sentence."))
    assert err.value.code == "cloud_auth"
    secrets.set_secret(secrets.OPENAI_API_KEY, FAKE_KEY)  # corrected in Settings (the keyring)
    assert list(engine.synthesize("Second sentence."))
    assert [r["auth"] for r in fake_openai.of("POST")] == ["Bearer sk-revoked-key", f"Bearer {FAKE_KEY}"]
    engine.close()


def test_openai_without_a_key_is_not_available(secret_service):
    assert secrets.get_secret(secrets.OPENAI_API_KEY) is None
    engine = openai_engine("")
    with pytest.raises(NotAvailable) as err:
        engine.load()
    assert err.value.code == "cloud_key_missing"
    assert err.value.message == ("No OpenAI API key is stored: set one with `jarvis secret set openai_api_key` "
                                 "(it is kept in the OS keyring).")
    from jarvis.speak.system_engine import SystemEngine
    bus = EventBus()
    seen = Recorder(bus)
    chain = TtsChain([engine, SystemEngine()], bus)
    chain.load()
    assert [(d.engine, d.reason) for d in seen.of(Degraded)] == [("openai", err.value.message)]


def test_openai_unreachable_server_is_one_clear_line(fake_openai):
    secrets.set_secret(secrets.OPENAI_API_KEY, FAKE_KEY)
    url = f"http://127.0.0.1:{closed_port()}/v1"
    engine = openai_engine(url)
    engine.load()
    t0 = time.monotonic()
    with pytest.raises(NotAvailable) as err:
        engine.warmup()
    assert time.monotonic() - t0 < 5
    assert err.value.code == "cloud_unreachable"
    assert err.value.message.startswith(f"Cannot reach OpenAI at {url}: check the internet connection (")
    assert "\n" not in err.value.message
    with pytest.raises(NotAvailable) as err:
        list(engine.synthesize("Hello."))
    assert err.value.code == "cloud_unreachable"


# -- Edge -----------------------------------------------------------------------------------------

def test_edge_with_the_network_unreachable_falls_back_in_one_clear_line(monkeypatch):
    from jarvis.speak.edge_engine import SERVICE
    from jarvis.speak.system_engine import SystemEngine
    try:
        socket.getaddrinfo(SERVICE, 443)
        # This machine has internet: make the service unreachable through a proxy on a closed port.
        monkeypatch.setenv("WSS_PROXY", f"http://127.0.0.1:{closed_port()}")
    except OSError:
        pass  # no internet (the test machines): the real lookup fails
    bus = EventBus()
    seen = Recorder(bus)
    edge = registry.create("edge", TtsSettings())
    chain = TtsChain([edge, SystemEngine()], bus)
    t0 = time.monotonic()
    chain.load()
    assert time.monotonic() - t0 < 15
    (degraded,) = seen.of(Degraded)
    assert degraded.engine == "edge"
    assert degraded.reason.startswith(f"Cannot reach Edge's speech service ({SERVICE}): check the internet "
                                      f"connection (")
    assert "\n" not in degraded.reason and len(degraded.reason) < 300
    out = list(chain.speak("Offline, but still talking."))
    assert out and {rate for rate, _ in out} == {22050}
    chain.close()


def test_edge_rejects_a_malformed_voice_name_offline():
    with pytest.raises(NotAvailable) as err:
        registry.create("edge", TtsSettings(cloud=CloudTtsSettings(edge_voice="Guy"))).load()
    assert err.value.code == "unknown_voice" and "tts.cloud.edge_voice" in err.value.message


@pytest.fixture(scope="module")
def tone_mp3() -> bytes:
    """1 s of 440 Hz at 24 kHz mono, 48 kbit/s MP3 (the format Edge sends), encoded here by LAME via PyAV."""
    import av
    if "libmp3lame" not in av.codecs_available:
        pytest.skip("this PyAV build has no MP3 encoder (libmp3lame), so no MP3 can be made offline")
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=RATE, layout="mono")
        stream.bit_rate = 48000
        frame = av.AudioFrame.from_ndarray(sine(1.0).reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = RATE
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    data = buf.getvalue()
    assert data[:3] == b"ID3"  # a file-style ID3v2 tag in front: the decoder must skip it
    return data


def decode(data: bytes, sizes=(1,)) -> tuple[list[np.ndarray], "object"]:
    from jarvis.speak.edge_engine import Mp3Decoder
    decoder, chunks, at, i = Mp3Decoder(RATE), [], 0, 0
    while at < len(data):
        n = sizes[i % len(sizes)]
        chunks.append(decoder.feed(data[at:at + n]))
        at, i = at + n, i + 1
    chunks.append(decoder.flush())
    return [c for c in chunks if c.size], decoder


def assert_is_the_tone(audio: np.ndarray, seconds: float = 1.0) -> None:
    reference = sine(seconds)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(reference) <= len(audio) < len(reference) + RATE // 5  # plus the codec's delay and padding
    lag = int(np.argmax(np.correlate(audio[:RATE // 4], reference[:RATE // 10], "valid")))
    aligned = audio[lag:lag + len(reference) - RATE // 10]
    ref = reference[:len(aligned)]
    assert float(np.corrcoef(aligned, ref)[0, 1]) > 0.98
    assert abs(float(np.sqrt(np.mean(aligned ** 2))) - float(np.sqrt(np.mean(ref ** 2)))) < 0.05
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * RATE / len(audio) - 440) < 3


def test_mp3_decoding_in_odd_pieces_matches_the_tone(tone_mp3):
    whole, _ = decode(tone_mp3, sizes=(len(tone_mp3),))
    pieces, decoder = decode(tone_mp3, sizes=(1, 7, 333, 1001, 50, 2))
    assert len(pieces) > 10  # audio comes out as the bytes arrive
    np.testing.assert_array_equal(np.concatenate(pieces), np.concatenate(whole))
    assert_is_the_tone(np.concatenate(pieces))
    assert decoder.bad_packets == 0

    size = 10 + (tone_mp3[6] << 21 | tone_mp3[7] << 14 | tone_mp3[8] << 7 | tone_mp3[9])
    bare, _ = decode(tone_mp3[size:], sizes=(4096,))  # a stream without a tag (what Edge sends)
    np.testing.assert_array_equal(np.concatenate(bare), np.concatenate(whole))


def test_edge_engine_streams_decodes_and_cancels(tone_mp3, monkeypatch):
    """The service is replaced by a local async source of the MP3 (see the module docstring)."""
    from jarvis.speak.edge_engine import EdgeEngine
    state = {"sent": 0, "finished": False, "cancelled": False}

    async def messages(self, text):
        try:
            for at in range(0, len(tone_mp3), 777):
                await asyncio.sleep(0.005)
                state["sent"] += 1
                yield tone_mp3[at:at + 777]
            state["finished"] = True
        except asyncio.CancelledError:
            state["cancelled"] = True
            raise

    monkeypatch.setattr(EdgeEngine, "_messages", messages)
    engine = EdgeEngine()
    engine.load()
    engine.warmup()
    out = list(engine.synthesize("A tone, please."))
    assert state["finished"] and len(out) > 3
    assert_is_the_tone(np.concatenate(out))
    whole, _ = decode(tone_mp3, sizes=(len(tone_mp3),))
    np.testing.assert_array_equal(np.concatenate(out), np.concatenate(whole))

    state.update(sent=0, finished=False)
    cancel = threading.Event()
    got = []
    for chunk in engine.synthesize("Stop early.", cancel):
        got.append(chunk)
        cancel.set()
    deadline = time.monotonic() + 2
    while not state["cancelled"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(got) == 1 and state["cancelled"] and not state["finished"]
    engine.close()
    assert engine._thread is None
