"""`jarvis bench serve`: the speech server under load, and its answers to bad requests (issue 15).

Starts ``jarvis serve`` as a child process on a free loopback port (its own throwaway Jarvis folder, Piper then
espeak-ng as the TTS chain, a random token through ``JARVIS_API_TOKEN``), then:

- **load**: ``--clients`` threads each ask for speech (``response_format=pcm``, sentences from ``SENTENCES`` in
  turn) back to back for ``--seconds``; time to the first audio byte and to the last, status codes, audio seconds
  made; the server's RSS every second. Loopback only, and it stops by itself.
- **security**: ``BAD_REQUESTS``, each with the status it must get, and a check that the server's folder holds
  the same files afterwards (nothing stored).

Not measured here: the voice loop's own first audio under this load (the tray's "Speech server" switch, which
serves from the voice loop's process, is not built yet).
"""
from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from jarvis.bench.stats import command, cpu_count, date, hardware, memory_gb, stats_ms, versions, write_json
from jarvis.serve.audio_in import multipart

SENTENCES = ["What time is it?", "The weather tomorrow will be sunny with a light breeze.",
             "Your timer for five minutes has started.", "Here is a short story about a dragon who loved books.",
             "I could not find that in your calendar.", "Good morning! You have two meetings today."]
DISTS = ("fastapi", "uvicorn", "piper-tts", "faster-whisper", "numpy")


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``jarvis serve`` in a child process with its own folder; ``stop()`` ends it."""

    def __init__(self, engines: list[str] | None = None):
        self.home = Path(tempfile.mkdtemp(prefix="jarvis-bench-serve-"))
        (self.home / "config").mkdir()
        (self.home / "config" / "settings.json").write_text(json.dumps(
            {"schema_version": 3, "preset": "custom", "tts": {"engines": engines or ["piper", "system"]}}))
        self.port = free_port()
        self.token = secrets.token_urlsafe(32)
        self.log = self.home / "serve.log"
        env = {**os.environ, "JARVIS_HOME": str(self.home), "JARVIS_API_TOKEN": self.token}
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "jarvis", "serve", "--port", str(self.port)],
                                         env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + 180
        while self.request("GET", "/health")[0] != 200:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log.read_text(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"jarvis serve did not start: {tail}")
            time.sleep(0.5)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                token: str | None = "default", read: bool = True) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            hdrs = dict(headers or {})
            if token is not None:
                hdrs.setdefault("Authorization", f"Bearer {self.token if token == 'default' else token}")
            connection.request(method, path, body=body, headers=hdrs)
            response = connection.getresponse()
            return response.status, response.read() if read else b""
        except OSError:
            return 0, b""
        finally:
            connection.close()

    def rss_mb(self) -> float | None:
        try:
            import psutil
            return psutil.Process(self.proc.pid).memory_info().rss / 2**20
        except Exception:
            return None

    def files(self) -> dict[str, int]:
        return {str(p.relative_to(self.home)): p.stat().st_size for p in self.home.rglob("*")
                if p.is_file() and p != self.log and "logs" not in p.parts}

    def stop(self) -> None:
        """End the server and remove its folder (settings, log, anything it stored)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.home, ignore_errors=True)


def speech(server: ServerProcess, text: str) -> dict:
    """One streamed speech request: status, time to the first audio byte and to the last, audio seconds."""
    body = json.dumps({"model": "tts-1", "input": text, "voice": "jarvis", "response_format": "pcm"}).encode()
    start = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        connection.request("POST", "/v1/audio/speech", body=body, headers={
            "Authorization": f"Bearer {server.token}", "Content-Type": "application/json"})
        response = connection.getresponse()
        first, size = None, 0
        while chunk := response.read1(65536):
            first = first if first is not None else time.monotonic() - start
            size += len(chunk)
        return {"status": response.status, "first_byte_s": first, "total_s": time.monotonic() - start,
                "audio_s": size / 2 / 24000 if response.status == 200 else 0.0}
    except OSError as exc:
        return {"status": 0, "error": str(exc), "first_byte_s": None, "total_s": time.monotonic() - start,
                "audio_s": 0.0}
    finally:
        connection.close()


def load(server: ServerProcess, clients: int, seconds: float) -> dict:
    results: list[dict] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    rss: list[float] = []

    def client(k: int) -> None:
        n = k
        while time.monotonic() < stop_at:
            result = speech(server, SENTENCES[n % len(SENTENCES)])
            n += 1
            with lock:
                results.append(result)

    def sample() -> None:
        while time.monotonic() < stop_at:
            value = server.rss_mb()
            if value is not None:
                rss.append(value)
            time.sleep(1.0)

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    threads.append(threading.Thread(target=sample, daemon=True))
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 130)
    elapsed = time.monotonic() - started
    ok = [r for r in results if r["status"] == 200]
    statuses: dict[str, int] = {}
    for r in results:
        statuses[str(r["status"])] = statuses.get(str(r["status"]), 0) + 1
    return {"clients": clients, "seconds": round(elapsed, 1), "requests": len(results), "ok": len(ok),
            "errors": len(results) - len(ok), "statuses": statuses,
            "first_audio_byte": stats_ms([r["first_byte_s"] for r in ok if r["first_byte_s"] is not None], 1),
            "whole_reply": stats_ms([r["total_s"] for r in ok], 1),
            "requests_per_s": round(len(ok) / elapsed, 2),
            "audio_s_per_s": round(sum(r["audio_s"] for r in ok) / elapsed, 2),
            "rss_mb": {"first": round(rss[0], 1) if rss else None, "last": round(rss[-1], 1) if rss else None,
                       "max": round(max(rss), 1) if rss else None,
                       # flat or not: the second half's growth (the first requests warm Piper's arenas up)
                       "second_half_growth": round(rss[-1] - rss[len(rss) // 2], 1) if len(rss) > 3 else None,
                       "every_5_s": [round(v, 1) for v in rss[::5]]}}


def bad_requests(port: int) -> list[tuple[str, str, str, dict, bytes | None, str | None, int]]:
    """(what, method, path, headers, body, token, expected status); token "default" = the right one."""
    j = {"Content-Type": "application/json"}

    def speak(**fields) -> bytes:
        return json.dumps({"model": "tts-1", "input": "Hello.", "voice": "jarvis", **fields}).encode()

    upload, form = multipart({"model": "whisper-1"}, "../../../etc/passwd", b"not audio" * 100)
    traversal, form2 = multipart({"model": "whisper-1"}, "..\\..\\x.wav", b"RIFF....WAVEfmt ")
    empty, form3 = multipart({"model": "whisper-1"}, "empty.wav", b"")
    no_file, form4 = multipart({"model": "whisper-1", "response_format": "json"}, "", b"")
    evil_voice, form5 = multipart({"name": "../../config/settings"}, "prompt.wav", b"RIFF" + b"\0" * 100)
    return [
        ("no token", "GET", "/v1/models", {}, None, None, 401),
        ("wrong token", "GET", "/v1/models", {}, None, "x" * 43, 401),
        ("token not as Bearer", "GET", "/v1/models", {"Authorization": "Basic dXNlcjpwYXNz"}, None, None, 401),
        ("foreign Host (DNS rebinding)", "GET", "/v1/models", {"Host": f"evil.example:{port}"}, None, "default", 403),
        ("foreign Host, no token", "GET", "/v1/models", {"Host": "evil.example"}, None, None, 403),
        ("speech body over 64 KB", "POST", "/v1/audio/speech", j, b"{" + b" " * 70000 + b"}", "default", 413),
        ("input over 4096 characters", "POST", "/v1/audio/speech", j, speak(input="word " * 1000), "default", 413),
        ("not JSON", "POST", "/v1/audio/speech", j, b"input=hello", "default", 422),
        ("JSON without input", "POST", "/v1/audio/speech", j, b'{"model": "tts-1"}', "default", 422),
        ("empty input", "POST", "/v1/audio/speech", j, speak(input="   "), "default", 400),
        ("unknown voice", "POST", "/v1/audio/speech", j, speak(voice="nobody"), "default", 400),
        ("path-traversal voice name", "POST", "/v1/audio/speech", j, speak(voice="../../etc/passwd"), "default", 400),
        ("unknown model", "POST", "/v1/audio/speech", j, speak(model="tts-9"), "default", 400),
        ("unknown response format", "POST", "/v1/audio/speech", j, speak(response_format="exe"), "default", 400),
        ("speed out of range", "POST", "/v1/audio/speech", j, speak(speed=100), "default", 422),
        ("input not a string", "POST", "/v1/audio/speech", j, speak(input=["a", "b"]), "default", 422),
        ("upload that is not audio, traversal name", "POST", "/v1/audio/transcriptions",
         {"Content-Type": form}, upload, "default", 400),
        ("truncated WAV, Windows traversal name", "POST", "/v1/audio/transcriptions",
         {"Content-Type": form2}, traversal, "default", 400),
        ("empty upload", "POST", "/v1/audio/transcriptions", {"Content-Type": form3}, empty, "default", 400),
        ("transcription without a file", "POST", "/v1/audio/transcriptions", {"Content-Type": form4}, no_file,
         "default", 422),
        ("transcription as JSON", "POST", "/v1/audio/transcriptions", j, b'{"file": "x"}', "default", 422),
        ("upload over 25 MB (declared)", "POST", "/v1/audio/transcriptions",
         {"Content-Type": form, "Content-Length": str(26 * 2**20)}, b"", "default", 413),
        ("voice prompt with a path-traversal id", "POST", "/v1/audio/voices", {"Content-Type": form5}, evil_voice,
         "default", 400),
        ("delete a voice by a path-traversal id", "DELETE", "/v1/audio/voices/..%2F..%2Fconfig%2Fsettings", {}, None,
         "default", 404),
        ("voice mapping with a path-traversal id", "PUT", "/v1/audio/voice-mappings/..%2Fx", j,
         b'{"engine": "piper"}', "default", 404),
        ("voice mapping with an id that is not a name", "PUT", "/v1/audio/voice-mappings/Bad%20Name", j,
         b'{"engine": "piper"}', "default", 400),
        ("voice mapping that is not an object", "PUT", "/v1/audio/voice-mappings/x", j, b'["piper"]', "default",
         422),
        ("unknown route", "GET", "/admin", {}, None, "default", 404),
        ("path traversal in the route", "GET", "/v1/models/..%2F..%2Fetc%2Fpasswd", {}, None, "default", 404),
        ("wrong method", "DELETE", "/v1/models", {}, None, "default", 405),
    ]


def security(server: ServerProcess) -> dict:
    before = server.files()
    rows = []
    for what, method, path, headers, body, token, expected in bad_requests(server.port):
        if "Content-Length" in headers:   # a declared size the server must refuse before reading
            status, text = _declared_only(server, method, path, headers)
        else:
            status, text = server.request(method, path, body=body, headers=headers, token=token)
        try:
            answer = json.loads(text)["error"] if text else {}
        except (ValueError, KeyError, TypeError):
            answer = {"message": text[:80].decode(errors="replace"), "code": "not JSON"}
        rows.append({"request": what, "status": status, "expected": expected, "ok": status == expected,
                     "code": answer.get("code"), "message": answer.get("message")})
    after = server.files()
    return {"requests": rows, "all_as_expected": all(r["ok"] for r in rows), "nothing_stored": before == after,
            "files_before": len(before), "files_after": len(after)}


def _declared_only(server: ServerProcess, method: str, path: str, headers: dict) -> tuple[int, bytes]:
    """Headers only, no body: the answer must come from the declared size alone."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.putrequest(method, path)
        for name, value in {**headers, "Authorization": f"Bearer {server.token}"}.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def add_arguments(parser) -> None:
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the load runs (default 60)")
    parser.add_argument("--out", metavar="FILE.json", help="also write the result as JSON")


def main(args, settings) -> int:
    from jarvis.errors import BadInput

    if args.clients < 1 or args.seconds <= 0:
        raise BadInput("bad_bench", "--clients must be at least 1 and --seconds above 0.")
    print(f"starting jarvis serve (Piper, loopback) for {args.clients} clients x {args.seconds:g} s ...",
          file=sys.stderr, flush=True)
    server = ServerProcess()
    try:
        idle = speech(server, SENTENCES[0])        # one request alone first: the unloaded figure
        result = {"date": date(), "hardware": hardware(), "cpu_count": cpu_count(), "memory_gb": memory_gb(),
                  "command": command(), "versions": versions(DISTS), "engines": ["piper", "system"],
                  "alone": {"first_audio_byte_ms": round(idle["first_byte_s"] * 1000, 1)
                            if idle["first_byte_s"] else None, "status": idle["status"]},
                  "load": load(server, args.clients, args.seconds),
                  "security": security(server),
                  "not_measured": "the voice loop's first audio under this load (the tray's speech server "
                                  "switch is not built yet)"}
    finally:
        server.stop()
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        write_json(args.out, result)
    ok = result["load"]["errors"] == 0 and result["security"]["all_as_expected"] and result["security"]["nothing_stored"]
    return 0 if ok else 1
