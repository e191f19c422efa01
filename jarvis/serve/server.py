"""``jarvis serve``: load and warm the TTS chain and Whisper once, then serve them with uvicorn.

Loopback (127.0.0.1:8844) unless told otherwise. Exposed on another address it warns as Home Assistant's own
servers do, and it never starts without a token (keyring or ``JARVIS_API_TOKEN``).
"""
from __future__ import annotations

import logging
import sys
import threading

import numpy as np

from jarvis import events
from jarvis.config import Settings
from jarvis.errors import BadInput, NotAvailable
from jarvis.serve import security
from jarvis.serve.scheduler import Scheduler
from jarvis.serve.service import SpeechService

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8844


def gpu_status() -> list[dict]:
    from jarvis.devices import gpu_memory

    return [{"index": g.get("index"), "name": g.get("name"), "memory_used_bytes": g.get("used_bytes"),
             "memory_total_bytes": g.get("total_bytes"), "process_bytes": g.get("process_bytes")}
            for g in gpu_memory()]


def free_gpu_caches() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def check_address(host: str, port: int) -> None:
    """The address can be listened on (checked before the models load); BadInput with what to do."""
    import socket

    if not 1 <= int(port) <= 65535:
        raise BadInput("bad_port", f"Port {port} is not between 1 and 65535.")
    if not host.strip():
        raise BadInput("bad_host", "Give an address to listen on, e.g. --host 127.0.0.1.")
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise BadInput("bad_host", f"{host} is not an address of this machine ({exc.strerror}); use e.g. "
                                   "--host 127.0.0.1.") from exc
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise BadInput("address_in_use", f"Cannot listen on {host}:{port} ({exc.strerror}): another program "
                                             "(or jarvis serve) uses it; pick another with --port.") from exc


def build(settings: Settings, bus: events.EventBus, progress=print) -> tuple[SpeechService, "object"]:
    """The warmed models: (service, tts chain) — the caller closes the chain."""
    from jarvis.listen.stt import Transcriber
    from jarvis.speak.chain import TtsChain

    tts = TtsChain.from_settings(settings.tts, bus)
    tts.load(progress=lambda engine, state: progress(f"tts:{engine}: {state}"))
    transcriber = Transcriber(settings.listen)
    transcriber.load()
    transcriber.transcribe(np.zeros(16000, np.float32))   # warm: the first request is not slower
    progress(f"stt: {settings.listen.stt_model} ready")
    from jarvis import paths
    from jarvis.serve.voices import VoiceStore

    store = VoiceStore(paths.data_dir() / "server_voices")
    return SpeechService(tts, transcriber, settings.listen.stt_model, store), tts


class Serving:
    """The OpenAI speech API (uvicorn) and, with ``wyoming_ports`` (TTS, ASR), Home Assistant's Wyoming protocol,
    serving ``service`` through ``scheduler``. ``run()`` blocks (``jarvis serve``); ``start()`` serves from a thread
    and returns once requests are answered (the tray's switch), ``stop()`` ends it. Either refuses a bad address
    or a missing token (BadInput / NotAvailable) before serving anything."""

    def __init__(self, service: SpeechService, scheduler: Scheduler, host: str = DEFAULT_HOST,
                 port: int = DEFAULT_PORT, wyoming_ports: tuple[int, int] | None = None):
        self.service, self.scheduler, self.host, self.port = service, scheduler, host, int(port)
        self.wyoming_ports = wyoming_ports
        self.server = None      # uvicorn.Server
        self._wyoming = None
        self._thread: threading.Thread | None = None

    def _prepare(self) -> None:
        import uvicorn

        from jarvis.serve.app import create_app

        check_address(self.host, self.port)
        for wyoming_port in self.wyoming_ports or ():
            check_address(self.host, wyoming_port)
        token = security.api_token(create=True)  # NotAvailable (no keyring, no JARVIS_API_TOKEN): refuse to start
        if not security.is_loopback(self.host):
            log.warning("The speech server is exposed on %s:%d: anyone who can reach this address and knows the "
                        "token can use Jarvis's voices and speech recognition. Keep it on a network you trust.",
                        self.host, self.port)
        app = create_app(self.service, self.scheduler, token, self.host, gpu_status=gpu_status)
        config = uvicorn.Config(app, host=self.host, port=self.port, log_level="warning", access_log=False,
                                server_header=False, date_header=False)
        self.server = uvicorn.Server(config)
        if self.wyoming_ports:
            from jarvis.serve.wyoming_server import WyomingServers

            self._wyoming = WyomingServers(self.service, self.scheduler, self.host, *self.wyoming_ports)
            self._wyoming.start()

    def run(self, ready: threading.Event | None = None, stop: threading.Event | None = None) -> bool:
        """Serve until Ctrl-C (in the main thread) or ``stop`` is set; ``ready`` is set once requests are
        answered. True if it served."""
        self._prepare()
        if stop is not None:
            threading.Thread(target=lambda: (stop.wait(), setattr(self.server, "should_exit", True)),
                             daemon=True).start()
        if ready is not None:
            threading.Thread(target=_when_started, args=(self.server, ready), daemon=True).start()
        try:
            self.server.run()
        finally:
            self._stop_wyoming()
        return bool(self.server.started)

    def start(self, timeout_s: float = 15.0) -> None:
        import time

        self._prepare()
        self._thread = threading.Thread(target=self._serve_in_thread, name="speech-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self.server.started:
            self.stop()
            raise NotAvailable("serve_failed", f"The speech server did not start on {self.host}:{self.port}; "
                                               "see the log, or pick another port.")
        log.info("speech server on http://%s:%d/v1%s", self.host, self.port,
                 f", Wyoming on {self.wyoming_ports}" if self.wyoming_ports else "")

    def _serve_in_thread(self) -> None:
        try:
            self.server.run()
        except BaseException:  # noqa: BLE001 - uvicorn exits on a failed bind; start() reports it
            log.exception("speech server stopped")

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._stop_wyoming()

    def _stop_wyoming(self) -> None:
        wyoming, self._wyoming = self._wyoming, None
        if wyoming is not None:
            wyoming.stop()


def serve(settings: Settings, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          ready: threading.Event | None = None, stop: threading.Event | None = None,
          wyoming_ports: tuple[int, int] | None = None) -> int:
    """Run until interrupted (or ``stop`` is set); ``ready`` is set once requests are answered.
    ``wyoming_ports`` (TTS, ASR): also serve Home Assistant's Wyoming protocol there."""
    check_address(host, port)     # before the models load: a bad address or a missing token is said at once
    for wyoming_port in wyoming_ports or ():
        check_address(host, wyoming_port)
    security.api_token(create=True)
    bus = events.EventBus()
    service, tts = build(settings, bus, progress=lambda line: log.info("serve: %s", line))
    try:
        served = Serving(service, new_scheduler(), host, port, wyoming_ports).run(ready, stop)
    finally:
        tts.close()
    return 0 if served else 3


def new_scheduler() -> Scheduler:
    """The one queue in front of the models, with the GPU memory-pressure monitor."""
    from jarvis.devices import gpu_memory
    from jarvis.pressure import MemoryPressure

    return Scheduler(pressure=MemoryPressure(gpu_memory, free_gpu_caches))


def _when_started(server, ready: threading.Event) -> None:
    import time

    while not server.started and not server.should_exit:
        time.sleep(0.05)
    if server.started:
        ready.set()
