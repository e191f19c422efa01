"""What went wrong talking to an OpenAI-compatible server, in one word: the LLM backend and the OpenAI voice each
word it for their user from this one classification (the ladder of the openai package's error types lives here
only). Imports ``openai`` only when asked, and only once it is installed."""
from __future__ import annotations

from jarvis.errors import first_line


def kind(exc: BaseException) -> str | None:
    """"timeout", "unreachable", "bad_key", "forbidden", "quota", "not_found", "bad_request", "server_error";
    "transport" for an error of the HTTP library or the OS while a body streamed; None for anything else."""
    import openai

    if isinstance(exc, openai.APITimeoutError):  # before APIConnectionError, its base class
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "unreachable"
    for error, name in ((openai.AuthenticationError, "bad_key"), (openai.PermissionDeniedError, "forbidden"),
                        (openai.RateLimitError, "quota"), (openai.NotFoundError, "not_found"),
                        ((openai.BadRequestError, openai.UnprocessableEntityError), "bad_request"),
                        (openai.APIStatusError, "server_error")):
        if isinstance(exc, error):
            return name
    if isinstance(exc, (OSError, TimeoutError)) or type(exc).__module__.split(".")[0].startswith("httpx"):
        return "transport"
    return None


def detail(exc: BaseException, limit: int = 160) -> str:
    """The server's error message (from the JSON body when there is one), one short line."""
    body = getattr(exc, "body", None)
    message = body.get("message") if isinstance(body, dict) else None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        message = body["error"].get("message") or message
    text = str(message or getattr(exc, "message", "") or exc).strip()
    return text.splitlines()[0][:limit] if text else ""


def cause(exc: BaseException) -> str:
    """What the transport said underneath a connection error: "ConnectError: [Errno 111] Connection refused"."""
    inner = exc.__cause__ or exc.__context__ or exc
    text = first_line(inner)
    return f"{type(inner).__name__}: {text}" if text else type(inner).__name__
