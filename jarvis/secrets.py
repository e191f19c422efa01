"""API keys in the OS keyring (service "jarvis"); never in settings, files or logs.

Secrets go only to a secure backend: Secret Service (GNOME Keyring, KWallet 5.97+, KeePassXC) or
KWallet on Linux, the Keychain on macOS, the Credential Locker on Windows. Python's ``keyring``
falls back to ``fail.Keyring`` (or ``null.Keyring``) when none is reachable, and ``keyrings.alt`` adds
plaintext/base64 file backends: those are refused with ``NotAvailable``, never used. When keyring
chains several backends, only its secure members are used, so a key never lands in a plaintext file.

``keyring`` is imported lazily: importing this module costs nothing.
"""
from __future__ import annotations

import logging

from jarvis.errors import BadInput, NotAvailable, first_line

log = logging.getLogger(__name__)

SERVICE = "jarvis"
OPENAI_API_KEY = "openai_api_key"
# Names Jarvis reads, with what each is for (``jarvis secret status`` lists them).
LLM_API_KEY = "llm_api_key"
KNOWN: dict[str, str] = {OPENAI_API_KEY: "OpenAI API key (the \"openai\" TTS engine)",
                         LLM_API_KEY: "API key for the OpenAI-compatible LLM server (brain.backend \"openai\")"}

_REFUSED_MODULES = ("keyring.backends.fail", "keyring.backends.null")
_FIX = "on Linux install and unlock GNOME Keyring or KWallet (a Secret Service provider)"


def _label(backend) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


def insecure_reason(backend) -> str | None:
    """Why ``backend`` must not hold secrets, or None when it is a real OS keyring."""
    cls = type(backend)
    module, name = cls.__module__, cls.__qualname__
    if module in _REFUSED_MODULES:
        return "no OS keyring was found"
    lowered = f"{module}.{name}".lower()
    # keyrings.alt's file backends (PlaintextKeyring is base64; EncryptedKeyring prompts on a terminal),
    # and anything else that says it stores plaintext.
    if module.startswith("keyrings.alt.file") or any(w in lowered for w in ("plaintext", "base64", "uncrypted")):
        return "a file backend, not an OS keyring"
    return None


def _secure_backend():
    """The keyring backend to use, refusing insecure or absent ones."""
    try:
        import keyring
        from keyring.backends.chainer import ChainerBackend
    except ImportError as exc:
        raise NotAvailable("keyring_unavailable", "The keyring package is missing: pip install keyring") from exc
    backend = keyring.get_keyring()
    if isinstance(backend, ChainerBackend):
        members = list(backend.backends)
        secure = [b for b in members if insecure_reason(b) is None]
        if secure:
            if len(secure) < len(members):
                log.info("keyring: skipping insecure backends %s",
                         ", ".join(_label(b) for b in members if b not in secure))
            return secure[0]
        found = ", ".join(_label(b) for b in members) or _label(backend)
        raise NotAvailable("keyring_unavailable", f"No secure keyring (found {found}); {_FIX}.")
    reason = insecure_reason(backend)
    if reason is not None:
        raise NotAvailable("keyring_unavailable", f"No secure keyring (found {_label(backend)}: {reason}); {_FIX}.")
    return backend


def check_keyring() -> str:
    """The secure backend's dotted name; raises NotAvailable (one line, with the fix) when there is none."""
    return _label(_secure_backend())


def backend_name() -> str:
    """Dotted class name of the backend secrets would go to (the refused one when none is secure)."""
    try:
        return _label(_secure_backend())
    except NotAvailable:
        import keyring
        return _label(keyring.get_keyring())


def backend_status() -> dict:
    """``{"backend", "name", "secure", "note"}`` for ``jarvis doctor`` and ``jarvis secret status``."""
    import keyring
    chosen = keyring.get_keyring()
    try:
        backend, note = _secure_backend(), None
    except NotAvailable as exc:
        backend, note = chosen, exc.message
    return {"backend": _label(backend), "name": str(getattr(backend, "name", type(backend).__name__)),
            "secure": note is None, "note": note}


def _check_name(name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise BadInput("bad_secret_name", "Give the secret's name, e.g. openai_api_key.")
    name = name.strip()
    if any(not (c.isalnum() or c in "_-.") for c in name):
        raise BadInput("bad_secret_name", f"Secret names use letters, digits, '_', '-' and '.' only "
                                          f"(got {name!r}).")
    return name


def _keyring_failed(action: str, exc: Exception) -> NotAvailable:
    """A keyring backend error as one actionable line (the secret's value never appears in it)."""
    from keyring.errors import KeyringLocked
    if isinstance(exc, KeyringLocked):
        return NotAvailable("keyring_locked", f"Could not {action}: the OS keyring is locked; unlock it "
                                              f"(log in to the desktop session) and try again.")
    detail = first_line(exc)
    return NotAvailable("keyring_unavailable", f"Could not {action} in the OS keyring "
                                               f"({type(exc).__name__}{': ' + detail if detail else ''}); {_FIX}.")


def get_secret(name: str) -> str | None:
    """The stored value, or None when it is not set. Raises NotAvailable without a secure keyring."""
    name = _check_name(name)
    backend = _secure_backend()
    try:
        value = backend.get_password(SERVICE, name)
    except Exception as exc:
        raise _keyring_failed(f"read {name}", exc) from exc
    return value or None


def set_secret(name: str, value: str) -> None:
    """Store ``value`` (surrounding whitespace removed) under ``name``; empty values are BadInput."""
    name = _check_name(name)
    if not isinstance(value, str) or not value.strip():
        raise BadInput("empty_secret", f"The value for {name} is empty: nothing was stored.")
    value = value.strip()
    if "\n" in value or "\r" in value:
        raise BadInput("bad_secret", f"The value for {name} spans several lines: give it on one line.")
    backend = _secure_backend()
    try:
        backend.set_password(SERVICE, name, value)
    except Exception as exc:
        raise _keyring_failed(f"store {name}", exc) from exc


def delete_secret(name: str) -> bool:
    """Remove ``name``; True when it was there, False when it was not set."""
    from keyring.errors import PasswordDeleteError

    name = _check_name(name)
    backend = _secure_backend()
    try:
        if backend.get_password(SERVICE, name) is None:
            return False
        backend.delete_password(SERVICE, name)
    except PasswordDeleteError:
        return False
    except Exception as exc:
        raise _keyring_failed(f"delete {name}", exc) from exc
    return True
