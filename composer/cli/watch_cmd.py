"""`composer watch`: start the stack (unless --no-up), then act out its develop.watch rules
as files change, until Ctrl-C. The containers keep running afterwards (as docker compose)."""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from composer.cli.common import add_services_arg, run, with_project
from composer.operations import Project, UpOptions


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("watch", help="watch the develop.watch paths and sync, restart or rebuild "
                                     "services when files change")
    add_services_arg(p)
    p.add_argument("--no-up", action="store_true", help="do not build and start the services first")
    p.add_argument("--prune", action=argparse.BooleanOptionalAction, default=True,
                   help="remove the previous image after a rebuild (default: on)")
    p.add_argument("--quiet", action="store_true", help="hide the build output")
    p.set_defaults(func=watch)


def out(line: str) -> None:
    print(line, flush=True)


def err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


async def until_interrupted(work: Awaitable[Any]) -> bool:
    """Run `work` until it ends or SIGINT/SIGTERM arrives (then cancel it and wait for its
    clean-up); True when interrupted."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        stopper.cancel()
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return stop.is_set()


def watch(args: argparse.Namespace) -> int:
    from composer.watch.session import WatchSession, rules_of

    async def go(project: Project) -> int:
        rules = rules_of(project, args.services, err)
        client: Any = project.engine  # the daemon's client: it has the project lock
        lock: Callable[[], Any] = lambda: client.lock(project.name, on_wait=err)  # noqa: E731
        if args.quiet:
            project.build_output = lambda service, line: None
        if not args.no_up:
            # as Compose: services with build: and develop: are built at each start of watch
            watched = sorted({r.service for r in rules if project.stack.services[r.service].build})
            async with lock():
                if watched:
                    await project.build(watched)
                await project.up(UpOptions(services=args.services, quiet_pull=args.quiet))
        session = WatchSession(project, rules, out, err, prune=args.prune, lock=lock)
        interrupted = await until_interrupted(session.run())
        return 130 if interrupted else 0

    return run(with_project(args, go, lock=False))
