"""`composer ps`, `ls`, `port`, `top`, `images`, `stats`: what runs, and where."""
from __future__ import annotations

import argparse
import asyncio
import json
import sys

from composer import labels as L
from composer.cli.common import add_services_arg, engine, run, with_project
from composer.errors import ComposerError
from composer.operations import Project
from runtime.api import ContainerInfo


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("ps", help="list the stack's containers")
    add_services_arg(p)
    p.add_argument("-a", "--all", action="store_true", help="also stopped containers")
    p.add_argument("-q", "--quiet", action="store_true", help="only ids")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--services", dest="list_services", action="store_true")
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


def format_ports(c: ContainerInfo) -> str:
    parts = []
    for p in c.ports:
        host = p.host_ip or "0.0.0.0"
        parts.append(f"{host}:{p.host_port}->{p.container_port}/{p.protocol}")
    return ", ".join(parts)


def status_text(c: ContainerInfo) -> str:
    if c.state == "running":
        health = f" ({c.health})" if c.health else ""
        return f"Up{health}"
    if c.state == "exited":
        return f"Exited ({c.exit_code})"
    return c.state.capitalize()


def ps(args: argparse.Namespace) -> int:
    async def go(project: Project) -> int:
        cs = await project.containers(args.services, all=args.all)
        if args.list_services:
            for s in sorted({c.labels.get(L.SERVICE, "") for c in cs}):
                print(s)
        elif args.quiet:
            for c in cs:
                print(c.id)
        elif args.format == "json":
            print(json.dumps([{
                "ID": c.id, "Name": c.name, "Image": c.image, "Project": project.name,
                "Service": c.labels.get(L.SERVICE, ""), "State": c.state, "Health": c.health,
                "ExitCode": c.exit_code or 0, "Status": status_text(c),
                "Publishers": [{"URL": p.host_ip or "0.0.0.0", "TargetPort": p.container_port,
                                "PublishedPort": p.host_port, "Protocol": p.protocol} for p in c.ports],
            } for c in cs]))
        else:
            rows = [("NAME", "IMAGE", "SERVICE", "STATUS", "PORTS")]
            rows += [(c.name, c.image, c.labels.get(L.SERVICE, ""), status_text(c), format_ports(c))
                     for c in cs]
            _table(rows)
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
