"""Who may use the speech server: a bearer token, and the names it may be reached by.

The token is made on first start (``secrets.token_urlsafe``), kept in the OS keyring as ``api_token`` and shown by
``jarvis serve --show-token``; ``JARVIS_API_TOKEN`` overrides it (a headless server without a keyring). Every
request needs it, loopback included: a web page the user visits can reach 127.0.0.1 too.

The ``Host`` header is checked against the names the server is bound to, so a web page on a domain that re-resolves
to 127.0.0.1 (DNS rebinding) is refused before the token is even looked at. Bound to all interfaces, any name is
accepted: the token is the guard then.
"""
from __future__ import annotations

import hmac
import ipaddress
import os
import secrets as _random
import socket

from jarvis.errors import BadInput, NotAvailable

TOKEN_NAME = "api_token"
TOKEN_ENV = "JARVIS_API_TOKEN"
MIN_TOKEN_CHARS = 16


def api_token(create: bool = True) -> str | None:
    """The server's token: ``JARVIS_API_TOKEN``, else the keyring's (made and stored there when missing and
    ``create``). Raises NotAvailable with the fix when there is no keyring and no environment variable."""
    from_env = os.environ.get(TOKEN_ENV, "").strip()
    if from_env:
        if len(from_env) < MIN_TOKEN_CHARS:
            raise BadInput("weak_token", f"{TOKEN_ENV} is shorter than {MIN_TOKEN_CHARS} characters: use a long "
                                         "random value (e.g. the output of: python -c \"import secrets; "
                                         "print(secrets.token_urlsafe(32))\").")
        return from_env
    from jarvis import secrets

    try:
        token = secrets.get_secret(TOKEN_NAME)
        if token is None and create:
            token = _random.token_urlsafe(32)
            secrets.set_secret(TOKEN_NAME, token)
    except NotAvailable as exc:
        raise NotAvailable("no_token_store", f"{exc.message} Or set {TOKEN_ENV} to a long random value for this "
                                             "server.") from exc
    return token


def token_matches(header: str | None, token: str) -> bool:
    """``Authorization: Bearer <token>``, compared in constant time."""
    if not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[len("Bearer "):].strip().encode(), token.encode())


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    return host.strip("[]") in ("0.0.0.0", "::", "")


def allowed_hosts(bind_host: str) -> frozenset[str] | None:
    """The names a request's ``Host`` may carry (without the port) for a server bound to ``bind_host``; None
    when any is allowed (bound to all interfaces)."""
    if is_wildcard(bind_host):
        return None
    names = {bind_host.strip("[]").lower()}
    if is_loopback(bind_host):
        names |= {"localhost", "127.0.0.1", "::1"}
    else:
        names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
    return frozenset(names)


def host_allowed(header: str | None, allowed: frozenset[str] | None) -> bool:
    if allowed is None:
        return True
    if not header:
        return False
    host = header.strip().lower()
    if host.startswith("["):           # [::1]:8844
        host = host[1:host.find("]")] if "]" in host else host
    elif host.count(":") == 1:         # name:port
        host = host.split(":", 1)[0]
    return host in allowed
