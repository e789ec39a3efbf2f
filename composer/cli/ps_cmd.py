"""`composer ps`, `ls`, `port`, `top`, `images`, `stats`: what runs, and where."""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from composer import labels as L
from composer.cli.common import add_services_arg, engine, run, with_project
from composer.cli.psformat import STATES, FormatError, render, summary
from composer.errors import ComposerError
from composer.operations import Project


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("ps", help="list the stack's containers")
    add_services_arg(p)
    p.add_argument("-a", "--all", action="store_true",
                   help="also stopped containers, and those of `run`")
    p.add_argument("-q", "--quiet", action="store_true", help="only ids")
    p.add_argument("--format", default=None,
                   help='table (default), json, or a template: "{{.Name}} {{.Status}}", '
                        '"table {{.Name}}\t{{.State}}"')
    p.add_argument("--services", dest="list_services", action="store_true",
                   help="print the services' names")
    p.add_argument("--status", action="append", default=[], metavar="STATUS",
                   help=f"only containers in this state ({', '.join(STATES)}); repeatable")
    p.add_argument("--filter", default=None, metavar="KEY=VALUE",
                   help="filter by a property (supported: status=STATE)")
    p.add_argument("--no-trunc", action="store_true", help="don't shorten ids, commands, mounts")
    p.add_argument("--orphans", nargs="?", const="true", default="true", type=_bool,
                   metavar="true|false",
                   help="include containers of services not in the stack file (default true)")
    p.set_defaults(func=ps)

    ls = sub.add_parser("ls", help="list running projects")
    ls.add_argument("-a", "--all", action="store_true")
    ls.add_argument("--format", choices=("table", "json"), default="table")
    ls.set_defaults(func=ls_projects)

    port = sub.add_parser("port", help="the host address of a published port")
    port.add_argument("service")
    port.add_argument("private_port")
    port.add_argument("--protocol", default="tcp")
    port.add_argument("--index", type=int, default=1)
    port.set_defaults(func=port_cmd)

    top = sub.add_parser("top", help="the processes of each container")
    add_services_arg(top)
    top.set_defaults(func=top_cmd)

    st = sub.add_parser("stats", help="memory, cpu and pids of each container")
    add_services_arg(st)
    st.add_argument("--no-stream", action="store_true")
    st.set_defaults(func=stats_cmd)

    images = sub.add_parser("images", help="images used by the stack's containers")
    add_services_arg(images)
    images.set_defaults(func=images_cmd)


def _bool(text: str) -> bool:
    value = text.lower()
    if value in ("true", "1", "t"):
        return True
    if value in ("false", "0", "f"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {text!r} (use true or false)")


def _statuses(args: argparse.Namespace) -> list[str]:
    """--status values and --filter status=..., as docker compose reads them."""
    wanted = list(args.status)
    if args.filter:
        key, sep, value = args.filter.partition("=")
        if not sep:
            raise ComposerError("arguments to --filter should be in form KEY=VALUE")
        if key != "status":
            raise ComposerError(f"unknown filter {key} (supported: status)")
        wanted.append(value)
    bad = [w for w in wanted if w not in STATES]
    if bad:
        raise ComposerError(f"invalid status {bad[0]!r} (use {', '.join(STATES)})")
    return wanted


def ps(args: argparse.Namespace) -> int:
    """As `docker compose ps`: running service containers; -a adds stopped ones and `run`
    containers; sorted by name."""
    statuses = _statuses(args)
    show_all = args.all or bool(statuses)

    async def go(project: Project) -> int:
        services = list(args.services)
        if not services and not args.orphans and not project.by_labels:
            services = list(project.stack.services)  # only what the stack file declares
        cs = await project.containers(services, all=show_all, oneoff=None if show_all else False)
        if statuses:
            cs = [c for c in cs if c.state in statuses]
        cs.sort(key=lambda c: c.name)
        if args.quiet:
            for c in cs:
                print(c.id)
        elif args.list_services:
            for s in dict.fromkeys(c.labels.get(L.SERVICE, "") for c in cs):
                print(s)
        else:
            now = time.time()
            rows = [summary(c, project.name, trunc=not args.no_trunc, now=now) for c in cs]
            try:
                render(rows, [c.labels for c in cs], args.format, sys.stdout.write)
            except FormatError as e:
                raise ComposerError(str(e)) from None
        return 0

    return run(with_project(args, go, lock=False))


def _table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("   ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def ls_projects(args: argparse.Namespace) -> int:
    async def go() -> int:
        client = await engine()
        try:
            cs = await client.list_containers(all=True)
        finally:
            await client.close()
        projects: dict[str, dict[str, object]] = {}
        for c in cs:
            name = c.labels.get(L.PROJECT)
            if not name:
                continue
            p = projects.setdefault(name, {"Name": name, "running": 0, "exited": 0,
                                           "ConfigFiles": c.labels.get(L.CONFIG_FILES, "")})
            key = "running" if c.state == "running" else "exited"
            p[key] = int(p[key]) + 1  # type: ignore[call-overload]
        items = [p for p in projects.values() if args.all or int(p["running"]) > 0]  # type: ignore[call-overload]
        for p in items:
            st = [f"running({p['running']})"] if p["running"] else []
            if p["exited"]:
                st.append(f"exited({p['exited']})")
            p["Status"] = ", ".join(st)
        if args.format == "json":
            print(json.dumps([{k: p[k] for k in ("Name", "Status", "ConfigFiles")} for p in items]))
        else:
            _table([("NAME", "STATUS", "CONFIG FILES")] +
                   [(str(p["Name"]), str(p["Status"]), str(p["ConfigFiles"])) for p in items])
        return 0

    return run(go())


def port_cmd(args: argparse.Namespace) -> int:
    async def go(project: Project) -> int:
        cs = [c for c in await project.containers([args.service], all=False)
              if c.labels.get(L.CONTAINER_NUMBER) == str(args.index)]
        if not cs:
            raise ComposerError(f"service {args.service} has no running container #{args.index}")
        for p in cs[0].ports:
            if str(p.container_port) == args.private_port and p.protocol == args.protocol:
                print(f"{p.host_ip or '0.0.0.0'}:{p.host_port}")
                return 0
        raise ComposerError(
            f"no port {args.private_port}/{args.protocol} published for service {args.service}")

    return run(with_project(args, go, lock=False))


def top_cmd(args: argparse.Namespace) -> int:
    async def go(project: Project) -> int:
        for c in await project.containers(args.services, all=False):
            print(c.name)
            rows = await project.engine.top(c.id)
            _table([("UID", "PID", "PPID", "CMD")] +
                   [(r["UID"], r["PID"], r["PPID"], r["CMD"]) for r in rows])
            print()
        return 0

    return run(with_project(args, go, lock=False))


def _mib(n: int) -> str:
    return f"{n / 1048576:.1f}MiB"


def stats_cmd(args: argparse.Namespace) -> int:
    async def go(project: Project) -> int:
        prev: dict[str, tuple[float, int]] = {}
        loop = asyncio.get_running_loop()
        while True:
            cs = await project.containers(args.services, all=False)
            rows = [("NAME", "CPU %", "MEM USAGE / LIMIT", "PIDS")]
            for c in cs:
                s = await project.engine.stats(c.id)
                t = loop.time()
                cpu = 0.0
                if c.id in prev:
                    pt, pu = prev[c.id]
                    cpu = 100.0 * (s.cpu_usage_ns - pu) / 1e9 / max(t - pt, 1e-6)
                prev[c.id] = (t, s.cpu_usage_ns)
                limit = _mib(s.memory_limit) if s.memory_limit else "unlimited"
                rows.append((c.name, f"{cpu:.2f}%", f"{_mib(s.memory_usage)} / {limit}", str(s.pids)))
            if sys.stdout.isatty() and not args.no_stream:
                print("\033[2J\033[H", end="")
            _table(rows)
            if args.no_stream:
                return 0
            await asyncio.sleep(1)

    return run(with_project(args, go, lock=False))


def images_cmd(args: argparse.Namespace) -> int:
    async def go(project: Project) -> int:
        rows = [("CONTAINER", "IMAGE", "IMAGE ID", "SIZE")]
        for c in await project.containers(args.services):
            try:
                img = await project.engine.inspect_image(c.image)
                rows.append((c.name, c.image, img.id.split(":")[-1][:12], _mib(img.size)))
            except Exception:
                rows.append((c.name, c.image, "-", "-"))
        _table(rows)
        return 0

    return run(with_project(args, go, lock=False))
