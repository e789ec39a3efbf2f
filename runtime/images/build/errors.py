"""The one error of the build package: a Dockerfile that cannot be built.

Messages start with where it happened (`Dockerfile:7: unknown instruction "RUNN"`), are
lowercase after that, and say what to do.
"""
from __future__ import annotations

from runtime.errors import InvalidArgument


class BuildError(InvalidArgument):
    """A build failed: bad Dockerfile, missing file in the context, failing RUN, unknown base."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        exit_code: int | None = None,
        output: str = "",
    ) -> None:
        where = ""
        if file is not None:
            where = f"{file}:{line}: " if line is not None else f"{file}: "
        super().__init__(where + message, subject=file)
        self.file = file
        self.line = line
        self.exit_code = exit_code  # of a failing RUN
        self.output = output  # the tail of a failing RUN's output
