"""`composer` command line: global options, then one module per verb (config_cmd, up_cmd, ...).

Each verb module exposes `register(subparsers)` which adds its parser and sets
`func=run` where `run(args) -> int` returns the exit code. Only the CLI prints or exits;
errors a user can cause are one line on stderr (traceback with --debug).
"""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

VERB_MODULES: tuple[str, ...] = (
    "config_cmd", "up_cmd", "ps_cmd", "lifecycle_cmd", "logs_cmd", "exec_cmd", "attach_cmd",
    "image_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="composer", description="Compose-compatible stacks on our own runtime")
    p.add_argument("-f", "--file", action="append", dest="files", default=None,
                   help="stack file (repeat to merge); default compose.yaml and friends")
    p.add_argument("-p", "--project-name", dest="project_name", default=None)
    p.add_argument("--project-directory", dest="project_directory", default=None)
    p.add_argument("--env-file", dest="env_files", action="append", default=None)
    p.add_argument("--profile", dest="profiles", action="append", default=None)
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="verb", metavar="COMMAND")
    for name in VERB_MODULES:
        module = importlib.import_module(f"composer.cli.{name}")
        module.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        code: int = args.func(args)
        return code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one clear line unless --debug
        if args.debug or not _is_user_error(exc):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 1) or 1


def _is_user_error(exc: BaseException) -> bool:
    from composer.errors import ComposerError

    try:
        from runtime.errors import EngineError
    except ImportError:  # pragma: no cover
        EngineError = ComposerError  # type: ignore[misc,assignment]  # noqa: N806
    return isinstance(exc, (ComposerError, EngineError))


if __name__ == "__main__":
    sys.exit(main())
