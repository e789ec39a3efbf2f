"""The log session of an attached `composer up`, as `docker compose up` runs it.

Attached before started: `Project.before_start` calls `attach()` for each container `up` is
about to start (or leaves running), which opens the engine's follow-mode attach
(runtime.follow). A one-shot that exits in a millisecond still shows every line and its
"exited with code N"; a dependency's lines show while `up` waits for it to be healthy; a
container `up` reuses shows only what it writes from now on; a restart (policy or
`composer restart`) goes on in the same stream, "exited with code 1 (restarting)".

Which services: the ones named (all when none), without `attach: false`; with
--attach-dependencies also what they depend on; --attach SVC names them instead;
--no-attach SVC leaves some out (docker compose's rules, and its error texts).

The session ends when every attached container has stopped for good (or was removed, e.g.
by `composer down` from another terminal: the project lock only covers the convergence).
Containers of the attached services that another command creates meanwhile (`up -d` after
an edit, `--scale`) are followed from their creation (`_follow_new`, on composerd's events).
First Ctrl-C (or SIGTERM): "Gracefully stopping... (press Ctrl+C again to force)" and a
stop with the grace period; the second: SIGKILL to every running container of the
services, wait until they are gone, exit 130. --abort-on-container-exit / -failure and
--exit-code-from stop everything at the first (failed) exit and return its code. A stream
that breaks while its container runs (composerd stopped or restarted) ends the session with
one line and exit 1; the containers run on.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Collection

from composer import labels as L
from composer.cli.logprint import LogPrinter, short_name
from composer.cli.progress import end_live
from composer.errors import ComposerError, DaemonLost
from composer.operations import Project
from runtime.api import ContainerInfo
from runtime.attach import EXIT, STREAMS, AttachStream, parse_exit
from runtime.errors import NotFound
from runtime.tasks import cancel_and_wait, settle

KILL_WAIT = 30.0  # seconds to wait for killed containers to be gone


def add_attach_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--attach", action="append", default=[], metavar="SERVICE",
                   help="restrict attaching to these services")
    p.add_argument("--no-attach", action="append", default=[], metavar="SERVICE",
                   help="do not attach (stream output) to these services")
    p.add_argument("--attach-dependencies", action="store_true",
                   help="also attach to the services the named ones depend on")
    p.add_argument("--no-log-prefix", action="store_true", help="no `name | ` before lines")
    p.add_argument("--timestamps", action="store_true", help="show when each line came")
    p.add_argument("--no-color", action="store_true", help="monochrome output")


def attached(args: argparse.Namespace) -> bool:
    """An attached `up`: neither -d, nor --wait (which implies it), nor --no-start."""
    detached = bool(args.detach or getattr(args, "wait", False) or args.no_start)
    cascade = args.abort_on_container_exit or bool(args.exit_code_from) or getattr(
        args, "abort_on_container_failure", False)
    if args.attach and args.attach_dependencies:
        raise ComposerError("cannot combine --attach and --attach-dependencies")
    if detached and (args.attach or args.attach_dependencies or cascade):
        flag = "--wait" if getattr(args, "wait", False) else "--detach"  # (--wait sets detach)
        raise ComposerError(
            f"{flag} cannot be combined with --abort-on-container-exit, "
            "--abort-on-container-failure, --attach or --attach-dependencies")
    return not detached


def attach_targets(project: Project, args: argparse.Namespace) -> set[str]:
    """docker compose's choice of the services to attach to."""
    selected = project.graph.select(args.services) if args.services else set(
        project.stack.services)
    if args.attach:
        unexpected = sorted(set(args.attach) - selected)
        if unexpected:
            raise ComposerError(
                f"cannot attach to services not included in up: {', '.join(unexpected)}")
        targets = set(args.attach)
    else:
        base = selected if args.attach_dependencies or not args.services else set(args.services)
        targets = {s for s in base if project.stack.services[s].attach}
    return targets - set(args.no_attach)


class AttachedUp:
    def __init__(self, project: Project, targets: Collection[str], printer: LogPrinter, *,
                 services: Collection[str], timeout: float | None,
                 abort_on_exit: bool = False, abort_on_failure: bool = False,
                 exit_code_from: str | None = None, watching: bool = False) -> None:
        self.project = project
        self.targets = set(targets)
        self.printer = printer
        self.services = list(services)  # what Ctrl-C stops (all when empty)
        self.timeout = timeout
        # --exit-code-from implies --abort-on-container-exit, unless -failure narrows it
        self.abort_on_exit = abort_on_exit or (bool(exit_code_from) and not abort_on_failure)
        self.abort_on_failure = abort_on_failure
        self.exit_code_from = exit_code_from
        # up --watch: the session lasts until Ctrl-C (or an abort), not until every container
        # stopped: a rebuild replaces containers, which are attached as they start
        self.watching = watching
        self.streams: dict[str, AttachStream] = {}
        self.live: dict[str, bool] = {}  # container -> may still write (not ended for good)
        self.pumps: list[asyncio.Task[None]] = []
        self.changed = asyncio.Event()
        self.announced = False
        self.exit_code: int | None = None  # what `up` returns after an abort/--exit-code-from
        self.aborted = False
        self.interrupted = 0  # Ctrl-C count
        self.stopper: asyncio.Task[None] | None = None
        self.killer: asyncio.Task[None] | None = None
        self.converging: asyncio.Task[object] | None = None
        self.lost = False  # a stream broke while its container ran: composerd went away
        self.attaching: dict[str, asyncio.Future[None]] = {}  # container -> attach under way
        self.follower: asyncio.Task[None] | None = None  # containers others create
        self.closing = False

    # -- attaching: Project.before_start
    async def attach(self, info: ContainerInfo, replay: bool = False) -> None:
        """Follow `info`'s output from now on: before its start when `up` starts it; with
        `replay`, a container another command started a moment ago shows its run's output
        from the start (the monitor replays it, then goes on live: no gap, no repeat)."""
        service = info.labels.get(L.SERVICE, "")
        if service not in self.targets or info.id in self.streams or self.interrupted:
            return
        pending = self.attaching.get(info.id)
        if pending is not None:  # (the other caller's attach: back once it is in place)
            await asyncio.shield(pending)
            return
        done = self.attaching[info.id] = asyncio.get_running_loop().create_future()
        try:
            if not self.announced:
                self.announced = True
                self._announce()
            stream = await self.project.engine.attach_container(info.id, follow=True,
                                                                logs=replay)
            self.streams[info.id] = stream
            self.live[info.id] = True
            self.printer.register(info.id, short_name(info.name, self.project.name))
            self.pumps.append(asyncio.ensure_future(self._pump(info, stream)))
        finally:
            del self.attaching[info.id]
            done.set_result(None)

    async def _follow_new(self) -> None:
        """Containers of the attached services that another command creates while the logs
        show (`up -d` after an edit recreates one, `up -d --scale`): attached at their
        create, so before they start, as docker compose's up follows the containers that
        start after it attached."""
        engine = self.project.engine
        events = engine.events()
        try:
            async for ev in events:
                attrs = ev.attributes
                if (ev.type != "container" or ev.action not in ("create", "start")
                        or attrs.get(L.PROJECT) != self.project.name
                        or attrs.get(L.ONEOFF) == "True"
                        or attrs.get(L.SERVICE) not in self.targets or ev.id in self.streams):
                    continue
                with contextlib.suppress(NotFound):
                    await self.attach(await engine.inspect_container(ev.id), replay=True)
        except (ConnectionError, OSError):
            pass  # composerd went away: the streams' ends tell (`_pump`)
        finally:
            aclose = getattr(events, "aclose", None)  # (runtime.client's Stream)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

    def _announce(self) -> None:
        """docker compose's `Attaching to web-1, db-1` (the names `up` will give them); the
        live progress display ends here, where the output begins (lines from now on)."""
        self.project.progress = end_live(self.project.progress)
        names = []
        for name in sorted(self.targets):
            svc = self.project.stack.services[name]
            if svc.container_name:
                names.append(svc.container_name)
            else:
                names += [f"{name}-{n}" for n in range(1, max(1, svc.replicas) + 1)]
        sys.stdout.write(f"Attaching to {', '.join(names)}\n")
        sys.stdout.flush()

    async def _pump(self, info: ContainerInfo, stream: AttachStream) -> None:
        try:
            await self._relay(info, stream)
            if self.live.get(info.id) and not self.closing and await self._lost(info.id):
                self.lost = True
        finally:
            self.printer.end(info.id)
            self.live[info.id] = False
            self.changed.set()

    async def _lost(self, cid: str) -> bool:
        """A stream ended before its container stopped for good: composerd went away (or
        dropped us) if it no longer answers or the container still runs; a container
        removed meanwhile has simply ended."""
        try:
            info = await self.project.engine.inspect_container(cid)
        except NotFound:
            return False
        except (ConnectionError, OSError):  # (DaemonUnavailable is a ConnectionError)
            return True
        return info.state in ("running", "restarting", "paused")

    async def _relay(self, info: ContainerInfo, stream: AttachStream) -> None:
        service = info.labels.get(L.SERVICE, "")
        try:
            while (got := await stream.recv_frame()) is not None:
                kind, data = got
                if kind in STREAMS:
                    self.live[info.id] = True
                    self.printer.output(info.id, STREAMS[kind], data)
                elif kind == EXIT:
                    code, restarting, cancelled = parse_exit(data)
                    self.live[info.id] = restarting
                    if not cancelled:  # (cancelled: its "(restarting)" was called off)
                        self.printer.status(info.id, f"exited with code {code}"
                                            + (" (restarting)" if restarting else ""))
                        self._exited(service, code)
                    self.changed.set()
        except (ConnectionError, OSError):
            pass  # the daemon went away: nothing more will come (`_pump` tells)

    def _exited(self, service: str, code: int) -> None:
        if self.exit_code_from and service == self.exit_code_from and self.exit_code is None:
            self.exit_code = code
        if self.aborted or self.interrupted:
            return
        if self.abort_on_exit or (self.abort_on_failure and code != 0):
            self.aborted = True
            if self.exit_code is None and not self.exit_code_from:
                self.exit_code = code
            print("Aborting on container exit...", file=sys.stderr, flush=True)
            self.stopper = asyncio.ensure_future(self._stop())

    # -- the session
    def done(self) -> bool:
        if self.watching and not (self.interrupted or self.aborted):
            return False
        return not any(self.live.values())

    async def run(self) -> int:
        """After the convergence: until every attached container stopped for good."""
        self.follower = asyncio.ensure_future(self._follow_new())
        while not self.done():
            self.changed.clear()
            await self.changed.wait()
        for task in (self.stopper, self.killer):
            if task is not None:
                with contextlib.suppress(Exception):
                    await task
        await self.close()
        if self.interrupted:
            return 130
        if self.lost and not self.aborted:
            raise DaemonLost("the containers keep running; `composer logs -f` follows them, "
                             "`composer stop` stops them")
        if self.exit_code is not None:
            return self.exit_code
        return 0

    async def close(self) -> None:
        self.closing = True
        if self.follower is not None:
            await cancel_and_wait(self.follower)
        for stream in self.streams.values():
            with contextlib.suppress(Exception):
                await stream.close()
        for task in self.pumps:
            await cancel_and_wait(task)
        self.printer.flush()

    # -- Ctrl-C
    def install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._interrupt)

    def _interrupt(self) -> None:
        self.interrupted += 1
        if self.interrupted == 1:
            print("Gracefully stopping... (press Ctrl+C again to force)", file=sys.stderr,
                  flush=True)
            if self.converging is not None and not self.converging.done():
                self.converging.cancel()  # the daemon finishes each call it began
            if self.stopper is None:
                self.stopper = asyncio.ensure_future(self._stop())
        elif self.killer is None:
            self.killer = asyncio.ensure_future(self._kill())
        self.changed.set()

    async def _stop(self) -> None:
        if self.converging is not None and not self.converging.done():
            await settle(self.converging)  # (a second Ctrl-C cancels this wait too)
        await self.project.stop(self.services, timeout=self.timeout)

    async def _kill(self) -> None:
        """SIGKILL to every running container of the services; back when they are gone."""
        engine = self.project.engine
        loop = asyncio.get_running_loop()
        deadline = loop.time() + KILL_WAIT
        while loop.time() < deadline:
            running = await self.project.containers(self.services, all=False)
            if not running:
                break
            for c in running:
                with contextlib.suppress(Exception):
                    await engine.kill_container(c.id, "SIGKILL")
            await asyncio.sleep(0.1)
        if self.stopper is not None and not self.stopper.done():
            self.stopper.cancel()
        self.changed.set()
