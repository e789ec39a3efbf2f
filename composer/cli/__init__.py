"""`composer` command line: global options, then one module per verb (config_cmd, up_cmd, ...).

Each verb module exposes `register(subparsers)` which adds its parser and sets
`func=run` where `run(args) -> int` returns the exit code. Only the CLI prints or exits;
errors a user can cause are one line on stderr (traceback with --debug).

Exit codes as docker compose v2 (since 2.33): 0 ok, 1 for any error — a user error, a bad
flag or a missing argument alike (cobra's usage errors exit 1 in the compose plugin,
argparse's would be 2) — 130 interrupted; a command's own code (`exec`, `run`, `up
--exit-code-from`) passes through. Output into a closed pipe (`composer ps | head -1`)
ends quietly, as a Go program killed by SIGPIPE would, with 141.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

EXIT_ERROR = 1
EXIT_BROKEN_PIPE = 128 + 13  # SIGPIPE

VERB_MODULES: tuple[str, ...] = (
    "config_cmd", "up_cmd", "ps_cmd", "lifecycle_cmd", "logs_cmd", "exec_cmd", "attach_cmd",
    "image_cmd", "watch_cmd", "files_cmd", "project_cmd", "completion_cmd",
)


class Parser(argparse.ArgumentParser):
    """argparse with docker compose's exit code for a usage error: 1, not 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="composer", description="Compose-compatible stacks on our own runtime")
    p.add_argument("-f", "--file", action="append", dest="files", default=None,
                   help="stack file (repeat to merge); default compose.yaml and friends")
    p.add_argument("-p", "--project-name", dest="project_name", default=None)
    p.add_argument("--project-directory", dest="project_directory", default=None)
    p.add_argument("--env-file", dest="env_files", action="append", default=None)
    p.add_argument("--profile", dest="profiles", action="append", default=None)
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument("--parallel", default=None, metavar="N",
                   help="containers started or stopped at a time (-1: unlimited; default 8; "
                        "also COMPOSE_PARALLEL_LIMIT)")
    p.add_argument("--ansi", choices=("never", "always", "auto"), default=None,
                   help="colours and the live display: never, always, or auto (on a terminal; "
                        "also COMPOSE_ANSI)")
    p.add_argument("--progress", choices=("auto", "tty", "plain", "quiet", "json"),
                   default=None, help="how progress is shown (also COMPOSE_PROGRESS; "
                                      "COMPOSE_STATUS_STDOUT=1 writes it to stdout)")
    p.add_argument("--dry-run", action="store_true",
                   help="show what the command would change (containers, networks, volumes, "
                        "images, files) without changing anything")
    p.add_argument("-v", "--version", action="store_true", help="show composer's version")
    sub = p.add_subparsers(dest="verb", metavar="COMMAND")
    for name in VERB_MODULES:
        module = importlib.import_module(f"composer.cli.{name}")
        module.register(sub)
    from composer.cli.helptext import fill

    fill(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        return _closed_pipe()


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from composer.cli.project_cmd import version_text

        print(version_text())
        return 0
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from composer.errors import DryRunDone

    try:
        from composer.cli.output import configure

        configure(args.ansi, args.progress, args.dry_run)
        code: int = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except KeyboardInterrupt:
        return 130
    except DryRunDone:
        sys.stdout.flush()
        return 0
    except BrokenPipeError:
        raise
    except Exception as exc:  # one clear line unless --debug
        if args.debug or not _is_user_error(exc):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", EXIT_ERROR) or EXIT_ERROR


def _closed_pipe() -> int:
    """The reader of our stdout went away: drop what is still buffered (so the interpreter's
    final flush does not fail again) and end quietly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return EXIT_BROKEN_PIPE


def _is_user_error(exc: BaseException) -> bool:
    from composer.errors import ComposerError

    try:
        from runtime.errors import EngineError
    except ImportError:  # pragma: no cover
        EngineError = ComposerError  # type: ignore[misc,assignment]  # noqa: N806
    return isinstance(exc, (ComposerError, EngineError))


if __name__ == "__main__":
    sys.exit(main())
