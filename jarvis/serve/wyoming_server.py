"""Home Assistant's Wyoming protocol (PyPI ``wyoming``): Jarvis's voices and Whisper on the ports HA expects for
Piper (TTS, 10200) and faster-whisper (ASR, 10300).

Wyoming has no authentication at all, so these listen on loopback unless told otherwise, and exposing them gets
the warning Home Assistant's own add-ons give. Requests go through the same queue as the HTTP API (one model
copy, the voice loop first).
"""
from __future__ import annotations

import asyncio
import logging
import threading

import numpy as np

from jarvis.serve import audio_in, audio_out
from jarvis.serve.scheduler import Refused, Scheduler
from jarvis.serve.service import CHAIN_VOICE, SpeechService

log = logging.getLogger(__name__)

TTS_PORT = 10200
ASR_PORT = 10300
ATTRIBUTION = {"name": "Jarvis", "url": "https://github.com/"}


def info(service: SpeechService):
    from wyoming.info import AsrModel, AsrProgram, Attribution, Info, TtsProgram, TtsVoice

    by = Attribution(**ATTRIBUTION)
    voices = [TtsVoice(name=v["id"], description=v["description"], attribution=by, installed=True, version=None,
                       languages=["en"]) for v in service.voices()]
    model = AsrModel(name=service.stt_model or "whisper", description="Whisper (faster-whisper), warmed by Jarvis",
                     attribution=by, installed=True, version=None, languages=["en"])
    return Info(tts=[TtsProgram(name="jarvis-tts", description="Jarvis's TTS chain", attribution=by, installed=True,
                                version=None, voices=voices)],
                asr=[AsrProgram(name="jarvis-stt", description="Jarvis's Whisper", attribution=by, installed=True,
                                version=None, models=[model])])


def handler_factory(service: SpeechService, scheduler: Scheduler):
    from wyoming.asr import Transcribe, Transcript
    from wyoming.audio import AudioChunk, AudioChunkConverter, AudioStart, AudioStop
    from wyoming.error import Error
    from wyoming.info import Describe
    from wyoming.server import AsyncEventHandler
    from wyoming.tts import Synthesize

    described = info(service).event()

    class Handler(AsyncEventHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._converter = AudioChunkConverter(rate=audio_in.RATE, width=2, channels=1)
            self._audio = bytearray()
            self._language: str | None = None

        async def handle_event(self, event) -> bool:
            try:
                if Describe.is_type(event.type):
                    await self.write_event(described)
                elif Synthesize.is_type(event.type):
                    await self._synthesize(Synthesize.from_event(event))
                elif Transcribe.is_type(event.type):
                    self._language = Transcribe.from_event(event).language
                elif AudioStart.is_type(event.type):
                    self._audio.clear()
                elif AudioChunk.is_type(event.type):
                    self._audio += self._converter.convert(AudioChunk.from_event(event)).audio
                elif AudioStop.is_type(event.type):
                    samples = np.frombuffer(bytes(self._audio), "<i2").astype(np.float32) / 32768.0
                    self._audio.clear()
                    text = await asyncio.to_thread(self._run, service.transcribe, samples, self._language, None)
                    await self.write_event(Transcript(text=text).event())
                return True
            except Refused as exc:
                await self.write_event(Error(text=exc.message, code=exc.code).event())
            except Exception as exc:  # noqa: BLE001 - one line back to the client, the traceback to the log
                from jarvis.errors import JarvisError

                if not isinstance(exc, JarvisError):
                    log.exception("wyoming: %s failed", event.type)
                message = exc.message if isinstance(exc, JarvisError) else "Jarvis failed on this request."
                await self.write_event(Error(text=message, code=getattr(exc, "code", "internal_error")).event())
            return True

        async def _synthesize(self, request) -> None:
            voice = request.voice.name if request.voice is not None and request.voice.name else CHAIN_VOICE
            cancel = threading.Event()
            chunks = service.speak(request.text, voice, cancel)
            ticket = scheduler.admit()

            def audio():
                for _, rate, chunk in chunks:
                    yield rate, chunk
                    ticket.step()   # the voice loop goes first between chunks

            pcm = audio_out.encode(audio(), "pcm")
            try:
                await asyncio.to_thread(ticket.wait)
                await self.write_event(AudioStart(rate=audio_out.RATE, width=2, channels=1).event())
                while (part := await asyncio.to_thread(next, pcm, None)) is not None:
                    await self.write_event(AudioChunk(rate=audio_out.RATE, width=2, channels=1, audio=part).event())
                await self.write_event(AudioStop().event())
            finally:
                cancel.set()
                pcm.close()
                chunks.close()
                ticket.release()

        @staticmethod
        def _run(fn, *args):
            ticket = scheduler.admit()
            try:
                ticket.wait()
                return fn(*args)
            finally:
                ticket.release()

    return Handler


class WyomingServers:
    """The TTS and ASR servers on their own event loop thread; ``start()`` returns once both listen."""

    def __init__(self, service: SpeechService, scheduler: Scheduler, host: str = "127.0.0.1",
                 tts_port: int = TTS_PORT, asr_port: int = ASR_PORT):
        self.service, self.scheduler, self.host = service, scheduler, host
        self.ports = (tts_port, asr_port)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._servers: list = []
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        from wyoming.server import AsyncServer

        from jarvis.serve import security

        if not security.is_loopback(self.host):
            log.warning("Wyoming is exposed on %s (ports %d, %d): the protocol has no authentication, so anyone "
                        "who can reach this address can use Jarvis's voices and speech recognition. Keep it on a "
                        "network you trust.", self.host, *self.ports)
        ready, failure = threading.Event(), []
        factory = handler_factory(self.service, self.scheduler)

        async def main() -> None:
            try:
                for port in self.ports:
                    server = AsyncServer.from_uri(f"tcp://{self.host}:{port}")
                    await server.start(factory)
                    self._servers.append(server)
            except Exception as exc:  # noqa: BLE001 - handed to start()'s caller
                failure.append(exc)
            finally:
                ready.set()

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="wyoming", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(main(), self._loop)
        ready.wait(10)
        if failure:
            self.stop()
            from jarvis.errors import BadInput

            raise BadInput("address_in_use", f"Wyoming cannot listen on {self.host}:{self.ports} ({failure[0]}); "
                                             "pick other ports or stop what uses them.")
        log.info("wyoming: TTS on %s:%d, ASR on %s:%d", self.host, self.ports[0], self.host, self.ports[1])

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return

        async def close() -> None:
            for server in self._servers:
                await server.stop()     # its handlers, then its socket

        try:
            asyncio.run_coroutine_threadsafe(close(), loop).result(5)
        except Exception:  # noqa: BLE001 - stopping must not fail the shutdown
            log.exception("wyoming: stopping failed")
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        self._loop = None
