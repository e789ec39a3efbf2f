"""`composer logs -f`: one log stream per container, and the containers that start later."""
from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from typing import Any

from composer import labels as L
from composer.cli.logprint import LogPrinter, short_name
from composer.errors import DaemonLost
from composer.operations import Project
from runtime.api import ContainerInfo
from runtime.calls import DaemonUnavailable
from runtime.errors import Conflict, NotFound
from runtime.tasks import cancel_and_wait


class Logs:
    """One log stream per container; with `follow`, containers of the services that start
    later (a new or recreated container, or one started again after it stopped) are
    followed from their start, as `docker compose logs -f` does. A restart of a followed
    container does not end its stream (the engine follows it through)."""

    def __init__(self, project: Project, printer: LogPrinter, services: list[str],
                 tail: int | None, since: float | None, until: float | None,
                 follow: bool) -> None:
        self.project = project
        self.printer = printer
        self.services = services
        self.tail, self.since, self.until, self.follow_ = tail, since, until, follow
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.seen: dict[str, float] = {}  # container -> time of the last entry shown
        self.idle = asyncio.Event()
        self.idle.set()
        self.lost = False  # composerd went away: the session ends with an error

    def follow(self, c: ContainerInfo, resume: bool = False) -> None:
        """Stream `c`'s log; `resume`: it started again, show what came after the last
        entry shown (all of it for a container not seen before)."""
        self.printer.register(c.id, short_name(c.name, self.project.name))
        self.idle.clear()
        self.tasks[c.id] = asyncio.ensure_future(self._one(c, resume))

    async def _one(self, c: ContainerInfo, resume: bool) -> None:
        tail = None if resume else self.tail
        since = self.since
        if not resume:  # what is older than now was shown or left out by --tail/--since
            self.seen[c.id] = time.time()
        elif c.id in self.seen:
            since = max(since or 0.0, self.seen[c.id] + 1e-9)
        again = False
        try:
            async for line in self.project.engine.logs(c.id, follow=self.follow_, tail=tail,
                                                       since=since, until=self.until):
                self.printer.output(c.id, line.stream,
                                    line.data.encode("utf-8", "surrogateescape"), line.time)
                self.seen[c.id] = max(self.seen.get(c.id, 0.0), line.time)
            if self.follow_:  # it stopped -- or was started again as the stream ended
                info = await self.project.engine.inspect_container(c.id)
                again = info.state in ("running", "restarting", "paused") and (
                    self.until is None or time.time() <= self.until)
        except Conflict as e:  # logging driver none: nothing to read (docker compose warns)
            print(f"WARN[0000] can't retrieve logs for {c.name!r}: {e}", file=sys.stderr)
        except NotFound:
            pass  # removed meanwhile
        except DaemonUnavailable:
            self.lost = True  # every stream broke with it: end now, not stream by stream
            self.idle.set()
        finally:
            self.printer.end(c.id)
            self.tasks.pop(c.id, None)
            if again:
                self.follow(c, resume=True)
            elif not self.tasks:
                self.idle.set()

    async def done(self) -> None:
        """Back when every followed container stopped for good; ComposerError when the
        connection to composerd broke (one line, not a traceback per container)."""
        await self.idle.wait()
        if self.lost:
            for task in list(self.tasks.values()):
                await cancel_and_wait(task)
            raise DaemonLost("the containers keep running; `composer logs -f` follows them again")

    async def watch(self, events: Any) -> None:
        async for ev in events:
            if ev.type != "container" or ev.action != "start" or ev.id in self.tasks:
                continue
            attrs = ev.attributes
            if attrs.get(L.PROJECT) != self.project.name or attrs.get(L.ONEOFF) == "True":
                continue
            if self.services and attrs.get(L.SERVICE) not in self.services:
                continue
            with contextlib.suppress(NotFound):
                self.follow(await self.project.engine.inspect_container(ev.id), resume=True)
