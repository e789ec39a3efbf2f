"""Errors of the cgroups package: one base, `CgroupError`, under the engine's `EngineError`."""

from __future__ import annotations

from runtime.errors import EngineError, InvalidArgument, NotFound


class CgroupError(EngineError):
    """A cgroup could not be created, limited, read, frozen, killed or removed."""

    def __init__(
        self,
        message: str,
        *,
        subject: str | None = None,
        limit: str | None = None,
        value: object = None,
    ) -> None:
        super().__init__(message, subject=subject)
        self.limit = limit  # "memory", "cpus", "pids_limit", ... when a limit is at fault
        self.value = value


class CgroupLimitError(CgroupError, InvalidArgument):
    """A limit has a value the kernel (or docker's rules) will not accept. Names limit and value."""

    status = 400


class CgroupNotFound(CgroupError, NotFound):
    status = 404
