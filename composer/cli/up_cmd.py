"""`composer up` and `composer down`."""
from __future__ import annotations

import argparse
import asyncio
import sys

from composer.cli.attached import AttachedUp, add_attach_args, attach_targets, attached
from composer.cli.common import add_services_arg, project_lock, run, with_project
from composer.cli.logprint import LogPrinter
from composer.errors import ComposerError
from composer.operations import Project, UpOptions


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
    add_attach_args(p)
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
    with_logs = attached(args)

    async def go(project: Project) -> int:
        if not with_logs:
            async with project_lock(project):
                await project.up(opts)
            return 0
        printer = LogPrinter(colour=sys.stdout.isatty() and not args.no_color,
                             prefix=not args.no_log_prefix, timestamps=args.timestamps)
        session = AttachedUp(
            project, attach_targets(project, args), printer, services=args.services,
            timeout=args.timeout, abort_on_exit=args.abort_on_container_exit,
            abort_on_failure=getattr(args, "abort_on_container_failure", False),
            exit_code_from=args.exit_code_from)
        project.before_start = session.attach  # attached before each start
        session.install_signals()
        try:
            # the lock covers the convergence only: `down` from another terminal must not
            # wait for this log session to end
            async with project_lock(project):
                session.converging = asyncio.ensure_future(project.up(opts))
                try:
                    await session.converging
                except asyncio.CancelledError:
                    if not session.interrupted:
                        raise  # not our Ctrl-C: pass it on
        except BaseException:
            await session.close()
            raise
        close = getattr(project.progress, "close", None)
        if close is not None:
            close()  # the live display ends where the logs begin
        return await session.run()

    return run(with_project(args, go, lock=False, live=True))


def down(args: argparse.Namespace) -> int:
    async def go(project: Project) -> int:
        await project.down(remove_orphans=args.remove_orphans, volumes=args.volumes,
                           timeout=args.timeout)
        return 0

    return run(with_project(args, go))
