"""`composer start`, `stop`, `restart`, `kill`, `pause`, `unpause`, `rm`."""
from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable

from composer import labels as L
from composer.cli.common import add_services_arg, run, with_project
from composer.cli.up_cmd import _seconds
from composer.errors import ComposerError
from composer.operations import Project, UpOptions


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    for name, fn, helptext in (
        ("start", start, "start existing containers"),
        ("stop", stop, "stop running containers (dependents first)"),
        ("restart", restart, "restart containers"),
        ("pause", pause, "freeze containers"),
        ("unpause", unpause, "thaw containers"),
    ):
        p = sub.add_parser(name, help=helptext)
        add_services_arg(p)
        if name in ("stop", "restart"):
            p.add_argument("-t", "--timeout", type=float, default=None)
        if name == "restart":
            p.add_argument("--no-deps", action="store_true",
                           help="don't restart the services depending on them with restart: true")
        if name in ("start", "restart"):
            p.add_argument("--wait", action="store_true",
                           help="return once the services are running, or healthy when they "
                                "have a health check (as up --wait)")
            p.add_argument("--wait-timeout", type=_seconds, default=None, metavar="SECONDS",
                           help="with --wait: fail when they are not running/healthy after "
                                "SECONDS")
        p.set_defaults(func=fn)
    k = sub.add_parser("kill", help="send a signal to containers")
    add_services_arg(k)
    k.add_argument("-s", "--signal", default="SIGKILL")
    k.set_defaults(func=kill)
    rm = sub.add_parser("rm", help="remove stopped containers")
    add_services_arg(rm)
    rm.add_argument("-f", "--force", action="store_true")
    rm.add_argument("-s", "--stop", action="store_true")
    rm.add_argument("-v", "--volumes", action="store_true")
    rm.set_defaults(func=rm_cmd)


def _then_wait(args: argparse.Namespace, act: Callable[[Project], Awaitable[None]]) -> int:
    """Act, then with --wait return once the services are running/healthy (as `up --wait`)."""
    if args.wait_timeout is not None and not args.wait:
        raise ComposerError("--wait-timeout needs --wait")

    async def go(p: Project) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + args.wait_timeout if args.wait_timeout else None
        await act(p)
        if args.wait:
            have = {c.labels.get(L.SERVICE) for c in await p.containers(args.services)}
            names = [n for n in p.selected(args.services, no_deps=True) if n in have]
            await p.wait_ready(names, UpOptions(wait_timeout=args.wait_timeout), deadline)

    return run(with_project(args, go)) or 0


def start(args: argparse.Namespace) -> int:
    return _then_wait(args, lambda p: p.start(args.services))


def stop(args: argparse.Namespace) -> int:
    return run(with_project(args, lambda p: p.stop(args.services, args.timeout))) or 0


def restart(args: argparse.Namespace) -> int:
    """As docker compose: each container restarted in dependency order, and with it the
    services that depend on it with `restart: true` (unless --no-deps)."""
    return _then_wait(args, lambda p: p.restart(args.services, timeout=args.timeout,
                                                no_deps=args.no_deps))


def _each(args: argparse.Namespace, verb: str, status: str, running_only: bool = True) -> int:
    async def go(p: Project) -> None:
        p.check_services(args.services)
        for c in await p.containers(args.services, all=not running_only):
            if verb == "kill":
                await p.engine.kill_container(c.id, args.signal)
            else:
                await getattr(p.engine, f"{verb}_container")(c.id)
            p.progress(f"Container {c.name}", status)

    return run(with_project(args, go)) or 0


def kill(args: argparse.Namespace) -> int:
    return _each(args, "kill", "Killed")


def pause(args: argparse.Namespace) -> int:
    return _each(args, "pause", "Paused")


def unpause(args: argparse.Namespace) -> int:
    return _each(args, "unpause", "Unpaused", running_only=False)


def rm_cmd(args: argparse.Namespace) -> int:
    async def go(p: Project) -> None:
        p.check_services(args.services)
        for c in await p.containers(args.services, all=True):
            if c.state in ("running", "paused", "restarting"):
                if not args.stop:
                    continue
                await p.engine.stop_container(c.id)
            await p.engine.remove_container(c.id, force=True, volumes=args.volumes)
            p.progress(f"Container {c.name}", "Removed")

    return run(with_project(args, go)) or 0
