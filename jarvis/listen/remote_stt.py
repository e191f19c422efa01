"""Speech-to-text on another machine's `jarvis serve` (``listen.stt_remote_url``), with this machine's Whisper
behind it: a desktop without a GPU hears with a GPU box's warmed model, and keeps hearing when that box is down.

It is RealtimeSTT's ``transcription_executor``: the command's audio goes as a WAV to
``POST {url}/audio/transcriptions`` with the server's token (``jarvis secret set stt_remote_token``; the audio
leaves this machine, so nothing is sent unless the user set the URL). When the server cannot answer (down, slow,
refused), the local Whisper transcribes that command, a ``degraded`` event says why once per outage, and the
server is tried again after ``RETRY_AFTER_S``.
"""
from __future__ import annotations

import io
import logging
import threading
import time
from urllib import error, request
from urllib.parse import urlparse

import numpy as np

from jarvis import events
from jarvis.errors import BadInput

log = logging.getLogger(__name__)

TOKEN_NAME = "stt_remote_token"
TIMEOUT_S = 8.0
RETRY_AFTER_S = 30.0


def check_url(url: str) -> str:
    """The base URL (``http(s)://host:port/v1``), or BadInput with the fix."""
    parsed = urlparse(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise BadInput("bad_stt_remote_url", f"listen.stt_remote_url {url!r} is not an http(s) URL; use e.g. "
                                             "http://gpu-box:8844/v1 (jarvis serve on that machine).")
    return url.strip().rstrip("/")


class RemoteTranscription:
    def __init__(self, url: str, local, bus: events.EventBus, token: str | None = None, prompt: str = "",
                 timeout_s: float = TIMEOUT_S, clock=time.monotonic):
        self.url = check_url(url)
        self.local = local              # jarvis.listen.stt.Transcriber, used when the server cannot answer
        self.bus = bus
        self.token = token
        self.prompt = prompt
        self.timeout_s = timeout_s
        self._clock = clock
        self._down_until = 0.0
        self._down = False
        self._lock = threading.Lock()
        self.remote_count = 0
        self.local_count = 0

    @classmethod
    def from_settings(cls, settings, bus: events.EventBus, prompt: str = "", local=None) -> "RemoteTranscription":
        """``local``: this machine's Whisper when one is loaded already (the speech server's); else a new one."""
        from jarvis import secrets
        from jarvis.errors import NotAvailable
        from jarvis.listen.stt import Transcriber

        try:
            token = secrets.get_secret(TOKEN_NAME)
        except NotAvailable as exc:   # the server then refuses, and this machine's Whisper hears (said once)
            log.warning("%s The remote speech-to-text token cannot be read.", exc.message)
            token = None
        return cls(settings.stt_remote_url, local or Transcriber(settings), bus, token=token, prompt=prompt)

    def warmup(self) -> None:
        """Load the local Whisper now, so a server that is down never costs a command a model load, and ask the
        server for its models (no transcription: a token refused or a server down is said at start)."""
        self.local.load()
        self.local.transcribe(np.zeros(16000, np.float32))
        req = request.Request(f"{self.url}/models", headers={"Authorization": f"Bearer {self.token or ''}"})
        try:
            with request.urlopen(req, timeout=self.timeout_s) as response:
                response.read()
        except error.HTTPError as exc:
            self._went_down(OSError(f"HTTP {exc.code}: {exc.reason}"))
        except (OSError, error.URLError) as exc:
            self._went_down(exc)

    def transcribe(self, audio, language=None, use_prompt=True, **options):
        """RealtimeSTT calls this with the command's float32 16 kHz audio; returns its TranscriptionResult."""
        from RealtimeSTT.transcription_engines.base import TranscriptionResult

        samples = np.asarray(audio, dtype=np.float32).reshape(-1)
        prompt = self.prompt if use_prompt else ""
        text = None
        if self._clock() >= self._down_until:
            try:
                text = self._remote(samples, language, prompt)
                self.remote_count += 1
                self._up_again()
            except (OSError, ValueError, error.URLError) as exc:
                self._went_down(exc)
        if text is None:
            text = self.local.transcribe(samples, language=language, prompt=prompt or None, command=True)
            self.local_count += 1
        return TranscriptionResult(text=text)

    def _remote(self, samples: np.ndarray, language: str | None, prompt: str) -> str:
        import json

        import soundfile

        from jarvis.serve.audio_in import multipart

        wav = io.BytesIO()
        soundfile.write(wav, samples, 16000, format="WAV", subtype="PCM_16")
        fields = {"model": "whisper-1", "response_format": "json"}
        if language:
            fields["language"] = language
        if prompt:
            fields["prompt"] = prompt
        body, content_type = multipart(fields, "command.wav", wav.getvalue(), "audio/wav")
        req = request.Request(f"{self.url}/audio/transcriptions", data=body, method="POST",
                              headers={"Content-Type": content_type})
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with request.urlopen(req, timeout=self.timeout_s) as response:
                return str(json.loads(response.read())["text"])
        except error.HTTPError as exc:
            try:
                message = json.loads(exc.read())["error"]["message"]
            except Exception:  # noqa: BLE001 - not Jarvis's JSON: the status says enough
                message = exc.reason
            raise OSError(f"HTTP {exc.code}: {message}") from exc
        except (KeyError, TypeError) as exc:
            raise ValueError("the server's answer has no text") from exc

    def _went_down(self, exc: Exception) -> None:
        with self._lock:
            self._down_until = self._clock() + RETRY_AFTER_S
            first, self._down = not self._down, True
        reason = (f"Remote speech-to-text at {self.url} failed ({exc}); this machine's Whisper hears you until it "
                  f"answers again (tried every {RETRY_AFTER_S:g} s).")
        log.warning("%s", reason)
        if first:
            self.bus.emit(events.Degraded(engine="stt_remote", reason=reason))

    def _up_again(self) -> None:
        with self._lock:
            was_down, self._down = self._down, False
        if was_down:
            log.info("remote speech-to-text at %s answers again", self.url)
