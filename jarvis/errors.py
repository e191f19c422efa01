"""Errors a user can act on: one line saying what failed and what to do."""


class JarvisError(Exception):
    """A failure with a stable code and a one-line, actionable message.

    The CLI prints only ``message`` (no traceback) and exits with ``exit_code``.
    """

    exit_code = 2

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message


class BadInput(JarvisError):
    """The user gave us something we cannot use (file, name, text, device)."""


class NotAvailable(JarvisError):
    """A part (model, device, engine) is missing or cannot run here."""

    exit_code = 3


def first_line(exc: BaseException, limit: int = 160) -> str:
    """The first line of what ``exc`` says, at most ``limit`` characters ("" when it says nothing)."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else ""


def describe(exc: BaseException, limit: int = 160) -> str:
    """One line for the user: a JarvisError's own message, else the exception's type and first line."""
    if isinstance(exc, JarvisError):
        return exc.message
    text = first_line(exc, limit)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
