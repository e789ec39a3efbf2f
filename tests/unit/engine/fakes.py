"""Small fakes of what the Engine drives — launcher, cgroups, network — so its lifecycle
(start, stop, kill, exit, restart, remove, adopt) runs without root, with the races placed
by the test: a launch, a network release and a process's end each wait on the test's word.

A run is a `FakeRun`: its exit is a future the test (or a signal) ends. Signals follow a
pid-namespace init: SIGKILL ends it with 137, another signal ends it (128 + sig, after
`exit_delay`) unless the launcher's `ignore` holds it.
"""
from __future__ import annotations

import asyncio
import itertools
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from runtime.cgroups import CgroupNotFound
from runtime.cgroups.base import CgroupStats
from runtime.errors import NotFound
from runtime.process.config import LaunchConfig
from runtime.process.launcher import ExitStatus, Launched

# far above any pid_max (2^22): /proc/<pid> never exists, so the engine's /proc reads find
# nothing (signal_deliverable then says "send") and no real process is ever signalled
_PIDS = itertools.count(50_000_000, 2)


@dataclass(eq=False)
class FakeRun:
    launched: Launched
    exit: asyncio.Future[ExitStatus]
    signals: list[int] = field(default_factory=list)

    def end(self, code: int) -> None:
        if not self.exit.done():
            self.exit.set_result(ExitStatus(code, None, time.time()))

    @property
    def ended(self) -> bool:
        return self.exit.done()


class FakeLauncher:
    """runtime.process.launcher.Launcher as the engine uses it."""

    socket_path = "/nonexistent/forkserver.sock"
    server_pid = None
    inits_bring_lo_up = True  # False: a monitor from before the init brought lo up
    clones_into_cgroup = True  # False: a monitor from before LaunchConfig.cgroup_dir

    def __init__(self) -> None:
        self.runs: list[FakeRun] = []
        self.ignore: set[int] = set()  # signals the container's init ignores (not SIGKILL)
        self.exit_delay = 0.0  # how long a handled signal takes to end the process
        self.gate: asyncio.Event | None = None  # set: a launch waits for it (start in flight)
        self.cgroups_dirs: dict[str, FakeCgroup] = {}  # v2 directory -> its cgroup
        self.launching = asyncio.Event()  # a launch has begun
        self.configs: list[LaunchConfig] = []  # what each launch was given
        self.kernel_clones: bool = True  # a cgroup_dir launch is born in it (clone3 took it)

    async def start_server(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def launch(self, cfg: LaunchConfig, prepare: Callable[[int], Awaitable[None]] | None = None,
                     timeout: float = 60.0) -> Launched:
        self.launching.set()
        if self.gate is not None:
            await self.gate.wait()
        pid = next(_PIDS)
        self.configs.append(cfg)
        if cfg.cgroup_dir and self.kernel_clones:
            self.cgroups_dirs[cfg.cgroup_dir].born.append(pid)
        launched = Launched(cfg.id, pid, pid + 1, pid, pid + 1, cfg.state_dir, cfg.log_file)
        run = FakeRun(launched, asyncio.get_running_loop().create_future())
        self.runs.append(run)
        if prepare is not None:
            await prepare(pid)
        return launched

    def run_of(self, target: Launched | str) -> FakeRun:
        for run in self.runs:
            if run.launched == target or run.launched.state_dir == target:
                return run
        raise NotFound(f"no run {target}")

    def runs_of(self, cid: str) -> list[FakeRun]:
        return [r for r in self.runs if r.launched.id == cid]

    def adopt(self, state_dir: str) -> Launched | None:
        runs = [r for r in self.runs if r.launched.state_dir == state_dir]
        if not runs:
            raise NotFound(f"no launched container in {state_dir}")
        return None if runs[-1].ended else runs[-1].launched

    def exit_status(self, state_dir: str) -> ExitStatus | None:
        runs = [r for r in self.runs if r.launched.state_dir == state_dir and r.ended]
        return runs[-1].exit.result() if runs else None

    async def wait(self, target: Launched | str) -> ExitStatus:
        return await asyncio.shield(self.run_of(target).exit)

    def kill(self, target: Launched | int, sig: int = signal.SIGKILL) -> bool:
        assert isinstance(target, Launched)
        run = self.run_of(target)
        run.signals.append(sig)
        if run.ended:
            return False
        if sig == signal.SIGKILL:
            run.end(128 + sig)
        elif sig not in self.ignore:
            asyncio.get_running_loop().call_later(self.exit_delay, run.end, 128 + sig)
        return True


class FakeCgroup:
    def __init__(self, manager: FakeCgroups, name: str) -> None:
        self.manager = manager
        self.name = name
        self.version = manager.version
        self.frozen = False
        self.members: list[int] = []  # moved in by add_pid
        self.born: list[int] = []  # cloned into it (CLONE_INTO_CGROUP)
        if self.version == "v2":
            manager.launcher.cgroups_dirs[str(self.directories()[0])] = self

    def path(self, controller: str) -> Path:
        return Path("/nonexistent") / controller / self.name

    def directories(self) -> list[Path]:
        return [Path("/nonexistent/v2") / self.name] if self.version == "v2" else []

    def apply(self, resources: object) -> None:
        pass

    def restrict_devices(self, extra: Sequence[object] = ()) -> None:
        pass

    def add_pid(self, pid: int) -> None:
        self.members.append(pid)

    def pids(self) -> list[int]:
        return [*self.born, *self.members]

    def stats(self) -> CgroupStats:
        return CgroupStats()

    def oom_killed(self) -> bool:
        return False

    def freeze(self) -> None:
        self.frozen = True

    def thaw(self) -> None:
        self.frozen = False

    def kill_all(self, sig: int = signal.SIGKILL, timeout: float = 5.0) -> None:
        """Every process of the container ends with 137 (also when called on a thread)."""
        self.manager.kills.append(self.name)
        for run in self.manager.launcher.runs_of(self.name):
            self.manager.loop.call_soon_threadsafe(run.end, 137)

    def remove(self, timeout: float = 5.0) -> None:
        self.manager.groups.pop(self.name, None)

    def exists(self) -> bool:
        return self.name in self.manager.groups


class FakeCgroups:
    """runtime.cgroups.CgroupManager: one FakeCgroup per container id."""

    version = "v1"
    root = Path("/nonexistent")
    parent = "composer-fake"

    def __init__(self, launcher: FakeLauncher) -> None:
        self.launcher = launcher
        self.loop = asyncio.get_running_loop()
        self.groups: dict[str, FakeCgroup] = {}
        self.kills: list[str] = []  # kill_all calls, by container id

    def create(self, name: str) -> FakeCgroup:
        group = self.groups[name] = FakeCgroup(self, name)
        return group

    def open(self, name: str) -> FakeCgroup:
        try:
            return self.groups[name]
        except KeyError:
            raise CgroupNotFound(f"no cgroup {name}") from None

    def list(self) -> list[str]:
        return list(self.groups)

    def remove_parent(self, timeout: float = 5.0) -> None:
        pass

    def delegate(self, pids: Sequence[int], timeout: float = 10.0) -> None:
        pass


class FakeNetwork:
    """runtime.network.NetworkManager for containers with network_mode none."""

    def __init__(self) -> None:
        self.detach_gate: asyncio.Event | None = None  # set: a release waits for it
        self.detaching = asyncio.Event()  # a release has begun
        self.detached: list[str] = []
        self.netns_ended: dict[str, bool] = {}  # the last detach's netns_ended, by container
        self.loopbacks: list[int] = []  # setup_loopback calls, by pid

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def setup_loopback(self, pid: int) -> None:
        self.loopbacks.append(pid)

    def resolv_conf(self, container_id: str, dns: object, search: object, options: object,
                    host_mode: bool = False) -> str:
        return "nameserver 127.0.0.11\n"

    async def unpublish(self, container_id: str) -> None:
        pass

    async def detach(self, container_id: str, netns_ended: bool = False) -> None:
        self.netns_ended[container_id] = netns_ended
        self.detaching.set()
        if self.detach_gate is not None:
            await self.detach_gate.wait()
        self.detached.append(container_id)
