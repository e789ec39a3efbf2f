"""The stack the global options select (-f, -p, --project-directory, --env-file, --profile),
for every verb that reads one; a module of its own so that loading a stack does not import
`config`'s printing (yaml dump, rendering, the graph)."""
from __future__ import annotations

import argparse
import sys

from composer.errors import ComposerError
from composer.spec import LoadOptions, Stack, load_stack


def load_from_args(args: argparse.Namespace, *, interpolate: bool = True) -> Stack:
    """The stack selected by the global options (-f, -p, --project-directory, ...)."""
    return load_stack(LoadOptions(
        interpolate=interpolate,
        files=tuple(args.files or ()),
        project_name=args.project_name,
        project_directory=args.project_directory,
        env_files=tuple(args.env_files or ()),
        profiles=tuple(args.profiles or ()),
        stdin=stdin_stack(args),
    ))


_STDIN: list[str] = []  # standard input, read once: a verb may load the stack twice


def stdin_stack(args: argparse.Namespace) -> str | None:
    """The text of `-f -`, read from standard input the first time it is asked for."""
    if "-" not in (args.files or ()):
        return None
    if not _STDIN:
        if sys.stdin is None or sys.stdin.isatty():
            raise ComposerError("-f -: pipe the stack file into composer (standard input is "
                                "a terminal or closed)")
        _STDIN.append(sys.stdin.read())
    return _STDIN[0]
