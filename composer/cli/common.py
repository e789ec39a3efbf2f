"""What every verb needs: the stack from the global options, an engine, progress lines."""
from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

from composer.cli.config_cmd import load_from_args
from composer.cli.progress import PlainProgress, make_progress
from composer.operations import Project

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def engine() -> Any:
    """A client of composerd, started in the background if none runs."""
    from runtime.client import connect_or_start

    return await connect_or_start()


async def with_project(args: argparse.Namespace,
                       fn: Callable[[Project], Awaitable[T]], *, lock: bool = True,
                       live: bool | None = None) -> T:
    """Run `fn` on the stack; `lock`: holding the project lock throughout (a verb that holds
    it only for a part takes `project_lock` itself); `live`: the live progress display on a
    terminal (default: with the lock)."""
    stack = load_from_args(args).with_services_enabled(targeted_services(args))
    for w in stack.warnings:
        print(f"WARN[0000] {w}", file=sys.stderr)
    client = await engine()
    try:
        progress = make_progress() if (lock if live is None else live) else PlainProgress()
        project = Project(stack, client, progress, build_output=_build_line)
        try:
            if lock:
                async with client.lock(stack.name, on_wait=lambda m: print(m, file=sys.stderr)):
                    return await fn(project)
            return await fn(project)
        finally:
            progress.close()
    finally:
        await client.close()


def project_lock(project: Project) -> AbstractAsyncContextManager[None]:
    """The project lock (one composer acting on a project at a time), saying once that we
    wait when another holds it."""
    client: Any = project.engine  # a runtime.client.Client: the lock is the CLI's, not the API's
    return client.lock(  # type: ignore[no-any-return]
        project.name, on_wait=lambda m: print(m, file=sys.stderr))


def _build_line(service: str, line: str) -> None:
    print(f"{service} | {line.rstrip()}", file=sys.stderr, flush=True)


def targeted_services(args: argparse.Namespace) -> list[str]:
    """Services named on the command line (`up debug`, `run debug sh`): as docker compose,
    they run whatever their profiles (see Stack.with_services_enabled)."""
    many, one = getattr(args, "services", None), getattr(args, "service", None)
    names = [n for n in many if isinstance(n, str)] if isinstance(many, list) else []
    return names + [one] if isinstance(one, str) else names


def add_services_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("services", nargs="*", metavar="SERVICE")
