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
from jarvis.errors import BadInput
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


def serve(settings: Settings, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          ready: threading.Event | None = None, stop: threading.Event | None = None,
          wyoming_ports: tuple[int, int] | None = None) -> int:
    """Run until interrupted (or ``stop`` is set); ``ready`` is set once requests are answered.
    ``wyoming_ports`` (TTS, ASR): also serve Home Assistant's Wyoming protocol there."""
    import uvicorn

    from jarvis.serve.app import create_app

    check_address(host, port)
    for wyoming_port in wyoming_ports or ():
        check_address(host, wyoming_port)
    token = security.api_token(create=True)     # NotAvailable (no keyring, no JARVIS_API_TOKEN): refuse to start
    if not security.is_loopback(host):
        log.warning("The speech server is exposed on %s:%d: anyone who can reach this address and knows the token "
                    "can use Jarvis's voices and speech recognition. Keep it on a network you trust.", host, port)
    bus = events.EventBus()
    service, tts = build(settings, bus, progress=lambda line: log.info("serve: %s", line))
    from jarvis.devices import gpu_memory
    from jarvis.pressure import MemoryPressure

    scheduler = Scheduler(pressure=MemoryPressure(gpu_memory, free_gpu_caches))
    app = create_app(service, scheduler, token, host, gpu_status=gpu_status)
    config = uvicorn.Config(app, host=host, port=int(port), log_level="warning", access_log=False,
                            server_header=False, date_header=False)
    server = uvicorn.Server(config)
    wyoming = None
    if wyoming_ports:
        from jarvis.serve.wyoming_server import WyomingServers

        wyoming = WyomingServers(service, scheduler, host, *wyoming_ports)
        wyoming.start()
    if stop is not None:
        threading.Thread(target=lambda: (stop.wait(), setattr(server, "should_exit", True)), daemon=True).start()
    if ready is not None:
        threading.Thread(target=_when_started, args=(server, ready), daemon=True).start()
    try:
        server.run()
    finally:
        if wyoming is not None:
            wyoming.stop()
        tts.close()
    return 0 if server.started else 3


def _when_started(server, ready: threading.Event) -> None:
    import time

    while not server.started and not server.should_exit:
        time.sleep(0.05)
    if server.started:
        ready.set()
