"""`composer logs` and `composer events`."""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from composer import labels as L
from composer.cli.common import add_services_arg, run, with_project
from composer.cli.output import colours
from composer.cli.up_cmd import COLOURS
from composer.errors import ComposerError
from composer.operations import Project


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("logs", help="output of the stack's containers")
    add_services_arg(p)
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("-n", "--tail", default="all")
    p.add_argument("-t", "--timestamps", action="store_true")
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
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1e9):09d}Z"


def logs(args: argparse.Namespace) -> int:
    tail = None if args.tail == "all" else int(args.tail)
    colour = colours(sys.stdout) and not args.no_color

    async def go(project: Project) -> int:
        cs = await project.containers(args.services, all=True)
        width = max((len(c.name) for c in cs), default=0)

        async def one(i: int, c) -> None:  # type: ignore[no-untyped-def]
            prefix = "" if args.no_log_prefix else f"{c.name:<{width}} | "
            if colour and prefix:
                prefix = f"\033[{COLOURS[i % len(COLOURS)]}m{prefix}\033[0m"
            async for line in project.engine.logs(c.id, follow=args.follow, tail=tail):
                ts = _stamp(line.time) + " " if args.timestamps else ""
                data = line.data if line.data.endswith("\n") else line.data + "\n"
                sys.stdout.write(f"{prefix}{ts}{data}")
            sys.stdout.flush()

        await asyncio.gather(*(one(i, c) for i, c in enumerate(cs)))
        return 0

    return run(with_project(args, go, lock=False))


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
