"""`composer logs` and `composer events`."""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from typing import Any

from composer import labels as L
from composer.cli.common import add_services_arg, run, with_project
from composer.cli.logprint import LogPrinter, short_name, stamp
from composer.cli.output import colours
from composer.cli.timespec import parse_time
from composer.errors import ComposerError
from composer.operations import Project
from runtime.api import ContainerInfo
from runtime.errors import Conflict, NotFound


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

    async def go(project: Project) -> int:
        # a runtime.client.Stream: open() returns once the daemon has subscribed
        events: Any = project.engine.events() if args.follow else None
        if events is not None:
            await events.open()  # before listing: a start from now on is seen
        try:
            follower = _Logs(project, printer, args.services, tail, since, until, args.follow)
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

    return run(with_project(args, go, lock=False, read_only=not args.follow))


class _Logs:
    """One log stream per container; with `follow`, containers of the services that start
    later (a new or recreated container, or one started again after it stopped) are
    followed from their start, as `docker compose logs -f` does. A restart of a followed
    container does not end its stream (the engine follows it through)."""

    def __init__(self, project: Project, printer: LogPrinter, services: list[str],
                 tail: int | None, since: float | None, until: float | None,
                 follow: bool) -> None:
        self.project = project
        self.printer = printer
        self.services = services
        self.tail, self.since, self.until, self.follow_ = tail, since, until, follow
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.seen: dict[str, float] = {}  # container -> time of the last entry shown
        self.idle = asyncio.Event()
        self.idle.set()

    def follow(self, c: ContainerInfo, resume: bool = False) -> None:
        """Stream `c`'s log; `resume`: it started again, show what came after the last
        entry shown (all of it for a container not seen before)."""
        self.printer.register(c.id, short_name(c.name, self.project.name))
        self.idle.clear()
        self.tasks[c.id] = asyncio.ensure_future(self._one(c, resume))

    async def _one(self, c: ContainerInfo, resume: bool) -> None:
        tail = None if resume else self.tail
        since = self.since
        if not resume:  # what is older than now was shown or left out by --tail/--since
            self.seen[c.id] = time.time()
        elif c.id in self.seen:
            since = max(since or 0.0, self.seen[c.id] + 1e-9)
        again = False
        try:
            async for line in self.project.engine.logs(c.id, follow=self.follow_, tail=tail,
                                                       since=since, until=self.until):
                self.printer.output(c.id, line.stream,
                                    line.data.encode("utf-8", "surrogateescape"), line.time)
                self.seen[c.id] = max(self.seen.get(c.id, 0.0), line.time)
            if self.follow_:  # it stopped -- or was started again as the stream ended
                info = await self.project.engine.inspect_container(c.id)
                again = info.state in ("running", "restarting", "paused") and (
                    self.until is None or time.time() <= self.until)
        except Conflict as e:  # logging driver none: nothing to read (docker compose warns)
            print(f"WARN[0000] can't retrieve logs for {c.name!r}: {e}", file=sys.stderr)
        except NotFound:
            pass  # removed meanwhile
        finally:
            self.printer.end(c.id)
            self.tasks.pop(c.id, None)
            if again:
                self.follow(c, resume=True)
            elif not self.tasks:
                self.idle.set()

    async def done(self) -> None:
        await self.idle.wait()

    async def watch(self, events: Any) -> None:
        async for ev in events:
            if ev.type != "container" or ev.action != "start" or ev.id in self.tasks:
                continue
            attrs = ev.attributes
            if attrs.get(L.PROJECT) != self.project.name or attrs.get(L.ONEOFF) == "True":
                continue
            if self.services and attrs.get(L.SERVICE) not in self.services:
                continue
            with contextlib.suppress(NotFound):
                self.follow(await self.project.engine.inspect_container(ev.id), resume=True)


def events(args: argparse.Namespace) -> int:
    from composer.cli.timespec import parse_time

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
