"""`composer up` and `composer down`."""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from composer import labels as L
from composer.cli.common import add_services_arg, run, with_project
from composer.errors import ComposerError
from composer.operations import Project, UpOptions

COLOURS = ("36", "33", "32", "35", "34", "96", "93", "92", "95", "94")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("up", help="create and start the stack's containers")
    add_services_arg(p)
    p.add_argument("-d", "--detach", action="store_true", help="run in the background")
    p.add_argument("--wait", action="store_true", help="wait until services are running/healthy")
    p.add_argument("--build", action="store_true", help="build images before starting")
    p.add_argument("--no-build", action="store_true")
    p.add_argument("--no-start", action="store_true")
    p.add_argument("--force-recreate", action="store_true")
    p.add_argument("--no-recreate", action="store_true")
    p.add_argument("--remove-orphans", action="store_true")
    p.add_argument("--scale", action="append", default=[], metavar="SERVICE=NUM")
    p.add_argument("--abort-on-container-exit", action="store_true")
    p.add_argument("--exit-code-from", metavar="SERVICE")
    p.add_argument("-t", "--timeout", type=float, default=None)
    p.set_defaults(func=up)

    d = sub.add_parser("down", help="stop and remove containers and networks")
    d.add_argument("-v", "--volumes", action="store_true", help="also remove named volumes")
    d.add_argument("--remove-orphans", action="store_true")
    d.add_argument("-t", "--timeout", type=float, default=None)
    d.set_defaults(func=down)


def _scale(items: list[str]) -> dict[str, int]:
    out = {}
    for item in items:
        name, sep, num = item.partition("=")
        if not sep or not num.isdigit():
            raise ComposerError(f"--scale {item!r}: use SERVICE=NUMBER")
        out[name] = int(num)
    return out


def up(args: argparse.Namespace) -> int:
    if args.exit_code_from:
        args.abort_on_container_exit = True
    opts = UpOptions(
        services=args.services, force_recreate=args.force_recreate, no_recreate=args.no_recreate,
        remove_orphans=args.remove_orphans, scale=_scale(args.scale), build=args.build,
        no_build=args.no_build, no_start=args.no_start, wait=args.wait, timeout=args.timeout,
    )

    async def go(project: Project) -> int:
        await project.up(opts)
        if args.detach or opts.no_start:
            return 0
        close = getattr(project.progress, "close", None)
        if close is not None:
            close()  # the live display ends where the logs begin
        return await attach(project, args)

    return run(with_project(args, go))


async def attach(project: Project, args: argparse.Namespace) -> int:
    """Interleaved, prefixed logs until every container stopped; Ctrl-C stops in order."""
    services = set(args.services) if args.services else set()
    containers = [c for c in await project.containers(all=False)
                  if not services or c.labels.get(L.SERVICE) in project.graph.select(services)]
    tty = sys.stdout.isatty()
    width = max((len(c.name) for c in containers), default=0)
    exit_codes: dict[str, int] = {}
    first_exit: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def follow(i: int, c) -> None:  # type: ignore[no-untyped-def]
        prefix = f"{c.name:<{width}} | "
        if tty:
            prefix = f"\033[{COLOURS[i % len(COLOURS)]}m{prefix}\033[0m"
        async for line in project.engine.logs(c.id, follow=True):
            sys.stdout.write(prefix + line.data if line.data.endswith("\n") else prefix + line.data + "\n")
            sys.stdout.flush()
        code = await project.engine.wait_container(c.id)
        exit_codes[c.labels.get(L.SERVICE, c.name)] = code
        print(f"{c.name} exited with code {code}", flush=True)
        if not first_exit.done():
            first_exit.set_result(c.labels.get(L.SERVICE, ""))

    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGINT, stop_requested.set)
        loop.add_signal_handler(signal.SIGTERM, stop_requested.set)
    tasks = [asyncio.create_task(follow(i, c)) for i, c in enumerate(containers)]
    all_done = asyncio.gather(*tasks, return_exceptions=True)
    waiters = [asyncio.ensure_future(stop_requested.wait()), all_done]
    if args.abort_on_container_exit:
        waiters.append(first_exit)
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    if stop_requested.is_set() or (args.abort_on_container_exit and first_exit.done()):
        print("Gracefully stopping... (press Ctrl+C again to force)", file=sys.stderr, flush=True)
        loop.remove_signal_handler(signal.SIGINT)
        await project.stop(args.services or (), timeout=args.timeout)
    with contextlib.suppress(BaseException):
        await asyncio.wait_for(all_done, 30)
    for w in waiters:
        if isinstance(w, asyncio.Future) and not w.done():
            w.cancel()
    if args.exit_code_from:
        return exit_codes.get(args.exit_code_from, 0)
    if args.abort_on_container_exit and first_exit.done():
        return exit_codes.get(first_exit.result(), 0)
    return 130 if stop_requested.is_set() else 0


def down(args: argparse.Namespace) -> int:
    async def go(project: Project) -> int:
        await project.down(remove_orphans=args.remove_orphans, volumes=args.volumes,
                           timeout=args.timeout)
        return 0

    return run(with_project(args, go))
