"""OpenAI text-to-speech (or any OpenAI-compatible server), streamed as raw 24 kHz PCM.

Runs only when the user lists "openai" in ``tts.engines``: the text leaves the machine. The API key
is read from the OS keyring (``jarvis secret set openai_api_key``), never from settings or files.

``response_format="pcm"`` is 24 kHz, 16-bit signed little-endian mono with no header, so audio is
yielded as the bytes arrive (a sample split across two network reads is carried over).

Warm-up spends no money or quota: instead of a synthesis (billed per character) it asks for the
model's description (``GET /models/{model}``, free). That proves the key and the network at start-up
(so a bad key or no internet marks the engine down before the first sentence, quietly on recovery
attempts) and opens the HTTPS connection the first sentence then reuses. A 401 or no connection
fails warm-up; any other answer (a compatible server without ``/models``, a key restricted to
audio) is logged and ignored: the first real request decides.

``openai`` is imported lazily, so importing this module costs nothing.
"""
from __future__ import annotations

import logging
import threading
from typing import Iterator

import numpy as np

from jarvis import secrets
from jarvis.errors import JarvisError, NotAvailable, describe
from jarvis.speak.base import TtsEngine
from jarvis.speak.sentences import split_sentences

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
SAMPLE_RATE = 24000     # what response_format="pcm" always is
MAX_INPUT_CHARS = 4096  # the speech endpoint's limit per request
SET_KEY = f"jarvis secret set {secrets.OPENAI_API_KEY}"


class Pcm16Decoder:
    """Raw s16le bytes in arbitrary pieces → float32 chunks; an odd trailing byte waits for the next piece."""

    def __init__(self) -> None:
        self._carry = b""

    def feed(self, data: bytes) -> np.ndarray:
        data = self._carry + bytes(data)
        even = len(data) - (len(data) % 2)
        self._carry = data[even:]
        return np.frombuffer(data[:even], dtype="<i2").astype(np.float32) / 32768.0

    @property
    def pending(self) -> int:
        """Bytes held back (0 or 1)."""
        return len(self._carry)


def _pieces(text: str, limit: int = MAX_INPUT_CHARS) -> list[str]:
    """The whole text in one request when it fits (better prosody, one round trip), else sentence groups."""
    text = text.strip()
    if len(text) <= limit:
        return [text] if text else []
    pieces, current = [], ""
    for sentence in split_sentences(text):
        if current and len(current) + 1 + len(sentence) > limit:
            pieces.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}".strip()
    return pieces + ([current] if current else [])


class OpenAiEngine(TtsEngine):
    """``model`` speaking with ``voice``; ``base_url`` empty = OpenAI itself."""

    placement = "a server (network)"
    name = "openai"
    sample_rate = SAMPLE_RATE

    def __init__(self, model: str = "gpt-4o-mini-tts", voice: str = "alloy", base_url: str = "",
                 timeout_s: float = 20.0, connect_timeout_s: float = 5.0, warmup_timeout_s: float = 5.0) -> None:
        self.model = model
        self.voice = voice
        self.base_url = (base_url or "").strip()
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.warmup_timeout_s = warmup_timeout_s
        self._client = None
        self._key = ""

    @property
    def server(self) -> str:
        if self._client is not None:
            return str(self._client.base_url).rstrip("/")
        return self.base_url or DEFAULT_BASE_URL

    def load(self) -> None:
        """A client with the keyring's key; made anew when the key there changed (a key corrected in Settings
        or with `jarvis secret set` is used from the next sentence, without a restart)."""
        try:
            import openai
        except ImportError as exc:
            raise NotAvailable("tts_engine_missing", "The OpenAI voice needs the openai package: "
                                                     "pip install openai") from exc
        key = secrets.get_secret(secrets.OPENAI_API_KEY)  # NotAvailable when there is no secure keyring
        if not key:
            raise NotAvailable("cloud_key_missing", f"No OpenAI API key is stored: set one with `{SET_KEY}` "
                                                    f"(it is kept in the OS keyring).")
        if self._client is not None and key == self._key:
            return
        self.close()
        # No retries: on failure the chain hands the sentence to the next engine at once.
        self._client = openai.OpenAI(api_key=key, base_url=self.base_url or None, max_retries=0,
                                     timeout=openai.Timeout(self.timeout_s, connect=self.connect_timeout_s))
        self._key = key
        log.info("OpenAI TTS ready: %s, voice %s, at %s", self.model, self.voice, self.server)

    def warmup(self) -> None:
        """Free check of key and network (see the module docstring); never synthesises."""
        self.load()
        import openai
        try:
            self._client.with_options(timeout=self.warmup_timeout_s).models.retrieve(self.model)
        except (openai.AuthenticationError, openai.APIConnectionError) as exc:
            raise self._explain(exc) from exc
        except openai.APIStatusError as exc:
            log.info("OpenAI warm-up: %s answered HTTP %s to GET /models/%s; carrying on",
                     self.server, exc.status_code, self.model)

    def synthesize(self, text: str, cancel: threading.Event | None = None) -> Iterator[np.ndarray]:
        self.load()  # the keyring's key now
        for piece in _pieces(text):
            if cancel is not None and cancel.is_set():
                return
            yield from self._stream(piece, cancel)

    def _stream(self, text: str, cancel: threading.Event | None) -> Iterator[np.ndarray]:
        decoder = Pcm16Decoder()
        try:
            with self._client.audio.speech.with_streaming_response.create(
                    model=self.model, voice=self.voice, input=text, response_format="pcm") as response:
                for data in response.iter_bytes():
                    if cancel is not None and cancel.is_set():
                        return  # leaving the with-block closes the connection
                    chunk = decoder.feed(data)
                    if chunk.size:
                        yield chunk
        except JarvisError:
            raise
        except Exception as exc:
            explained = self._explain(exc)
            if explained is exc:
                raise
            raise explained from exc
        if decoder.pending:
            log.debug("OpenAI TTS: dropped a trailing odd byte")

    def _explain(self, exc: Exception) -> Exception:
        """An OpenAI or transport error as one actionable line; other exceptions unchanged."""
        from jarvis import openai_errors

        where = "" if self.server == DEFAULT_BASE_URL else f" ({self.server})"
        what = openai_errors.kind(exc)
        if what == "bad_key":
            return NotAvailable("cloud_auth", f"OpenAI{where} rejected the API key: set a new one with `{SET_KEY}`.")
        if what == "forbidden":
            return NotAvailable("cloud_auth", f"OpenAI{where} refused access (HTTP 403): check the key's "
                                              f"permissions and project, or set another with `{SET_KEY}`.")
        if what == "quota":
            return NotAvailable("cloud_quota", f"OpenAI{where} refused for rate limit or quota (HTTP 429): "
                                               f"{openai_errors.detail(exc)}. Check your plan and billing.")
        if what in ("not_found", "bad_request"):
            return NotAvailable("cloud_request", f"OpenAI{where} refused the request (HTTP {exc.status_code}: "
                                                 f"{openai_errors.detail(exc)}); check tts.cloud.openai_model "
                                                 f"'{self.model}' and tts.cloud.openai_voice '{self.voice}'.")
        if what == "server_error":
            return NotAvailable("cloud_error", f"OpenAI{where} failed (HTTP {exc.status_code}: "
                                               f"{openai_errors.detail(exc)}).")
        if what == "timeout":
            return NotAvailable("cloud_unreachable", f"OpenAI{where} did not answer in time: "
                                                     f"check the internet connection.")
        if what in ("unreachable", "transport"):
            why = openai_errors.cause(exc) if what == "unreachable" else describe(exc)
            return NotAvailable("cloud_unreachable", f"Cannot reach OpenAI at {self.server}: check the internet "
                                                     f"connection ({why}).")
        return exc

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:
                log.debug("closing the OpenAI client failed", exc_info=True)


