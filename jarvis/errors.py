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
