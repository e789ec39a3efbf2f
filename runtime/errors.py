"""One error base for the engine. Messages are lowercase, say what failed, why, and the fix.

Subclasses also inherit builtins where callers expect them (as aiohttp does), so
`except FileNotFoundError` still works around engine calls.
"""
from __future__ import annotations


class EngineError(Exception):
    """Base of every error the engine raises on purpose. `status` maps to HTTP in the daemon."""

    status = 500

    def __init__(self, message: str, *, subject: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.subject = subject  # container / image / network / volume name, when there is one

    def __str__(self) -> str:
        return self.message


class NotFound(EngineError, LookupError):
    status = 404


class UnknownRoute(NotFound):
    """composerd does not serve the route at all (a 404 that is not one of its own answers):
    it runs older code than the client, started before an upgrade."""


class Conflict(EngineError):
    """Name in use, container running, port taken: the request clashes with current state."""

    status = 409


class InvalidArgument(EngineError, ValueError):
    status = 400


class LaunchError(EngineError, OSError):
    """The container's process could not be started (exec failed, mount failed, bad user)."""

    status = 500

    def __init__(self, message: str, *, subject: str | None = None, exit_code: int = 125) -> None:
        super().__init__(message, subject=subject)
        self.exit_code = exit_code
