"""`composer up` and `composer down`."""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import Any

from composer import labels as L
from composer.cli.common import add_services_arg, run, with_project
from composer.errors import ComposerError
from composer.operations import PULL_POLICIES, Project, UpOptions
from runtime.errors import NotFound

COLOURS = ("36", "33", "32", "35", "34", "96", "93", "92", "95", "94")


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
    p.set_defaults(func=up)

    d = sub.add_parser("down", help="stop and remove containers and networks")
    d.add_argument("-v", "--volumes", action="store_true", help="also remove named volumes")
    d.add_argument("--remove-orphans", action="store_true")
    d.add_argument("-t", "--timeout", type=float, default=None)
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
    for flag, other in (("renew_anon_volumes", "--renew-anon-volumes"),
                        ("force_recreate", "--force-recreate"),
                        ("always_recreate_deps", "--always-recreate-deps")):
        if getattr(args, flag) and args.no_recreate:
            raise ComposerError(f"{other} and --no-recreate can't be combined (pick one)")


def up(args: argparse.Namespace) -> int:
    check_up_flags(args)
    opts = UpOptions(
        services=args.services, force_recreate=args.force_recreate, no_recreate=args.no_recreate,
        remove_orphans=args.remove_orphans, scale=_scale(args.scale), build=args.build,
        no_build=args.no_build, no_start=args.no_start, wait=args.wait, timeout=args.timeout,
        no_deps=args.no_deps, always_recreate_deps=args.always_recreate_deps,
        renew_anon_volumes=args.renew_anon_volumes, pull=args.pull, quiet_pull=args.quiet_pull,
        wait_timeout=args.wait_timeout,
    )

    async def go(project: Project) -> int:
        if args.exit_code_from:
            project.check_services([args.exit_code_from])
        if not args.detach:
            project.hook_output = hook_line  # as Compose: hooks' output in the attached up
        rules = None
        if args.watch:
            from composer.cli.watch_cmd import err
            from composer.watch.session import rules_of

            rules = rules_of(project, args.services, err)  # before anything starts
        await project.up(opts)
        if args.detach or opts.no_start:
            return 0
        close = getattr(project.progress, "close", None)
        if close is not None:
            close()  # the live display ends where the logs begin
        if rules is None:
            return await attach(project, args)
        return await attach_watching(project, args, rules)

    return run(with_project(args, go))


async def attach_watching(project: Project, args: argparse.Namespace, rules: list[Any]) -> int:
    """`up --watch`: the attached logs, and the watch session beside them (its lines marked
    `⦿`, as Compose marks them); Ctrl-C ends both. This process holds the project lock."""
    from composer.cli.watch_cmd import err
    from composer.watch.session import WatchSession

    def log(line: str) -> None:
        print(f"⦿ {line}", flush=True)

    session = asyncio.ensure_future(WatchSession(project, rules, log, err).run())
    try:
        return await attach(project, args, watching=True)
    finally:
        session.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await session


def hook_line(source: str, line: str) -> None:
    """A line a hook printed, as the attached `docker compose up` shows it: `web-1 -> | ...`."""
    sys.stdout.write(f"{source} | {line}\n")
    sys.stdout.flush()


async def attach(project: Project, args: argparse.Namespace, *, watching: bool = False) -> int:
    """Interleaved, prefixed logs until every container stopped; Ctrl-C stops in order.
    `watching` (up --watch): until Ctrl-C, also following the containers that start later
    (recreated by a rebuild, restarted by a sync+restart), as Compose's monitor does."""
    services = set(args.services) if args.services else set()
    selected = project.graph.select(services) if services else set()
    containers = [c for c in await project.containers(all=False)
                  if not services or c.labels.get(L.SERVICE) in selected]
    tty = sys.stdout.isatty()
    width = max((len(c.name) for c in containers), default=0)
    exit_codes: dict[str, int] = {}
    first_exit: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    printed: dict[str, int] = {}  # container id -> log entries shown (a restart resumes there)

    async def follow(i: int, c) -> None:  # type: ignore[no-untyped-def]
        prefix = f"{c.name:<{width}} | "
        if tty:
            prefix = f"\033[{COLOURS[i % len(COLOURS)]}m{prefix}\033[0m"
        skip = printed.get(c.id, 0)
        async for line in project.engine.logs(c.id, follow=True):
            if skip:
                skip -= 1
                continue
            printed[c.id] = printed.get(c.id, 0) + 1
            sys.stdout.write(prefix + line.data if line.data.endswith("\n") else prefix + line.data + "\n")
            sys.stdout.flush()
        try:
            code = await project.engine.wait_container(c.id)
        except NotFound:  # replaced (a rebuild under --watch)
            return
        exit_codes[c.labels.get(L.SERVICE, c.name)] = code
        print(f"{c.name} exited with code {code}", flush=True)
        failure_only = getattr(args, "abort_on_container_failure", False)
        if not first_exit.done() and (code != 0 or not failure_only):
            first_exit.set_result(c.labels.get(L.SERVICE, ""))

    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGINT, stop_requested.set)
        loop.add_signal_handler(signal.SIGTERM, stop_requested.set)
    follows = {c.id: asyncio.create_task(follow(i, c)) for i, c in enumerate(containers)}
    all_done = asyncio.gather(*follows.values(), return_exceptions=True)
    waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(stop_requested.wait())]
    if watching:
        waiters.append(asyncio.ensure_future(
            _follow_started(project, services and selected, follows, follow)))
    else:
        waiters.append(all_done)
    aborting = args.abort_on_container_exit or getattr(args, "abort_on_container_failure", False)
    if aborting:
        waiters.append(first_exit)
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    if aborting and first_exit.done() and not stop_requested.is_set():
        print("Aborting on container exit...", file=sys.stderr, flush=True)
        await project.stop(args.services or (), timeout=args.timeout)
    elif stop_requested.is_set():
        print("Gracefully stopping... (press Ctrl+C again to force)", file=sys.stderr, flush=True)
        loop.remove_signal_handler(signal.SIGINT)
        await project.stop(args.services or (), timeout=args.timeout)
    with contextlib.suppress(BaseException):
        await asyncio.wait_for(asyncio.gather(*follows.values(), return_exceptions=True), 30)
    for w in waiters:
        if isinstance(w, asyncio.Future) and not w.done():
            w.cancel()
    if args.exit_code_from:
        return exit_codes.get(args.exit_code_from, 0)
    if aborting and first_exit.done():
        return exit_codes.get(first_exit.result(), 0)
    return 130 if stop_requested.is_set() else 0


async def _follow_started(project: Project, services: set[str], follows: dict[str, Any],
                          follow: Any) -> None:
    """Follow each container of the project that starts from now on (a new one from its
    first line, a restarted one where its logs stopped)."""
    async for ev in project.engine.events():
        a = ev.attributes
        if (ev.type != "container" or ev.action != "start" or a.get(L.PROJECT) != project.name
                or a.get(L.ONEOFF) == "True" or L.HOOK in a
                or (services and a.get(L.SERVICE) not in services)):
            continue
        old = follows.get(ev.id)
        if old is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(old), 5)  # the stop's end of its logs
        try:
            c = await project.engine.inspect_container(ev.id)
        except NotFound:
            continue
        follows[ev.id] = asyncio.create_task(follow(len(follows), c))


def down(args: argparse.Namespace) -> int:
    async def go(project: Project) -> int:
        await project.down(remove_orphans=args.remove_orphans, volumes=args.volumes,
                           timeout=args.timeout)
        return 0

    return run(with_project(args, go))
