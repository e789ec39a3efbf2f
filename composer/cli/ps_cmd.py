"""`composer ps`, `ls`, `port`, `top`, `images`, `stats`: what runs, and where."""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from composer import labels as L
from composer.cli.psformat import (
    STATES,
    FormatError,
    go_json,
    human_duration,
    render,
    summary,
    tabwrite,
)
from composer.cli.quick import ReadProject, add_services_arg, read_project
from composer.errors import ComposerError

if TYPE_CHECKING:
    from composer.operations import Project
    from runtime.api import ContainerInfo, Stats

# `ps` and `port` take the quick path (composer.cli.quick: no asyncio, aiohttp or stack
# loader to import); the other verbs here import what they need when they run.


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
    ls.add_argument("-a", "--all", action="store_true", help="also projects with only stopped "
                                                             "containers")
    ls.add_argument("--format", choices=("table", "json"), default="table",
                    help="table (default) or json")
    ls.add_argument("-q", "--quiet", action="store_true", help="only the project names")
    ls.add_argument("--filter", action="append", default=[], metavar="name=REGEX",
                    help="only projects whose name matches (a regular expression, as docker "
                         "compose); repeatable")
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

    st = sub.add_parser("stats", help="a live stream of each container's resource usage")
    add_services_arg(st)
    st.add_argument("--no-stream", action="store_true",
                    help="print one sample and exit instead of refreshing every second")
    st.add_argument("-a", "--all", action="store_true",
                    help="all containers (default: the running ones)")
    st.add_argument("--format", default=None,
                    help='table (default), json, or a template: "{{.Name}} {{.CPUPerc}}", '
                         '"table {{.Name}}\t{{.MemUsage}}"')
    st.add_argument("--no-trunc", action="store_true", help="don't shorten container ids")
    st.set_defaults(func=stats_cmd)

    images = sub.add_parser("images", help="images used by the stack's containers")
    add_services_arg(images)
    images.add_argument("-q", "--quiet", action="store_true", help="only the image ids")
    images.add_argument("--format", choices=("table", "json"), default="table",
                        help="table (default) or json")
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

    async def go(project: ReadProject) -> int:
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

    return read_project(args, go)


def _table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("   ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def _name_filters(items: list[str]) -> list[re.Pattern[str]]:
    """`--filter name=REGEX` (docker compose: an exact name or a regular expression)."""
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ComposerError(f"invalid --filter {item!r}: use name=REGEX")
        if key != "name":
            raise ComposerError(f"invalid filter {key!r} (supported: name)")
        try:
            out.append(re.compile(value))
        except re.error as e:
            raise ComposerError(f"invalid --filter {item!r}: {e}") from None
    return out


def ls_projects(args: argparse.Namespace) -> int:
    from composer.cli.common import engine, run

    filters = _name_filters(args.filter)

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
        if filters:
            items = [p for p in items
                     if any(f.pattern == p["Name"] or f.search(str(p["Name"])) for f in filters)]
        items.sort(key=lambda p: str(p["Name"]))
        if args.quiet:
            for p in items:
                print(p["Name"])
            return 0
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
    async def go(project: ReadProject) -> int:
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

    return read_project(args, go)


def top_cmd(args: argparse.Namespace) -> int:
    from composer.cli.common import run, with_project

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
    """As `docker compose stats`: Docker's columns and words; CPU % over the last interval
    (--no-stream: two samples half a second apart)."""
    import asyncio

    from composer.cli import statsformat
    from composer.cli.common import run, with_project

    async def sample(project: Project, cs: list[ContainerInfo]) -> dict[str, tuple[float, Stats]]:
        loop = asyncio.get_running_loop()
        got = await asyncio.gather(*(project.engine.stats(c.id) for c in cs))
        now = loop.time()
        return {c.id: (now, s) for c, s in zip(cs, got, strict=True)}

    async def go(project: Project) -> int:
        tty = sys.stdout.isatty() and not args.no_stream
        prev: dict[str, tuple[float, Stats]] = {}
        host_mem = statsformat.host_memory()
        while True:
            cs = await project.containers(args.services, all=args.all)
            if not prev:
                prev = await sample(project, cs)
                await asyncio.sleep(0.5)
            now = await sample(project, cs)
            rows = [statsformat.row(c, now[c.id], prev.get(c.id), host_mem,
                                    trunc=not args.no_trunc) for c in cs]
            prev = now
            if tty:
                sys.stdout.write("\033[2J\033[H")
            try:
                render(rows, [c.labels for c in cs], args.format, sys.stdout.write,
                       default=statsformat.DEFAULT_TABLE, headers=statsformat.HEADERS)
            except FormatError as e:
                raise ComposerError(str(e)) from None
            sys.stdout.flush()
            if args.no_stream:
                return 0
            await asyncio.sleep(1)

    return run(with_project(args, go, lock=False))


def images_cmd(args: argparse.Namespace) -> int:
    """As `docker compose images`: one row per container (CONTAINER REPOSITORY TAG PLATFORM
    IMAGE ID SIZE CREATED); -q the distinct ids; --format json a list of objects."""
    from composer.cli.common import run, with_project
    from composer.cli.statsformat import human_size
    from runtime.images.config import host_arch
    from runtime.images.reference import Reference

    async def go(project: Project) -> int:
        rows: list[dict[str, object]] = []
        for c in sorted(await project.containers(args.services), key=lambda c: c.name):
            try:
                img = await project.engine.inspect_image(c.image_id or c.image)
            except Exception:  # removed since: the container still says which one it was
                img = None
            try:
                ref = Reference.parse(c.image)
                repo, tag = ref.familiar_name, ref.tag or ""
            except Exception:
                repo, tag = "", ""
            rows.append({"ID": img.id if img else c.image_id, "ContainerName": c.name,
                         "Repository": repo, "Tag": tag, "Platform": f"linux/{host_arch()}",
                         "Size": img.size if img else 0,
                         "Created": _rfc3339(img.created_at) if img and img.created_at else None})
        if args.quiet:
            for iid in dict.fromkeys(str(r["ID"]).split(":")[-1] for r in rows if r["ID"]):
                print(iid)
        elif args.format == "json":
            print(go_json([{k: v for k, v in r.items() if v is not None} for r in rows]))
        else:
            now = time.time()
            lines = ["CONTAINER\tREPOSITORY\tTAG\tPLATFORM\tIMAGE ID\tSIZE\tCREATED"]
            for r in rows:
                created = r["Created"]
                ago = (human_duration(now - _epoch(str(created))) + " ago") if created else "N/A"
                lines.append("\t".join((
                    str(r["ContainerName"]), str(r["Repository"]) or "<none>",
                    str(r["Tag"]) or "<none>", str(r["Platform"]),
                    str(r["ID"]).split(":")[-1][:12], human_size(int(r["Size"])),  # type: ignore[call-overload]
                    ago)))
            for line in tabwrite(lines):
                print(line)
        return 0

    return run(with_project(args, go, lock=False))


def _rfc3339(t: float) -> str:
    """How Go's encoding/json writes a time.Time in UTC (RFC 3339, nanoseconds trimmed)."""
    import datetime as dt

    text = dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0")
    return text.rstrip(".") + "Z"


def _epoch(text: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
