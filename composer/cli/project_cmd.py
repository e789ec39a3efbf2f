"""`composer create`, `scale`, `wait` and `volumes` (`version` is version_cmd)."""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from typing import TYPE_CHECKING, cast

from composer import labels as L
from composer.cli.common import add_services_arg, orphan_options, run, with_project
from composer.cli.psformat import FormatError, render
from composer.cli.up_cmd import _scale, check_recreate_flags
from composer.errors import ComposerError
from composer.operations import PULL_POLICIES, Project, UpOptions

if TYPE_CHECKING:
    from runtime.client import Client

VOLUME_TABLE = "table {{.Driver}}\t{{.Name}}"
VOLUME_HEADERS = {"Driver": "DRIVER", "Name": "VOLUME NAME", "Mountpoint": "MOUNTPOINT",
                  "Labels": "LABELS", "Scope": "SCOPE", "Size": "SIZE", "Links": "LINKS",
                  "Availability": "AVAILABILITY", "Group": "GROUP", "Status": "STATUS"}


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    c = sub.add_parser("create", help="create the containers of the stack without starting them")
    add_services_arg(c)
    c.add_argument("--build", action="store_true", help="build images before creating containers")
    c.add_argument("--no-build", action="store_true", help="never build an image")
    c.add_argument("--pull", choices=PULL_POLICIES, default=None, metavar="POLICY",
                   help="pull images first: always, missing, never or build "
                        "(default: each service's pull_policy)")
    c.add_argument("--quiet-pull", action="store_true", help="pull without progress lines")
    c.add_argument("--force-recreate", action="store_true",
                   help="recreate containers even if their configuration and image are the same")
    c.add_argument("--no-recreate", action="store_true",
                   help="keep existing containers (incompatible with --force-recreate)")
    c.add_argument("--remove-orphans", action="store_true",
                   help="remove containers of services no longer in the stack file")
    c.add_argument("--scale", action="append", default=[], metavar="SERVICE=NUM",
                   help="NUM containers of SERVICE (over scale: in the file); repeatable")
    c.add_argument("-y", "--yes", action="store_true",
                   help='assume "yes" to prompts (composer never prompts)')
    c.set_defaults(func=create)

    s = sub.add_parser("scale", help="set the number of containers of services")
    s.add_argument("services", nargs="+", metavar="SERVICE=NUM")
    s.add_argument("--no-deps", action="store_true", help="don't start the services they depend on")
    s.set_defaults(func=scale)

    w = sub.add_parser("wait", help="block until the containers of the services stop; exit "
                                    "with the code of the first one that stops")
    w.add_argument("services", nargs="+", metavar="SERVICE")
    w.add_argument("--down-project", action="store_true",
                   help="take the project down (`down --remove-orphans`) once the first "
                        "container stops")
    w.set_defaults(func=wait)

    v = sub.add_parser("volumes", help="list the stack's volumes")
    add_services_arg(v)
    v.add_argument("-q", "--quiet", action="store_true", help="only the volume names")
    v.add_argument("--format", default=None,
                   help='table (default), json, or a template: "{{.Name}} {{.Mountpoint}}"')
    v.set_defaults(func=volumes)


def create(args: argparse.Namespace) -> int:
    if args.build and args.no_build:
        raise ComposerError("--build and --no-build can't be combined (pick one)")
    check_recreate_flags(args)
    opts = UpOptions(services=args.services, force_recreate=args.force_recreate,
                     no_recreate=args.no_recreate, remove_orphans=orphan_options(args)[0],
                     ignore_orphans=orphan_options(args)[1],
                     scale=_scale(args.scale), build=args.build, no_build=args.no_build,
                     no_start=True, pull=args.pull, quiet_pull=args.quiet_pull)

    async def go(project: Project) -> int:
        await project.up(opts)
        return 0

    return run(with_project(args, go))


def parse_replicas(items: list[str]) -> dict[str, int]:
    """`SERVICE=NUM` arguments of `scale` (docker compose's parseServicesReplicasArgs)."""
    out: dict[str, int] = {}
    for item in items:
        name, sep, num = item.partition("=")
        if not sep or not name or not num:
            raise ComposerError(f"invalid scale specifier {item!r}: use SERVICE=NUMBER")
        try:
            out[name] = int(num)
        except ValueError:
            raise ComposerError(f"invalid scale specifier {item!r}: {num!r} is not a number "
                                "of replicas") from None
        if out[name] < 0:
            raise ComposerError(f"invalid scale specifier {item!r}: use 0 or more replicas")
    return out


def scale(args: argparse.Namespace) -> int:
    replicas = parse_replicas(args.services)
    args.services = sorted(replicas)  # what the project checks and enables

    async def go(project: Project) -> int:
        project.check_services(args.services)
        await project.up(UpOptions(services=args.services, scale=replicas, no_deps=args.no_deps))
        return 0

    return run(with_project(args, go))


def wait(args: argparse.Namespace) -> int:
    """As `docker compose wait`: the running containers of the services (one-off ones too);
    each exit is printed; the code is the first container's to stop."""

    async def go(project: Project) -> int:
        cs = await project.containers(args.services, all=False, oneoff=None)
        if not cs:
            raise ComposerError(f'no running containers for services {", ".join(args.services)} '
                                f'of project "{project.name}"')
        order: list[int] = []

        async def one(cid: str) -> None:
            code = await project.engine.wait_container(cid)
            print(f'container "{cid}" exited with status code {code}', flush=True)
            order.append(code)

        tasks = [asyncio.ensure_future(one(c.id)) for c in cs]
        try:
            if args.down_project:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for t in tasks:
                    if t.done():
                        t.result()
                async with _lock(project):
                    await project.down(remove_orphans=True)
            else:
                await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return order[0] if order else 0

    return run(with_project(args, go, lock=False))


def _lock(project: Project) -> contextlib.AbstractAsyncContextManager[None]:
    client = cast("Client", project.engine)  # the CLI's engine is composerd's client
    return client.lock(project.name, on_wait=lambda m: print(m, file=sys.stderr))


def volumes(args: argparse.Namespace) -> int:
    """As `docker compose volumes`: the project's volumes (those its services' containers
    mount, when services are named), Docker's volume columns."""

    async def go(project: Project) -> int:
        vols = await project.engine.list_volumes(labels={L.PROJECT: project.name})
        if args.services:
            used = {m.source for c in await project.containers(args.services)
                    for m in c.mounts if m.type == "volume"}
            vols = [v for v in vols if v.name in used]
        vols.sort(key=lambda v: v.name)
        if args.quiet:
            for v in vols:
                print(v.name)
            return 0
        rows = [{
            "Availability": "N/A", "Driver": "local", "Group": "N/A",
            "Labels": ",".join(f"{k}={val}" for k, val in sorted(v.spec.labels.items())),
            "Links": "N/A", "Mountpoint": v.mountpoint, "Name": v.name, "Scope": "local",
            "Size": "N/A", "Status": "N/A",
        } for v in vols]
        try:
            render(rows, [v.spec.labels for v in vols], args.format, sys.stdout.write,
                   default=VOLUME_TABLE, headers=VOLUME_HEADERS)
        except FormatError as e:
            raise ComposerError(str(e)) from None
        return 0

    return run(with_project(args, go, lock=False))
