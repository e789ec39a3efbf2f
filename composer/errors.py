"""Errors of the orchestrator. Only the CLI turns them into a line on stderr and an exit code."""
from __future__ import annotations

from collections.abc import Collection, Iterable


class ComposerError(Exception):
    """Base of every error composer/ raises on purpose."""

    exit_code = 1


class SpecError(ComposerError):
    """A stack file problem: carries the file, the key path and (when known) the service.

    str() is one line: `compose.yaml: services.web.ports[0]: invalid port "80:x" (use ...)`.
    Exits 1 like every user error: docker compose dropped its per-category exit codes
    (15 for an invalid file) in v2.33.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        path: str | None = None,
        service: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.path = path
        self.service = service

    def __str__(self) -> str:
        where = ": ".join(x for x in (self.file, self.path) if x)
        return f"{where}: {self.message}" if where else self.message


class NoStackFile(SpecError):
    """No -f given and no compose.yaml (or friends) in the folder or its parents."""


class GraphError(SpecError):
    """Dependency cycle, or a dependency on a missing or disabled service."""


class DryRunDone(ComposerError):
    """A dry run reached a step it cannot pretend (an interactive exec on the caller's
    terminal): it has said what it would do, and the command ends there, successfully."""

    exit_code = 0


STATUS_UNKNOWN = "the exit status of the command is unknown"


class DaemonLost(ComposerError):
    """composerd stopped or restarted while a command was following one of its streams
    (`logs -f`, an attached `up`, `exec`, `run`, `attach`): one line saying what that means
    for the containers, instead of a traceback, a silent exit or a "not running" hint."""

    def __init__(self, consequence: str, exit_code: int = 1) -> None:
        super().__init__(
            f"lost the connection to composerd (it stopped or restarted): {consequence}")
        self.exit_code = exit_code


def check_services(names: Iterable[str], every: Collection[str]) -> None:
    """Every name is a service of the stack (`every`: enabled or not), else one line naming
    it, as Compose's `no such service: x`."""
    unknown = [n for n in names if n not in every]
    if unknown:
        raise ComposerError(
            f"no such service: {', '.join(unknown)} "
            f"(known: {', '.join(sorted(every)) or 'none'})"
        )
