"""`composer up` and `composer down`."""
from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from composer.cli import nothing_left_to_tear_down
from composer.cli.attached import AttachedUp, add_attach_args, attach_targets, attached
from composer.cli.common import add_services_arg, orphan_options, project_lock, run, with_project
from composer.cli.logprint import LogPrinter, short_name
from composer.cli.output import colours
from composer.cli.progress import end_live
from composer.errors import ComposerError
from composer.hooks import HookOutput
from composer.operations import PULL_POLICIES, Project, UpOptions
from runtime.tasks import cancel_and_wait


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
    p.add_argument("--abort-on-container-failure", action="store_true",
                   help="stop every container when one exits non-zero")
    p.add_argument("--exit-code-from", metavar="SERVICE")
    p.add_argument("-t", "--timeout", type=float, default=None)
    p.add_argument("--no-deps", action="store_true", help="don't start the named services' dependencies")
    p.add_argument("--always-recreate-deps", action="store_true",
                   help="recreate the dependencies too (incompatible with --no-recreate)")
    p.add_argument("-V", "--renew-anon-volumes", action="store_true",
                   help="recreate anonymous volumes instead of keeping the previous containers' data")
    p.add_argument("--pull", choices=PULL_POLICIES, default=None, metavar="POLICY",
                   help="pull images before running: always, missing, never or build "
                        "(default: each service's pull_policy)")
    p.add_argument("--quiet-pull", action="store_true", help="pull without progress lines")
    p.add_argument("--wait-timeout", type=_seconds, default=None, metavar="SECONDS",
                   help="with --wait: fail when the stack is not running/healthy after SECONDS")
    p.add_argument("-w", "--watch", action="store_true",
                   help="watch the develop.watch paths and sync, restart or rebuild services "
                        "as files change (see `composer watch`)")
    add_attach_args(p)
    p.set_defaults(func=up)

    d = sub.add_parser("down", help="stop and remove containers and networks")
    d.add_argument("-v", "--volumes", action="store_true", help="also remove named volumes")
    d.add_argument("--remove-orphans", action="store_true")
    d.add_argument("-t", "--timeout", type=float, default=None)
    d.add_argument("--rmi", choices=("local", "all"), default=None,
                   help="also remove images: local (those without an image: of their own, "
                        "made by build) or all (every service's)")
    d.set_defaults(func=down)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be a non-negative number of seconds")
    return value


def _scale(items: list[str]) -> dict[str, int]:
    out = {}
    for item in items:
        name, sep, num = item.partition("=")
        if not sep or not name or not num.isdigit():
            raise ComposerError(f"invalid --scale option {item!r}: use SERVICE=NUMBER")
        out[name] = int(num)
    return out


def check_up_flags(args: argparse.Namespace) -> None:
    """The combinations docker compose refuses (its validateFlags), with its reasons; --wait
    implies -d, --exit-code-from implies --abort-on-container-exit."""
    if args.exit_code_from and not args.abort_on_container_failure:
        args.abort_on_container_exit = True
    if args.abort_on_container_exit and args.abort_on_container_failure:
        raise ComposerError("--abort-on-container-failure can't be combined with --abort-on-container-exit")
    if args.wait:
        if args.abort_on_container_exit:
            raise ComposerError("--wait can't be combined with --abort-on-container-exit")
        args.detach = True
    if args.watch and args.detach:
        raise ComposerError(f"{'--wait' if args.wait else '--detach'} can't be combined with --watch")
    if args.watch and args.no_build:
        raise ComposerError("--no-build and --watch are incompatible")
    if args.detach and (args.abort_on_container_exit or args.abort_on_container_failure):
        raise ComposerError("--detach can't be combined with --abort-on-container-exit or "
                            "--abort-on-container-failure")
    if args.wait_timeout is not None and not args.wait:
        raise ComposerError("--wait-timeout needs --wait")
    if args.build and args.no_build:
        raise ComposerError("--build and --no-build can't be combined (pick one)")
    check_recreate_flags(args)


def check_recreate_flags(args: argparse.Namespace) -> None:
    for flag, other in (("renew_anon_volumes", "--renew-anon-volumes"),
                        ("force_recreate", "--force-recreate"),
                        ("always_recreate_deps", "--always-recreate-deps")):
        if getattr(args, flag, False) and args.no_recreate:
            raise ComposerError(f"{other} and --no-recreate can't be combined (pick one)")


def up(args: argparse.Namespace) -> int:
    check_up_flags(args)
    remove_orphans, ignore_orphans = orphan_options(args)
    opts = UpOptions(
        services=args.services, force_recreate=args.force_recreate, no_recreate=args.no_recreate,
        remove_orphans=remove_orphans, ignore_orphans=ignore_orphans, scale=_scale(args.scale), build=args.build,
        no_build=args.no_build, no_start=args.no_start, wait=args.wait, timeout=args.timeout,
        no_deps=args.no_deps, always_recreate_deps=args.always_recreate_deps,
        renew_anon_volumes=args.renew_anon_volumes, pull=args.pull, quiet_pull=args.quiet_pull,
        wait_timeout=args.wait_timeout,
    )
    from composer.cli.output import SETTINGS

    # a dry run converges (pretending) and ends there: there are no logs to follow (as Compose)
    with_logs = attached(args) and not SETTINGS.dry_run

    async def go(project: Project) -> int:
        if args.exit_code_from:
            project.check_services([args.exit_code_from])
        rules = None
        if args.watch:
            from composer.cli.watch_cmd import err
            from composer.watch.session import rules_of

            rules = rules_of(project, args.services, err)  # before anything starts
        if not with_logs:
            async with project_lock(project):
                await project.up(opts)
            if SETTINGS.dry_run and attached(args):
                print("end of 'composer up' output, interactive run is not supported in "
                      "dry-run mode")
            return 0
        printer = LogPrinter(colour=colours(sys.stdout) and not args.no_color,
                             prefix=not args.no_log_prefix, timestamps=args.timestamps)
        session = AttachedUp(
            project, attach_targets(project, args), printer, services=args.services,
            timeout=args.timeout, abort_on_exit=args.abort_on_container_exit,
            abort_on_failure=getattr(args, "abort_on_container_failure", False),
            exit_code_from=args.exit_code_from, watching=rules is not None)
        project.before_start = session.attach  # attached before each start
        project.hook_output = hook_printer(printer, project.name)  # as Compose: `app-1 -> | `
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
        project.progress = end_live(project.progress)  # where the logs begin
        if rules is None:
            return await session.run()
        return await attach_watching(project, session, rules)

    code = run(with_project(args, go, lock=False, live=True))
    if args.detach:  # (also --wait) the loop has ended: nothing left to tear down
        nothing_left_to_tear_down()
    return code


async def attach_watching(project: Project, session: AttachedUp, rules: list[Any]) -> int:
    """`up --watch`: the attached logs, and the watch session beside them (its lines marked
    `⦿`, as Compose marks them); Ctrl-C ends both. The logs keep following what the watch
    changes through the attached session itself: a rebuild's new container is attached
    before it starts (Project.before_start), a sync+restart's restart stays on the same
    follow-mode stream. Each batch takes the project lock, as `composer watch` does."""
    from composer.cli.watch_cmd import err
    from composer.watch.session import WatchSession

    def log(line: str) -> None:
        print(f"⦿ {line}", flush=True)

    watch = asyncio.ensure_future(
        WatchSession(project, rules, log, err, lock=lambda: project_lock(project)).run())
    try:
        return await session.run()
    finally:
        await cancel_and_wait(watch)


def hook_printer(printer: LogPrinter, project: str) -> HookOutput:
    """Lines a hook printed, through the attached session's printer as `docker compose up`
    shows them: `app-1 -> | ...` (a pre_start hook's: `app pre_start[0] -> | ...`)."""
    def output(source: str, line: str) -> None:
        key = "hook:" + source
        printer.register(key, short_name(source, project))
        printer.output(key, "stdout", line.encode() + b"\n")
    return output

def down(args: argparse.Namespace) -> int:
    async def go(project: Project) -> int:
        await project.down(remove_orphans=orphan_options(args)[0], volumes=args.volumes,
                           timeout=args.timeout, rmi=args.rmi)
        return 0

    code = run(with_project(args, go))
    nothing_left_to_tear_down()  # its loop has ended: connections closed, executor joined
    return code
