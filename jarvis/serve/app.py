"""The OpenAI-compatible speech API over ``SpeechService`` (FastAPI).

Every request: the ``Host`` header must name the server (DNS rebinding: 403), then ``Authorization: Bearer
<token>`` (401 without or wrong, as OpenAI answers a bad key, so clients say "authentication"), then a body within the caps (413). Every error is JSON in OpenAI's shape
(``{"error": {"message", "type", "code"}}``) with one line saying what to do, never a traceback.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable

import anyio
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from jarvis.errors import BadInput, JarvisError, NotAvailable
from jarvis.serve import audio_in, audio_out, security
from jarvis.serve.scheduler import Refused, Scheduler
from jarvis.serve.service import MAX_INPUT_CHARS, STT_MODELS, TTS_MODELS, SpeechService

log = logging.getLogger(__name__)

MAX_JSON_BYTES = 64 * 1024              # a speech request: 4096 characters of text and a few fields
MAX_UPLOAD_BYTES = 25 * 1024 * 1024     # OpenAI's own cap for an audio upload
UPLOAD_PATHS = ("/v1/audio/transcriptions", "/v1/audio/voices")


class SpeechRequest(BaseModel):
    model: str = "jarvis-tts"
    input: str
    voice: str = "jarvis"
    response_format: str = "mp3"
    speed: float = Field(1.0, ge=audio_out.MIN_SPEED, le=audio_out.MAX_SPEED)
    instructions: str | None = None     # accepted for compatibility; Jarvis's engines take no instructions


def error(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    kind = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
            404: "not_found_error", 413: "invalid_request_error", 422: "invalid_request_error",
            429: "rate_limit_error", 503: "server_error"}.get(status, "server_error")
    return JSONResponse({"error": {"message": message, "type": kind, "code": code}}, status_code=status,
                        headers=headers)


def create_app(service: SpeechService, scheduler: Scheduler, token: str, bind_host: str,
               gpu_status: Callable[[], list[dict]] = lambda: []) -> FastAPI:
    app = FastAPI(title="Jarvis speech server", docs_url=None, redoc_url=None, openapi_url=None)
    allowed = security.allowed_hosts(bind_host)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if not security.host_allowed(request.headers.get("host"), allowed):
            return error(403, "bad_host", "This server answers only to the names it is bound to; use "
                                          f"http://{bind_host}:<port>/ (Host header refused).")
        if not request.headers.get("authorization"):
            return error(401, "missing_token", "Send 'Authorization: Bearer <token>'; `jarvis serve --show-token` "
                                               "prints the token.")
        if not security.token_matches(request.headers.get("authorization"), token):
            return error(401, "bad_token", "The bearer token is wrong; `jarvis serve --show-token` prints the "
                                           "right one.")
        length = request.headers.get("content-length")
        cap = MAX_UPLOAD_BYTES if request.url.path in UPLOAD_PATHS else MAX_JSON_BYTES
        if length is not None and length.isdigit() and int(length) > cap:
            return error(413, "too_large", f"The request body is {int(length)} bytes; at most {cap} here.")
        try:
            return await call_next(request)
        except Exception:  # noqa: BLE001 - answered as JSON; the traceback goes to the log only
            log.exception("speech server: %s %s failed", request.method, request.url.path)
            return error(500, "internal_error", "The server failed on this request (see Jarvis's log); try again.")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error(422, "invalid_field", f"{where or 'request'}: {first.get('msg', 'invalid')}.")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        message = {404: f"No route {request.url.path}: see GET /v1/models, POST /v1/audio/speech, "
                        "POST /v1/audio/transcriptions.",
                   405: f"{request.method} is not allowed on {request.url.path}."}.get(exc.status_code,
                                                                                     str(exc.detail))
        return error(exc.status_code, "not_found" if exc.status_code == 404 else "bad_method", message)

    @app.exception_handler(JarvisError)
    async def jarvis_error(request: Request, exc: JarvisError):
        status = 400 if isinstance(exc, BadInput) else 503 if isinstance(exc, NotAvailable) else 500
        return error(status, exc.code, exc.message)

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused):
        headers = {"Retry-After": str(int(round(exc.retry_after_s)))} if exc.retry_after_s else None
        return error(exc.status, exc.code, exc.message, headers)

    @app.get("/health")
    def health():
        return {"status": "ok", "voices": [v["id"] for v in service.voices() if v["available"]]}

    @app.get("/v1/models")
    def models():
        return {"object": "list", "data": service.models()}

    @app.get("/v1/models/{model_id}")
    def model(model_id: str):
        found = [m for m in service.models() if m["id"] == model_id]
        if not found:
            return error(404, "unknown_model", f"No model {model_id!r}; GET /v1/models lists them.")
        return found[0]

    @app.get("/v1/audio/voices")
    def voices():
        prompts = service.store.prompts() if service.store is not None else []
        return {"voices": service.voices(), "prompts": prompts}

    @app.post("/v1/audio/voices", status_code=201)
    async def add_voice(name: str = Form(...), file: UploadFile = File(...), transcript: str | None = Form(None)):
        """A voice prompt for cloning: validated, transcribed by Whisper when no transcript comes with it."""
        if service.store is None:
            raise NotAvailable("no_voice_store", "This server keeps no uploaded voices.")
        data = await file.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            return error(413, "too_large", f"The voice prompt is over {MAX_UPLOAD_BYTES} bytes; send 1-30 s.")
        ticket = scheduler.admit()
        try:
            await anyio.to_thread.run_sync(ticket.wait)
            return await anyio.to_thread.run_sync(service.store.add, name, data, transcript, service.taken_names(),
                                                  service.transcribe)
        finally:
            ticket.release()

    @app.delete("/v1/audio/voices/{name}")
    def delete_voice(name: str):
        if service.store is None:
            raise NotAvailable("no_voice_store", "This server keeps no uploaded voices.")
        try:
            return {"deleted": name, "mappings_deleted": service.store.remove(name)}
        except BadInput as exc:
            return error(404, exc.code, exc.message)

    @app.get("/v1/audio/voice-mappings")
    def mappings():
        return {"mappings": list(service.store.mappings().values()) if service.store is not None else []}

    @app.put("/v1/audio/voice-mappings/{name}")
    def set_mapping(name: str, body: dict):
        if service.store is None:
            raise NotAvailable("no_voice_store", "This server keeps no voice mappings.")
        return service.store.set_mapping(name, body, service.engines(), service.taken_names())

    @app.delete("/v1/audio/voice-mappings/{name}")
    def delete_mapping(name: str):
        if service.store is None:
            raise NotAvailable("no_voice_store", "This server keeps no voice mappings.")
        try:
            service.store.remove_mapping(name)
        except BadInput as exc:
            return error(404, exc.code, exc.message)
        return {"deleted": name}

    @app.get("/queue/stats")
    def queue_stats():
        return scheduler.stats()

    @app.get("/gpu/status")
    def gpu():
        return {"gpus": gpu_status()}

    @app.post("/v1/audio/speech")
    async def speech(body: SpeechRequest):
        if body.model not in TTS_MODELS:
            raise BadInput("unknown_model", f"No speech model {body.model!r}; use one of {', '.join(TTS_MODELS)}.")
        fmt = body.response_format.strip().lower()
        if fmt not in audio_out.MEDIA_TYPES:
            raise BadInput("bad_format", f"response_format {body.response_format!r} is not one of "
                                         f"{', '.join(audio_out.MEDIA_TYPES)}.")
        if len(body.input) > MAX_INPUT_CHARS:
            return error(413, "input_too_long", f"'input' has {len(body.input)} characters; at most "
                                                f"{MAX_INPUT_CHARS} per request: split the text.")
        cancel = threading.Event()
        chunks = service.speak(body.input, body.voice, cancel)   # BadInput here: empty text, unknown voice
        ticket = scheduler.admit()
        try:
            await anyio.to_thread.run_sync(ticket.wait, cancel.is_set)
            first = await anyio.to_thread.run_sync(next, chunks, None)
        except BaseException:
            cancel.set()
            chunks.close()
            ticket.release()
            raise
        if first is None:
            ticket.release()
            raise NotAvailable("tts_failed", "No TTS engine could say it (see /health and `jarvis doctor`).")
        engine = first[0]

        def audio():
            yield first[1:]
            for _, rate, chunk in chunks:
                yield rate, chunk
                ticket.step()   # the voice loop goes first between chunks

        speed = min(max(body.speed * service.speed(body.voice), audio_out.MIN_SPEED), audio_out.MAX_SPEED)
        encoded = audio_out.encode(audio(), fmt, speed)

        async def body_stream():
            try:
                while True:
                    part = await anyio.to_thread.run_sync(next, encoded, None)
                    if part is None:
                        return
                    yield part
            finally:  # done, failed, or the client went away: stop the engines and free the models
                cancel.set()
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(_close, encoded, chunks)
                ticket.release()

        return StreamingResponse(body_stream(), media_type=audio_out.MEDIA_TYPES[fmt],
                                 headers={"X-Jarvis-Engine": engine, "X-Jarvis-Sample-Rate": str(audio_out.RATE)})

    @app.post("/v1/audio/transcriptions")
    async def transcriptions(file: UploadFile = File(...), model: str = Form("jarvis-stt"),
                             response_format: str = Form("json"), language: str | None = Form(None),
                             prompt: str | None = Form(None)):
        if model not in STT_MODELS:
            raise BadInput("unknown_model", f"No transcription model {model!r}; use one of {', '.join(STT_MODELS)}.")
        fmt = response_format.strip().lower()
        if fmt not in ("json", "text", "verbose_json"):
            raise BadInput("bad_format", f"response_format {response_format!r} is not json, text or verbose_json.")
        data = await file.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            return error(413, "too_large", f"The audio is over {MAX_UPLOAD_BYTES} bytes; send a shorter clip.")
        samples = await anyio.to_thread.run_sync(audio_in.decode, data, f"'{file.filename or 'file'}'")
        ticket = scheduler.admit()
        try:
            await anyio.to_thread.run_sync(ticket.wait)
            text = await anyio.to_thread.run_sync(service.transcribe, samples, language, prompt)
        finally:
            ticket.release()
        if fmt == "text":
            return PlainTextResponse(text + "\n")
        if fmt == "verbose_json":
            return {"task": "transcribe", "language": language or "english",
                    "duration": round(len(samples) / audio_in.RATE, 3), "text": text,
                    "segments": [{"id": 0, "start": 0.0, "end": round(len(samples) / audio_in.RATE, 3),
                                  "text": text}]}
        return {"text": text}

    return app


def _close(*iterators) -> None:
    for it in iterators:
        close = getattr(it, "close", None)
        if close is not None:
            try:
                close()
            except Exception:  # noqa: BLE001 - closing after a failure must not hide the failure
                log.exception("closing a speech stream failed")

