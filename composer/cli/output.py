"""How the CLI writes for people or programs: `--ansi never|always|auto` (COMPOSE_ANSI) says
whether colours and the live display may be used, `--progress auto|tty|plain|quiet|json`
(COMPOSE_PROGRESS) how up/down/... report progress, COMPOSE_STATUS_STDOUT sends that
progress to stdout instead of stderr. Set once from the command line by `configure`.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TextIO

from composer.errors import ComposerError

ANSI = ("never", "always", "auto")
PROGRESS = ("auto", "tty", "plain", "quiet", "json")


@dataclass
class Output:
    ansi: str = "auto"
    progress: str = "auto"
    status_stdout: bool = False
    dry_run: bool = False  # --dry-run: the engine pretends every change (composer.dryrun)


SETTINGS = Output()


def configure(ansi: str | None, progress: str | None, dry_run: bool = False) -> None:
    """From the flags, else the variables; a bad variable value is an error naming it."""
    env = os.environ
    a = ansi or env.get("COMPOSE_ANSI") or "auto"
    p = progress or env.get("COMPOSE_PROGRESS") or "auto"
    if a not in ANSI:
        raise ComposerError(f"COMPOSE_ANSI={a!r}: use one of {', '.join(ANSI)}")
    if p not in PROGRESS:
        raise ComposerError(f"COMPOSE_PROGRESS={p!r}: use one of {', '.join(PROGRESS)}")
    if a == "never" and p == "tty":
        raise ComposerError("--progress tty needs ANSI output: drop --ansi never / COMPOSE_ANSI")
    SETTINGS.ansi, SETTINGS.progress, SETTINGS.dry_run = a, p, dry_run
    SETTINGS.status_stdout = env.get("COMPOSE_STATUS_STDOUT", "").strip().lower() in (
        "1", "t", "true")


def colours(stream: TextIO) -> bool:
    """May `stream` get ANSI colours? always / never, or (auto) when it is a terminal."""
    if SETTINGS.ansi != "auto":
        return SETTINGS.ansi == "always"
    return bool(getattr(stream, "isatty", lambda: False)())


def status_stream() -> TextIO:
    return sys.stdout if SETTINGS.status_stdout else sys.stderr
