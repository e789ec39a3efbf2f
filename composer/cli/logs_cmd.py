"""`composer logs` and `composer events`."""
from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from composer import labels as L
from composer.cli.logprint import LogPrinter, short_name, stamp
from composer.cli.output import colours
from composer.cli.quick import ReadProject, add_services_arg, read_project
from composer.cli.timespec import parse_time
from composer.errors import ComposerError
from runtime.errors import Conflict, NotFound

if TYPE_CHECKING:
    from composer.operations import Project
    from runtime.api import ContainerInfo


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("logs", help="output of the stack's containers")
    add_services_arg(p)
    p.add_argument("-f", "--follow", action="store_true",
                   help="follow: new output, across restarts, until the containers stop")
    p.add_argument("-n", "--tail", default="all", help="lines from the end of each log")
    p.add_argument("-t", "--timestamps", action="store_true")
    p.add_argument("--since", help="from this time on: 2024-01-02T15:04:05Z, 10m, Unix seconds")
    p.add_argument("--until", help="up to this time: same forms as --since")
    p.add_argument("--no-log-prefix", action="store_true")
    p.add_argument("--no-color", action="store_true")
    p.set_defaults(func=logs)
    e = sub.add_parser("events", help="container events of the stack, as they happen")
    add_services_arg(e)
    e.add_argument("--json", action="store_true", help="one JSON object per line")
    e.add_argument("--since", metavar="TIME",
                   help="also the recent events from TIME (10m, 2024-01-02T15:04:05Z, Unix "
                        "seconds); composerd keeps its last 1024")
    e.add_argument("--until", metavar="TIME", help="stop at TIME (at once when it is past)")
    e.set_defaults(func=events)


def _stamp(t: float) -> str:
    return stamp(t)


def _tail(text: str) -> int | None:
    if text == "all":
        return None
    try:
        n = int(text)
    except ValueError:
        raise ComposerError(f"--tail {text!r}: give a number of lines or all") from None
    return None if n < 0 else n  # docker: a negative tail is all


def logs(args: argparse.Namespace) -> int:
    tail = _tail(args.tail)
    since = parse_time(args.since, "--since") if args.since else None
    until = parse_time(args.until, "--until") if args.until else None
    printer = LogPrinter(colour=colours(sys.stdout) and not args.no_color,
                         prefix=not args.no_log_prefix, timestamps=args.timestamps)

    if not args.follow:
        async def once(project: ReadProject) -> int:
            try:
                await _print_logs(project, printer, await project.containers(args.services),
                                  tail, since, until)
            finally:
                printer.flush()
            return 0

        return read_project(args, once)
    import asyncio
    import contextlib

    from composer.cli.common import run, with_project
    from composer.cli.logfollow import Logs

    async def go(project: Project) -> int:
        # a runtime.client.Stream: open() returns once the daemon has subscribed
        events: Any = project.engine.events() if args.follow else None
        if events is not None:
            await events.open()  # before listing: a start from now on is seen
        try:
            follower = Logs(project, printer, args.services, tail, since, until, args.follow)
            for c in await project.containers(args.services, all=True):
                follower.follow(c)
            if events is None:
                await follower.done()
            else:
                watcher = asyncio.ensure_future(follower.watch(events))
                try:
                    await follower.done()
                finally:
                    watcher.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await watcher
        finally:
            if events is not None:
                await events.aclose()
            printer.flush()
        return 0

    return run(with_project(args, go, lock=False))


async def _print_logs(project: ReadProject, printer: LogPrinter, cs: list[ContainerInfo],
                      tail: int | None, since: float | None, until: float | None) -> None:
    """The logs there are now, one container after the other (`logs` without -f): no task
    per container, so that the quick path runs it without an event loop."""
    for c in cs:
        printer.register(c.id, short_name(c.name, project.name))
    for c in cs:
        try:
            async for line in project.engine.logs(c.id, follow=False, tail=tail, since=since,
                                                  until=until):
                printer.output(c.id, line.stream, line.data.encode("utf-8", "surrogateescape"),
                               line.time)
        except Conflict as e:  # logging driver none: nothing to read (docker compose warns)
            print(f"WARN[0000] can't retrieve logs for {c.name!r}: {e}", file=sys.stderr)
        except NotFound:
            pass  # removed meanwhile
        finally:
            printer.end(c.id)


def events(args: argparse.Namespace) -> int:
    from composer.cli.common import run, with_project

    since = parse_time(args.since, "--since") if args.since else None
    until = parse_time(args.until, "--until") if args.until else None
    if since is not None and until is not None and until < since:
        raise ComposerError("--until is before --since: swap them")

    async def go(project: Project) -> int:
        stream = project.engine.events(since=since, until=until) \
            if since is not None or until is not None else project.engine.events()
        async for ev in stream:
            if ev.attributes.get(L.PROJECT) != project.name:
                continue
            service = ev.attributes.get(L.SERVICE, "")
            if args.services and service not in args.services:
                continue
            if args.json:
                print(json.dumps({"time": _stamp(ev.time), "type": ev.type, "action": ev.action,
                                  "id": ev.id, "service": service,
                                  "attributes": {"name": ev.name}}), flush=True)
            else:
                print(f"{_stamp(ev.time)} {ev.type} {ev.action} {ev.id} (name={ev.name}, "
                      f"service={service})", flush=True)
        return 0

    return run(with_project(args, go, lock=False))
