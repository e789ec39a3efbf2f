"""What every verb needs: the stack from the global options, an engine, progress lines."""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from composer.cli.output import status_stream
from composer.cli.progress import PlainProgress, line_progress, make_progress
from composer.cli.quick import BY_NAME_VERBS as BY_NAME_VERBS  # (re-exported: verbs import
from composer.cli.quick import add_services_arg as add_services_arg  # them from here)
from composer.cli.quick import targeted_services as targeted_services
from composer.errors import ComposerError, NoStackFile
from composer.operations import Project
from composer.spec import Stack

if TYPE_CHECKING:
    from runtime.client import Client

T = TypeVar("T")

def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def engine() -> Client:
    """A client of composerd, started in the background if none runs; under --dry-run the
    dry-run engine over it (composer.dryrun), which starts nothing: every verb's changes go
    through this one place, so every verb is a dry run without knowing it."""
    from composer.cli.output import SETTINGS

    if SETTINGS.dry_run:
        from composer.dryrun import connect

        dry = await connect()
        dry.announce = line_progress()
        return dry  # type: ignore[return-value]  # the same API as the client's
    from runtime.client import connect_or_start

    return await connect_or_start(notice=_say)


def _say(line: str) -> None:
    """composerd restarted on this code, or why it was not (runtime.codecheck)."""
    print(line, file=sys.stderr)


_ENGINE = engine


async def quick_engine() -> Any:
    """For a verb that only reads (ps, port, logs without -f): the stdlib client
    (runtime.quickclient, no aiohttp to import) when composerd answers, else `engine()`,
    which starts it. An `engine` replaced by a test (an in-memory engine) serves every verb."""
    if engine is not _ENGINE:
        return await engine()
    from runtime.calls import DaemonUnavailable
    from runtime.paths import Paths
    from runtime.quickclient import QuickClient

    quick = QuickClient(Paths.from_env().socket)
    try:
        if await quick.ping() and quick.runs_this_code():  # else engine() restarts composerd
            return quick
    except DaemonUnavailable:
        pass
    await quick.close()
    return await engine()


def project_by_name(args: argparse.Namespace) -> str | None:
    """The project name when this verb works from labels alone (-p NAME without -f), else None."""
    if getattr(args, "verb", None) not in BY_NAME_VERBS or not args.project_name or args.files:
        return None
    from composer.spec.load import LoadOptions, project_name

    return project_name(LoadOptions(project_name=args.project_name), {}, None, Path.cwd(), "")


async def stack_by_name(client: Any, name: str) -> Stack:
    from composer import labels as L
    from composer.labelstack import stack_from_labels

    scope = {L.PROJECT: name}
    return stack_from_labels(
        name, await client.list_containers(all=True, labels=scope),
        await client.list_networks(labels=scope), await client.list_volumes(labels=scope))


async def with_project(args: argparse.Namespace,
                       fn: Callable[[Project], Awaitable[T]], *, lock: bool = True,
                       live: bool | None = None, read_only: bool = False) -> T:
    """Run `fn` on the stack; `lock`: holding the project lock throughout (a verb that holds
    it only for a part takes `project_lock` itself); `live`: the live progress display on a
    terminal (default: with the lock); `read_only`: `fn` only lists, inspects and reads
    logs without follow, which `quick_engine()` serves without aiohttp."""
    name = project_by_name(args)
    stack: Stack | None = None
    if name is None:
        try:
            from composer.cli.stackargs import load_from_args

            stack = load_from_args(args).with_services_enabled(targeted_services(args))
        except NoStackFile:
            # as Compose: no file, but COMPOSE_PROJECT_NAME names the project
            env_name = os.environ.get("COMPOSE_PROJECT_NAME")
            if not env_name or getattr(args, "verb", None) not in BY_NAME_VERBS:
                raise
            from composer.spec.load import LoadOptions, project_name

            name = project_name(LoadOptions(project_name=env_name), {}, None, Path.cwd(), "")
        else:
            for w in stack.warnings:
                print(f"WARN[0000] {w}", file=sys.stderr)
    client = await (quick_engine() if read_only and not lock else engine())
    try:
        if stack is None:
            assert name is not None
            stack = await stack_by_name(client, name)
        progress = make_progress() if (lock if live is None else live) else PlainProgress(status_stream())
        if getattr(client, "dry_run", False):
            client.announce = progress  # type: ignore[union-attr]
        project = Project(stack, client, progress, build_output=_build_line)
        project.by_labels = name is not None
        project.parallelism = parallel_limit(args)
        project.graph_cache = graph_cache()
        verb = getattr(args, "verb", None)
        if verb in BY_NAME_VERBS and not (project.by_labels and verb in ("ps", "down")):
            # an unknown service is an error naming it, not a silent no-op (as Compose; from
            # labels alone `ps`/`down` can't tell a typo from a service already removed)
            project.check_services(targeted_services(args))
        try:
            if lock:
                async with client.lock(stack.name, on_wait=lambda m: print(m, file=sys.stderr)):
                    return await fn(project)
            return await fn(project)
        finally:
            progress.close()
    finally:
        await client.close()


def graph_cache() -> Path | None:
    """composer.stackcache's folder, where composer.graph keeps networkx's answers; None
    for a test's in-memory engine (no run dir of its own)."""
    if engine is not _ENGINE:
        return None
    from composer.stackcache import cache_dir
    from runtime.paths import Paths

    return cache_dir(Paths.from_env().run)


def project_lock(project: Project) -> AbstractAsyncContextManager[None]:
    """The project lock (one composer acting on a project at a time), saying once that we
    wait when another holds it."""
    client: Any = project.engine  # a runtime.client.Client: the lock is the CLI's, not the API's
    return client.lock(  # type: ignore[no-any-return]
        project.name, on_wait=lambda m: print(m, file=sys.stderr))


def _build_line(service: str, line: str) -> None:
    print(f"{service} | {line.rstrip()}", file=sys.stderr, flush=True)


UNLIMITED = 1 << 16  # --parallel -1: as many as there are


def parallel_limit(args: argparse.Namespace) -> int:
    """--parallel N, else COMPOSE_PARALLEL_LIMIT, else unlimited (-1), as docker compose v2:
    with a limit of 8 the ninth and tenth containers of a 10-service `up` waited for a slot
    (~40-60 ms of its ~0.6 s)."""
    value = getattr(args, "parallel", None)
    what = "--parallel"
    if value is None and os.environ.get("COMPOSE_PARALLEL_LIMIT", "").strip():
        value, what = os.environ["COMPOSE_PARALLEL_LIMIT"].strip(), "COMPOSE_PARALLEL_LIMIT"
    if value is None:
        return UNLIMITED
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n == -1:
        return UNLIMITED
    if n < 1:
        raise ComposerError(f"{what}={value}: use a number of at least 1, or -1 for unlimited")
    return n


def orphan_options(args: argparse.Namespace) -> tuple[bool, bool]:
    """(remove, ignore) orphans: --remove-orphans or COMPOSE_REMOVE_ORPHANS, and
    COMPOSE_IGNORE_ORPHANS (no warning about them), which can't go with --remove-orphans."""
    def truthy(name: str) -> bool:
        return os.environ.get(name, "").strip().lower() in ("1", "t", "true")

    ignore = truthy("COMPOSE_IGNORE_ORPHANS")
    if ignore and getattr(args, "remove_orphans", False):
        raise ComposerError("COMPOSE_IGNORE_ORPHANS and --remove-orphans can't be combined "
                            "(unset one)")
    remove = bool(getattr(args, "remove_orphans", False)) or (
        truthy("COMPOSE_REMOVE_ORPHANS") and not ignore)
    return remove, ignore

