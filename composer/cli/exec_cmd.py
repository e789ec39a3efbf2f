"""`composer exec` (a command in a running service container) and `composer run` (one-off)."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from composer import labels as L
from composer.cli.quick import ReadProject, read_project
from composer.cli.runargs import add_run_flags
from composer.errors import STATUS_UNKNOWN, ComposerError, DaemonLost

if TYPE_CHECKING:
    import asyncio

    from composer.operations import Project
    from runtime.api import ContainerInfo

# `exec` without a terminal takes the quick path (composer.cli.quick: no asyncio, aiohttp or
# stack loader; its websocket is runtime.wsclient); `run` and a terminal's exec import what
# they need when they run.


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("exec", help="run a command in a running service container")
    p.add_argument("-d", "--detach", action="store_true", help="run it in the background")
    p.add_argument("-i", "--interactive", action="store_true", default=True,
                   help="keep stdin open (the default)")
    p.add_argument("-t", "--tty", action="store_true", help="a pseudo-terminal (default when "
                                                            "stdin is one)")
    p.add_argument("-T", "--no-TTY", "--no-tty", dest="no_tty", action="store_true",
                   help="no pseudo-terminal, even when stdin is one")
    p.add_argument("-u", "--user", help="run as this user (name, uid or uid:gid)")
    p.add_argument("-w", "--workdir", help="the working directory in the container")
    p.add_argument("-e", "--env", action="append", default=[], metavar="KEY[=VALUE]",
                   help="set a variable (KEY alone: from this environment); repeatable")
    p.add_argument("--index", type=_index, default=1, metavar="N",
                   help="which replica of the service (1, 2, ...; default 1)")
    p.add_argument("--privileged", action="store_true",
                   help="give the command every capability (the container's own stay)")
    p.add_argument("service", help="the service to run it in")
    p.add_argument("command", nargs=argparse.REMAINDER, help="the command and its arguments")
    p.set_defaults(func=exec_cmd)

    r = sub.add_parser("run", help="run a one-off command in a new service container")
    r.add_argument("-d", "--detach", action="store_true",
                   help="run it in the background and print its name")
    r.add_argument("--rm", action="store_true", help="remove the container when it exits")
    r.add_argument("--no-deps", action="store_true", help="don't start the services it "
                                                          "depends on")
    r.add_argument("--name", help="the container's name (default PROJECT-SERVICE-run-ID)")
    r.add_argument("-u", "--user", help="run as this user (name, uid or uid:gid)")
    r.add_argument("-w", "--workdir", help="the working directory in the container")
    r.add_argument("-e", "--env", action="append", default=[], metavar="KEY[=VALUE]",
                   help="set a variable (KEY alone: from this environment); repeatable")
    r.add_argument("--entrypoint", help="override the image's entrypoint")
    r.add_argument("-T", "--no-TTY", "--no-tty", dest="no_tty", action="store_true",
                   help="no pseudo-terminal, even when stdin is one")
    r.add_argument("-i", "--interactive", action="store_true",
                   help="keep stdin open (the default)")
    r.add_argument("-t", "--tty", action="store_true", help="a pseudo-terminal (default when "
                                                            "stdin is one)")
    add_run_flags(r)
    r.add_argument("service", help="the service to run")
    r.add_argument("command", nargs=argparse.REMAINDER, help="the command and its arguments")
    r.set_defaults(func=run_cmd)


def _index(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"invalid index {text!r}: replicas count from 1")
    return n


def _stdin_is_a_tty() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()  # None: started with fd 0 closed


def _env(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not sep:
            import os
            v = os.environ.get(k, "")
        out[k] = v
    return out


async def _drain_failed_start(stream: Any) -> bool:
    """Show what a container that could not start said (`exec: "x": executable file not
    found`); True if it said anything."""
    import asyncio

    from composer.cli.stdio import write_output

    said = False
    try:
        while (item := await asyncio.wait_for(stream.read(), 5)) is not None:
            write_output(*item)
            said = True
    except TimeoutError:
        pass
    return said


def _wants_tty(args: argparse.Namespace) -> bool:
    """A pty as `docker compose exec`: unless -T, when both our stdin and stdout are a
    terminal (`exec app ls > out.txt` gets none), or when -t asks for one."""
    if args.no_tty or args.detach:
        return False
    return bool(args.tty) or (_stdin_is_a_tty() and sys.stdout.isatty())


def exec_cmd(args: argparse.Namespace) -> int:
    if not args.command:
        raise ComposerError("exec: give a command to run, e.g. `composer exec web sh`")

    tty = _wants_tty(args)

    async def go(project: ReadProject) -> int:
        cs = [c for c in await project.containers([args.service], all=False)
              if c.labels.get(L.CONTAINER_NUMBER) == str(args.index)]
        if not cs:
            raise ComposerError(f"service {args.service!r} is not running (container #{args.index})")
        if tty:
            from runtime.interactive import exec_interactive

            target = await project.engine.exec_prepare(
                cs[0].id, list(args.command), user=args.user, env=_env(args.env),
                workdir=args.workdir, tty=True, privileged=args.privileged)
            return await exec_interactive(target)
        from composer.cli.blockingio import blocking_session, stdin_fd
        from runtime.quickattach import QuickAttach

        in_fd = stdin_fd() if args.interactive else -1
        stream = await project.engine.exec_attach(
            cs[0].id, list(args.command), user=args.user, env=_env(args.env),
            workdir=args.workdir, stdin=in_fd >= 0, detach=args.detach,
            privileged=args.privileged)
        if isinstance(stream, QuickAttach):  # the quick path: threads, no event loop
            code = blocking_session(stream, in_fd if not args.detach else -1)
        else:
            from composer.cli.stdio import session

            code = await session(stream, in_fd if not args.detach else -1)
        if stream.exit_code is None and code != 141:  # the stream broke before the EXIT
            raise DaemonLost(STATUS_UNKNOWN, exit_code=255)
        return code

    if tty:  # a terminal's exec: the monitor's pty (runtime.interactive), over asyncio
        from composer.cli.common import run, with_project

        return run(with_project(args, go, lock=False))
    return read_project(args, go, read_only=False)


def run_wants_tty(args: argparse.Namespace) -> bool:
    """`run`'s pseudo-terminal, as docker compose run: when ours is one (-T turns it off)."""
    return not args.no_tty and (args.tty or (_stdin_is_a_tty() and sys.stdout.isatty()))


def one_off_changes(args: argparse.Namespace, project: str, env: Mapping[str, str],
                    tty: bool) -> dict[str, object]:
    """What `run`'s flags change in the service's container (`env`: the spec's), for
    dataclasses.replace: the slow path's and composer.cli.quickrun's alike."""
    import os

    name = args.name or f"{project}-{args.service}-run-{os.urandom(6).hex()}"  # token_hex's
    changes: dict[str, object] = {"name": name, "restart": "no"}
    if args.command:
        changes["command"] = tuple(args.command)
    if args.entrypoint is not None:
        import shlex
        changes["entrypoint"] = tuple(shlex.split(args.entrypoint))
    if args.user:
        changes["user"] = args.user
    if args.workdir:
        changes["working_dir"] = args.workdir
    if args.env:
        changes["env"] = {**env, **_env(args.env)}
    # As docker compose run: stdin kept open (-i is the default) and a pseudo-terminal
    # when ours is one (-T turns it off); -d keeps the service's own settings.
    if not args.detach:
        changes["stdin_open"] = True
        changes["tty"] = tty
    return changes


def run_cmd(args: argparse.Namespace) -> int:
    from composer.cli.quickrun import quick_run

    code = quick_run(args)  # None: a case only the full path serves
    if code is not None:
        return code
    from dataclasses import replace

    from composer.cli.common import run, with_project
    from composer.cli.runflags import apply_run_flags
    from composer.convert import container_spec
    from composer.operations import UpOptions

    async def go(project: Project) -> int:
        if args.service not in project.stack.services:
            raise ComposerError(f"no such service: {args.service}")
        # a bad flag fails before anything is changed
        apply_run_flags(project.stack, container_spec(project.stack, args.service, 1, labels={}),
                        args)
        deps = project.graph.select([args.service]) - {args.service}
        if deps and not args.no_deps:
            await project.up(UpOptions(services=sorted(deps)))
        await project.ensure_images([args.service], build=args.build, pull=args.pull)
        await project.ensure_networks([args.service])
        await project.ensure_volumes()
        labels = project.container_labels(args.service, 1, oneoff=True)  # with the image id
        spec = container_spec(project.stack, args.service, 1, labels=labels)
        spec = apply_run_flags(project.stack, spec, args)
        changes = one_off_changes(args, project.name, spec.env, run_wants_tty(args))
        spec = replace(spec, **changes)  # type: ignore[arg-type]
        info = await project.engine.create_container(spec)
        hooks: asyncio.Future[None] | None = None
        if args.detach:
            info = await project.engine.start_container(info.id)
            hooks = _post_start(project, args.service, info)
            print(info.name)
            await _hooks_done(hooks, 0)
            return 0
        from composer.cli.attach_cmd import relay
        from composer.cli.stdio import status_after_break
        from runtime.errors import LaunchError

        # attached before it starts (follow mode): not a byte of its output can be missed
        stream = await project.engine.attach_container(info.id, follow=True)
        try:
            try:
                started = await project.engine.start_container(info.id)
            except LaunchError as e:  # its message came through the stream (or did not)
                shown = await _drain_failed_start(stream)
                if not shown:
                    print(f"error: {e.message}", file=sys.stderr)
                code = e.exit_code
            else:
                hooks = _post_start(project, args.service, started)
                await relay(project.engine, info.id, stream, tty=spec.tty, stdin=True,
                            close_stdin=True, detach_keys=b"")
                # None: the stream broke, ask the engine
                code = stream.exit_code if stream.exit_code is not None else \
                    await status_after_break(project.engine, info.id)
        finally:
            await stream.close()
        try:
            await _hooks_done(hooks, code)
        finally:
            if args.rm:
                await project.engine.remove_container(info.id, force=True, volumes=True)
        return code

    return run(with_project(args, go, lock=False))


def _post_start(project: Project, service: str, info: ContainerInfo) -> asyncio.Future[None] | None:
    """As docker compose run: the service's post_start hooks, exec'd beside the attached
    session once the container started."""
    import asyncio

    from composer.hooks import exec_hooks

    hooks = project.stack.services[service].post_start
    if not hooks:
        return None
    return asyncio.ensure_future(exec_hooks(project.engine, info, service, "post_start", hooks))


async def _hooks_done(hooks: asyncio.Future[None] | None, code: int) -> None:
    """A hook's failure is the run's error when the command itself succeeded (as Compose)."""
    if hooks is None:
        return
    try:
        await hooks
    except ComposerError:
        if code == 0:
            raise
