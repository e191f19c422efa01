"""The model host: one Qt-free owner of every ML model (STT, speaker encoder, TTS, the local LLM).

It preloads and warms everything at start so the first command is as fast as the tenth,
reports load progress, and hands the loaded parts to the pipeline. The tray app runs it in a
QThread; the CLI runs it directly. With ``serve.enabled`` it also serves those same models to other apps
(``jarvis.serve``): one copy of each, the voice loop ahead of every request (``scheduler``).
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from jarvis import events
from jarvis.config import Settings

log = logging.getLogger(__name__)

PRESSURE_POLL_S = 5.0
Progress = Callable[[str, str], None]  # (part, "loading" | "ready" | "failed: reason")


class ModelHost:
    def __init__(self, settings: Settings, bus: events.EventBus, progress: Progress | None = None):
        self.settings = settings
        self.bus = bus
        self.progress = progress or (lambda part, state: log.info("%s: %s", part, state))
        self.listener = None
        self.encoder = None
        self.identifier = None
        self.tts = None
        self.llm = None                 # the brain's backend (jarvis.brain.backends); None when off or failed
        self.llm_failure = None         # LlmFailure saying why the LLM is unavailable
        self.load_seconds: dict[str, float] = {}
        self._tts_lock = threading.Lock()
        self._tts_users: dict = {}      # TTS chain -> replies speaking with it
        self._brain_loaded = False      # load_brain() ran (the LLM is ready, off or failed)
        self._encoder_lock = threading.Lock()
        from jarvis.pressure import MemoryPressure
        from jarvis.serve.scheduler import Scheduler

        # GPU memory over settings.gpu.memory_limit: free caches, load nothing large, tell the user (a simulated
        # source in the tests; polled only where there is a GPU).
        self.pressure = MemoryPressure(self.gpu_memory, self.free_gpu_memory, self._pressure_changed,
                                       settings.gpu.memory_limit)
        self.scheduler = Scheduler(pressure=self.pressure)  # the voice loop goes ahead of the speech server
        self.transcriber = None         # Whisper in this process, the listener's and the speech server's (serve on)
        self.serving = None             # jarvis.serve.server.Serving while the speech server runs
        self._serving_for = None        # the ServeSettings it runs with
        self._serve_failed = False      # the last start failed (said with a degraded event)
        self.placement = None           # jarvis.placement.Placement: where the models go (made at load)

    def speaker_encoder(self):
        """The one speaker encoder, for the voice loop and the windows (enrollment, identification) alike; made
        on first use and loaded by its first embedding when the voice loop has not loaded it yet."""
        from jarvis.speakers.encoder import SpeakerEncoder

        with self._encoder_lock:
            if self.encoder is None:
                self.encoder = SpeakerEncoder(self.placed("speaker_encoder") or "cpu")
            return self.encoder

    def place(self):
        """Decide where the models go on this machine's GPUs (``jarvis.placement``; none: everything on the CPU)."""
        from jarvis.placement import gpus_here, plan

        self.placement = plan(self.settings, gpus_here())
        for note in self.placement.notes:
            log.warning("placement: %s", note)
        if self.placement.device:
            log.info("placement: %s", ", ".join(f"{m} on {d} ({self.placement.precision[m]})"
                                                for m, d in self.placement.device.items()))
        return self.placement

    def placed(self, model: str) -> str | None:
        """The device the placement chose for ``model`` ("cuda:N" / "cpu"); None: not placed (set by hand)."""
        return self.placement.device.get(model) if self.placement is not None else None

    def place_tts(self, chain):
        """Tell the chain's CSM (before it loads) the GPU the placement chose for it; a chain with CSM that the last
        placement did not have (new voice settings) gets its place now, where there is room left."""
        state = chain.engine_state("csm")
        if state is None or not hasattr(state[0], "placed_device"):
            return chain
        device = self.placed("csm")
        if device is None and chain.settings is not None:
            import copy

            from jarvis.placement import gpus_here, plan

            settings = copy.copy(self.settings)
            settings.tts = chain.settings
            device = plan(settings, gpus_here()).device.get("csm")
        state[0].placed_device = device
        return chain

    @contextlib.contextmanager
    def tts_for_reply(self):
        """The TTS chain for one reply, kept open until the reply ends even if the settings replace it meanwhile."""
        with self._tts_lock:
            chain = self.tts
            self._tts_users[chain] = self._tts_users.get(chain, 0) + 1
        try:
            yield chain
        finally:
            with self._tts_lock:
                self._tts_users[chain] -= 1
                retired = self._tts_users[chain] == 0 and chain is not self.tts and chain is not None
                if self._tts_users[chain] == 0:
                    del self._tts_users[chain]
            if retired:
                chain.close()

    @contextlib.contextmanager
    def voice_preview(self, draft, bus: events.EventBus):
        """A TTS chain for draft voice settings (``jarvis.speak.preview``): it borrows the loaded engines (the loaded
        chain stays open meanwhile, as for a reply) and closes what it made for the preview alone."""
        from jarvis.speak.preview import preview_chain

        with self.tts_for_reply() as loaded:
            chain, made = preview_chain(loaded, draft, bus)
            try:
                yield chain
            finally:
                for engine in made:
                    engine.close()

    def replace_tts(self, chain) -> None:
        """Use ``chain`` (loaded) from the next reply on. The one it replaces is closed now, or, when a reply is
        speaking with it, once that reply ends: a change in the settings never cuts a sentence."""
        with self._tts_lock:
            previous, self.tts = self.tts, chain
            in_use = self._tts_users.get(previous, 0) > 0
        if previous is not None and previous is not chain and not in_use:
            previous.close()

    def load(self, on_wake: Callable[[], None] | None = None) -> None:
        """Load and warm the listener, speaker encoder, TTS chain and LLM in parallel.

        Raises the first part's error (``NotAvailable``/``BadInput``) if a required part fails;
        TTS engines that fail individually only degrade the chain, and a failed LLM leaves the
        skills working (each open question then gets a spoken apology).
        """
        from jarvis.listen.listener import Listener
        from jarvis.speak.chain import TtsChain
        from jarvis.speakers.identify import Identifier
        from jarvis.speakers.store import SpeakerStore

        def listen() -> None:
            self.listener.load()
            self.listener.warmup()

        def speakers() -> None:
            self.encoder.load()
            self.encoder.warmup()

        def tts() -> None:
            self.tts.load(progress=lambda engine, state: self.progress(f"tts:{engine}",
                                                                      self._placed(f"tts:{engine}", state)))

        # Parts kept from before a restart (``release_for``) stay loaded: only what is missing loads.
        self.place()
        shared = None
        if self.settings.serve.enabled:  # one Whisper for the listener and the speech server, in this process
            from jarvis.listen.shared_stt import SharedTranscription

            shared = SharedTranscription(self.shared_transcriber(), self.scheduler)
        self.listener = Listener(self.settings.listen, self.bus, on_wake=on_wake, shared_stt=shared,
                                 placed_device=self.placed("whisper"))
        parts: dict[str, Callable[[], str | None]] = {"listen": listen}
        if self.encoder is None or not self.encoder.loaded:
            self.speaker_encoder()
            parts["speakers"] = speakers
        if self.tts is None:
            self.tts = self.place_tts(TtsChain.from_settings(self.settings.tts, self.bus))
            parts["tts"] = tts
        if not self._brain_loaded:
            parts["brain"] = self.load_brain
        self.identifier = Identifier(SpeakerStore(), self.encoder, self.settings.speakers.threshold)
        with ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix="load") as pool:
            futures = {name: pool.submit(self._timed, name, fn) for name, fn in parts.items()}
            errors = [f.exception() for f in futures.values() if f.exception() is not None]
        if errors:
            self.close()
            raise errors[0]
        gpus = self.gpu_memory()
        for gpu in gpus:
            log.info("GPU %s: %s used of %s (this process %s, its children %s)", gpu["name"],
                     _gib(gpu["used_bytes"]), _gib(gpu["total_bytes"]), _gib(gpu["process_bytes"]),
                     _gib(gpu["children_bytes"]))
        if gpus:
            self.pressure.start(PRESSURE_POLL_S)

    def release_for(self, new: Settings) -> list[str]:
        """Before the voice loop restarts with ``new`` settings (audio or listening changed): close the listener
        and every part whose own settings changed; the rest stays loaded for the next ``load()``, so a new
        microphone does not reload CSM or the LLM. Returns the parts kept."""
        from jarvis.brain.backends import backend_fields

        if self.listener is not None:
            self.listener.close()
            self.listener = None
        if self.transcriber is not None and (not new.serve.enabled
                                             or _whisper_fields(new.listen) != _whisper_fields(self.settings.listen)):
            self.stop_serving()     # it serves with this Whisper: the next start serves with the new one, if any
            self.transcriber = None  # (the server switched off: the listener's own worker process hears again)
        if self.tts is not None and new.tts != self.settings.tts:
            self.tts.close()
            self.tts = None
        if self._brain_loaded and backend_fields(new.brain) != backend_fields(self.settings.brain):
            if self.llm is not None:
                self.llm.close()
            self.llm, self.llm_failure, self._brain_loaded = None, None, False
        self.settings = new
        return [name for name, kept in (("speakers", self.encoder is not None), ("tts", self.tts is not None),
                                        ("brain", self._brain_loaded)) if kept]

    def shared_transcriber(self):
        """The in-process Whisper the listener and the speech server share (made here, loaded on first use)."""
        from jarvis.listen.stt import Transcriber

        if self.transcriber is None:
            self.transcriber = Transcriber(self.settings.listen, placed=self.placed("whisper"))
        return self.transcriber

    def serve(self, settings) -> None:
        """Run the speech server as ``settings`` (``ServeSettings``) say: start it, restart it with new ones, or
        stop it. One that cannot start (port taken, no keyring for the token) is one ``degraded`` line: the
        assistant goes on without it."""
        if self.serving is not None and settings == self._serving_for:
            return
        self.stop_serving()
        if not settings.enabled:
            return
        import copy

        from jarvis import paths
        from jarvis.errors import JarvisError
        from jarvis.serve.server import Serving
        from jarvis.serve.service import SpeechService
        from jarvis.serve.voices import VoiceStore
        from jarvis.serve.wyoming_server import ASR_PORT, TTS_PORT

        service = SpeechService(_LoadedVoices(self), self.shared_transcriber(), self.settings.listen.stt_model,
                                VoiceStore(paths.data_dir() / "server_voices"))
        serving = Serving(service, self.scheduler, settings.host, settings.port,
                          (TTS_PORT, ASR_PORT) if settings.wyoming else None)
        try:
            serving.start()
        except Exception as exc:  # noqa: BLE001 - whatever stops the server must not stop the assistant
            why = exc.message if isinstance(exc, JarvisError) else f"{type(exc).__name__}: {exc}"
            reason = f"The speech server is off: {why}"
            log.warning("%s", reason)
            self._serve_failed = True
            self.bus.emit(events.Degraded(engine="speech_server", reason=reason))
            return
        self.serving, self._serving_for = serving, copy.deepcopy(settings)
        if self._serve_failed:
            self._serve_failed = False
            self.bus.emit(events.Recovered(engine="speech_server",
                                           message=f"The speech server is on: {settings.host}:{settings.port}."))

    def free_gpu_memory(self) -> None:
        """Under GPU memory pressure: CSM's cached voice prompts and torch's cache go (they are made again as
        needed)."""
        import sys

        chain = self.tts
        state = chain.engine_state("csm") if chain is not None else None
        if state is not None and hasattr(state[0], "free_memory"):
            state[0].free_memory()
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _pressure_changed(self, state: str, message: str) -> None:
        if state == "pressure":
            self.bus.emit(events.Degraded(engine="gpu_memory", reason=message))
        else:
            self.bus.emit(events.Recovered(engine="gpu_memory", message=message))

    def stop_serving(self) -> None:
        serving, self.serving, self._serving_for = self.serving, None, None
        if serving is not None:
            serving.stop()

    @staticmethod
    def gpu_memory() -> list[dict]:
        """Per NVIDIA GPU: device-wide use (torch once CUDA is up, else NVML) and, from NVML, this
        process's and its children's share (RealtimeSTT's Whisper worker is a child). ``[]`` without a GPU."""
        from jarvis.devices import gpu_memory
        return gpu_memory()

    def load_brain(self, settings=None) -> str:
        """(Re)load the LLM backend named by ``settings`` (a ``BrainSettings``); never raises.

        Returns the state for progress: "ready", "off" or "failed: why"."""
        from jarvis.brain import backends

        previous, self.llm, self.llm_failure = self.llm, None, None
        if previous is not None:
            previous.close()
        self.llm, self.llm_failure = backends.load(settings or self.settings.brain)
        self._brain_loaded = True
        if self.llm_failure is not None:
            self.bus.emit(events.Degraded(engine="llm", reason=self.llm_failure.message))
            return f"failed: {self.llm_failure.message}"
        return "ready" if self.llm is not None else "off"

    def where(self, part: str) -> str:
        """Where a loaded part runs ("cpu (int8)", "cuda:0 (bfloat16, CUDA graphs)", …); "" when not known."""
        if part == "listen" and self.listener is not None:
            return self.listener.stt_placement
        if part == "speakers" and self.encoder is not None:
            return str(self.encoder.device)
        if part.startswith("tts:") and self.tts is not None:
            state = self.tts.engine_state(part[4:])
            return state[0].placement if state is not None else ""
        return ""

    def _placed(self, part: str, state: str) -> str:
        """A "ready" progress state says where the part runs: "ready on cpu (int8)"."""
        where = self.where(part) if state == "ready" else ""
        return f"ready on {where}" if where else state

    def _timed(self, name: str, fn: Callable[[], None]) -> None:
        self.progress(name, "loading")
        start = time.monotonic()
        try:
            state = self._placed(name, fn() or "ready")
        except Exception as exc:
            self.progress(name, f"failed: {exc}")
            raise
        self.load_seconds[name] = time.monotonic() - start
        self.progress(name, state)

    def close(self) -> None:
        self.stop_serving()
        self.pressure.stop()
        if self.llm is not None:
            self.llm.close()
        if self.listener is not None:
            self.listener.close()
        if self.tts is not None:
            self.tts.close()
        self.llm = self.listener = self.tts = self.encoder = self.transcriber = None
        self._brain_loaded = False


class _LoadedVoices:
    """The host's TTS chain as it is now (Settings may replace it), for the speech server."""

    def __init__(self, host: ModelHost):
        self._host = host

    def __getattr__(self, name: str):
        return getattr(self._host.tts, name)


def _whisper_fields(listen) -> tuple:
    return listen.stt_model, listen.stt_device, listen.stt_compute_type, listen.beam_size, listen.language


def _gib(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 2**30:.2f} GiB"
