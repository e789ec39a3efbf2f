"""`composer version`: a module of its own so that it loads nothing but the version label."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ver = sub.add_parser("version", help="show composer's version")
    ver.add_argument("-f", "--format", choices=("pretty", "json"), default="pretty",
                     help="pretty (default) or json")
    ver.add_argument("--short", action="store_true", help="only the version number")
    ver.set_defaults(func=version)


def version_text(fmt: str = "pretty", short: bool = False) -> str:
    from composer.labels import COMPOSER_VERSION

    if short:
        return COMPOSER_VERSION
    if fmt == "json":
        from composer.cli.psformat import go_json

        return go_json({"version": f"v{COMPOSER_VERSION}"})
    return f"composer version v{COMPOSER_VERSION}"


def version(args: argparse.Namespace) -> int:
    print(version_text(args.format, args.short))
    return 0
