"""What the engine holds in memory for one container, beside its persisted ContainerRecord.

One `Live` per container, made at create (or when the engine adopts the records of a
previous run) and dropped at remove. Every lifecycle method of the engine finds the
container's process, exit future, waiter and followers here and changes them under `lock`,
as runc's `linuxContainer` does with its mutex:

    method              holds the lock                      waits without it
    start               check + launch + record the run     -
    _finish (an exit)   release + record + restart policy   -
    stop                read the run, thaw, signal, SIGKILL  the grace period, the exit
    kill                read the run, signal                 -
    pause / unpause     check + freeze/thaw + record         -
    restart             (stop, then start)                   -
    remove              the removal itself                   the exit of what it killed
    attach (follow)     join the running attach socket       -

stop releases the lock while it waits so that a `kill` (Docker: a kill during a stop's grace
period kills at once) and the exit's own `_finish` are not held up behind it.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from runtime.follow import Follower
from runtime.process.launcher import Launched


@dataclass(eq=False)
class Live:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    launched: Launched | None = None  # the running process (None: not running)
    exited: asyncio.Future[int] | None = None  # this run's exit code, once it ended
    waiter: asyncio.Task[None] | None = None  # waits for that exit, then runs _finish
    followers: list[Follower] = field(default_factory=list)  # attach in follow mode
    restarts: int = 0  # restart_container calls in flight: their stop is not an end
    removed: bool = False  # remove_container took it away: whoever still holds it stops
    # the last run's exit released everything it held on the host (cgroup, network, shm)
    # without an error: a remove need not go through it all again
    released: bool = False

    def new_run(self, launched: Launched) -> asyncio.Future[int]:
        """Record a started (or adopted) run; its exit future is fresh."""
        self.launched = launched
        if self.exited is None or self.exited.done():
            self.exited = asyncio.get_running_loop().create_future()
        return self.exited

    def end_run(self, code: int) -> None:
        """The run ended with `code`: whoever waits for its exit is told."""
        self.launched = None
        self.waiter = None
        if self.exited is not None and not self.exited.done():
            self.exited.set_result(code)
