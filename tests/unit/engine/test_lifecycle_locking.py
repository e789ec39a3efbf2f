"""The engine's per-container record and its lock (runtime.live), driven without root: the
launcher, cgroups and network are fakes (tests/unit/engine/fakes.py) whose launch, release
and process end wait on the test, so each race is placed, not hoped for.

What must hold (and fails if the locking breaks):
- a kill during a stop's grace period kills at once (stop does not hold the lock while it
  waits), and the exit it causes is recorded while the stop still waits;
- a stop that comes while an exit is being recorded sees it ended and signals nothing;
- a remove waits for a start in flight and kills what it started; a start that waited
  behind a remove finds the container gone and launches nothing;
- the restart policy restarts after an exit, and a stop during its backoff ends it;
- an engine that opens again adopts a container still running and records one that ended.
"""
from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from runtime.engine import Engine
from runtime.errors import NotFound
from runtime.images.config import ImageConfig
from runtime.images.store import ImageStore
from runtime.paths import Paths
from runtime.types import ContainerSpec
from tests.unit.engine.fakes import FakeCgroup, FakeCgroups, FakeLauncher, FakeNetwork

QUICK = 2.0  # seconds: far below every grace period below, far above a loaded machine's lag


async def until(cond: Callable[[], bool], timeout: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "condition not met in time"
        await asyncio.sleep(0.005)


@dataclass
class Env:
    paths: Paths
    launcher: FakeLauncher
    cgroups: FakeCgroups
    network: FakeNetwork
    images: ImageStore

    async def open(self) -> Engine:
        return await Engine.open(self.paths, launcher=self.launcher, cgroups=self.cgroups,
                                 network=self.network, images=self.images)


@pytest.fixture
async def env(tmp_path: Path) -> Env:
    paths = Paths(tmp_path / "root", tmp_path / "run")
    images = ImageStore(paths)
    images.put(ImageConfig(cmd=("sleep", "600")), [], ["fake:1"])
    launcher = FakeLauncher()
    return Env(paths, launcher, FakeCgroups(launcher), FakeNetwork(), images)


@pytest.fixture
async def engine(env: Env) -> AsyncIterator[Engine]:
    eng = await env.open()
    try:
        yield eng
    finally:
        await eng.close()


async def make(engine: Engine, name: str, **kw: object) -> str:
    spec = ContainerSpec(name=name, image="fake:1", network_mode="none", **kw)  # type: ignore[arg-type]
    return (await engine.create_container(spec)).id


async def test_a_kill_during_a_stops_grace_period_kills_at_once(engine: Engine, env: Env) -> None:
    env.launcher.ignore = {signal.SIGTERM}
    cid = await make(engine, "stubborn", stop_grace_period=60.0)
    await engine.start_container(cid)
    run = env.launcher.runs_of(cid)[0]
    stop = asyncio.create_task(engine.stop_container(cid))
    await until(lambda: signal.SIGTERM in run.signals)

    await asyncio.wait_for(engine.kill_container(cid), QUICK)  # not after the 60 s grace
    info = await asyncio.wait_for(stop, QUICK)
    assert run.ended and info.state == "exited" and info.exit_code == 137
    assert cid not in env.cgroups.groups  # the exit released the cgroup


async def test_the_exit_a_stop_causes_is_recorded_while_the_stop_waits(
        engine: Engine, env: Env) -> None:
    env.launcher.exit_delay = 0.1  # the process handles SIGTERM and ends a moment later
    cid = await make(engine, "polite", stop_grace_period=60.0)
    await engine.start_container(cid)
    info = await asyncio.wait_for(engine.stop_container(cid), QUICK)
    assert info.state == "exited" and info.exit_code == 143
    assert env.launcher.runs_of(cid)[0].signals == [signal.SIGTERM]  # no SIGKILL was needed
    assert env.cgroups.kills == [cid]  # only the release's own sweep of the cgroup


async def test_a_stop_while_the_exit_is_recorded_sees_it_ended(engine: Engine, env: Env) -> None:
    cid = await make(engine, "ending")
    await engine.start_container(cid)
    run = env.launcher.runs_of(cid)[0]
    env.network.detach_gate = asyncio.Event()
    run.end(3)
    await env.network.detaching.wait()  # _finish is releasing the network, under the lock

    stop = asyncio.create_task(engine.stop_container(cid))
    await asyncio.sleep(0.05)
    assert not stop.done()  # it waits for the exit to be recorded
    env.network.detach_gate.set()
    info = await asyncio.wait_for(stop, QUICK)
    assert info.state == "exited" and info.exit_code == 3
    assert run.signals == []  # nothing was sent to the process that had ended


async def test_a_remove_racing_a_start_waits_for_it_and_kills_what_it_started(
        engine: Engine, env: Env) -> None:
    cid = await make(engine, "race")
    env.launcher.gate = asyncio.Event()
    start = asyncio.create_task(engine.start_container(cid))
    await env.launcher.launching.wait()  # the start is launching, under the lock
    remove = asyncio.create_task(engine.remove_container(cid, force=True))
    await asyncio.sleep(0.05)
    assert not remove.done()  # it waits for the start
    env.launcher.gate.set()
    await asyncio.wait_for(remove, QUICK)
    try:
        await start
    except NotFound:
        pass
    runs = env.launcher.runs_of(cid)
    assert runs and all(r.ended for r in runs)  # what the start launched was killed
    assert env.cgroups.groups == {}
    assert not env.paths.container_dir(cid).exists()
    with pytest.raises(NotFound):
        await engine.inspect_container(cid)


async def test_a_start_that_waited_behind_a_remove_finds_the_container_gone(
        engine: Engine, env: Env) -> None:
    cid = await make(engine, "going")
    env.network.detach_gate = asyncio.Event()
    remove = asyncio.create_task(engine.remove_container(cid))
    await env.network.detaching.wait()  # the removal is under way, under the lock
    start = asyncio.create_task(engine.start_container(cid))
    await asyncio.sleep(0.05)
    env.network.detach_gate.set()
    await asyncio.wait_for(remove, QUICK)
    with pytest.raises(NotFound, match="removed"):
        await asyncio.wait_for(start, QUICK)
    assert env.launcher.runs == []  # nothing was launched for a removed container
    assert env.cgroups.groups == {}


async def test_a_start_queued_behind_a_remove_finds_the_container_gone(
        engine: Engine, env: Env) -> None:
    """The start found the container, then waited for its lock while a remove that came
    first took it away: it must not launch into a removed container."""
    cid = await make(engine, "queued")
    live = engine._live[cid]
    await live.lock.acquire()  # any holder (a copy out of the stopped container, say)
    remove = asyncio.create_task(engine.remove_container(cid))
    await asyncio.sleep(0.01)
    start = asyncio.create_task(engine.start_container(cid))
    await asyncio.sleep(0.01)
    live.lock.release()
    await asyncio.wait_for(remove, QUICK)
    with pytest.raises(NotFound, match="removed"):
        await asyncio.wait_for(start, QUICK)
    assert env.launcher.runs == [] and env.cgroups.groups == {}


async def test_a_kill_waits_for_a_start_in_flight_and_kills_that_run(
        engine: Engine, env: Env) -> None:
    cid = await make(engine, "early")
    env.launcher.gate = asyncio.Event()
    start = asyncio.create_task(engine.start_container(cid))
    await env.launcher.launching.wait()
    kill = asyncio.create_task(engine.kill_container(cid))
    await asyncio.sleep(0.05)
    env.launcher.gate.set()
    await asyncio.wait_for(start, QUICK)
    await asyncio.wait_for(kill, QUICK)
    assert await asyncio.wait_for(engine.wait_container(cid), QUICK) == 137
    assert env.launcher.runs_of(cid)[0].ended


async def test_the_restart_policy_restarts_after_an_exit_and_a_stop_ends_it(
        engine: Engine, env: Env) -> None:
    cid = await make(engine, "flaky", restart="on-failure")
    await engine.start_container(cid)
    env.launcher.runs_of(cid)[0].end(1)
    await until(lambda: len(env.launcher.runs_of(cid)) == 2)  # after the 100 ms backoff
    await until(lambda: engine.table.get(cid).run.state == "running")
    info = await engine.inspect_container(cid)
    assert info.restart_count == 1 and info.exit_code is None

    info = await asyncio.wait_for(engine.stop_container(cid), QUICK)
    assert info.state == "exited" and info.exit_code == 143
    await asyncio.sleep(0.3)  # longer than the next backoff
    assert len(env.launcher.runs_of(cid)) == 2  # a user stop is not restarted


async def test_a_stop_during_the_restart_backoff_cancels_the_restart(
        engine: Engine, env: Env) -> None:
    cid = await make(engine, "always", restart="always")
    await engine.start_container(cid)
    env.launcher.runs_of(cid)[0].end(0)
    await until(lambda: engine.table.get(cid).run.state == "restarting")
    info = await asyncio.wait_for(engine.stop_container(cid), QUICK)
    assert info.state == "exited"
    await asyncio.sleep(0.3)
    assert len(env.launcher.runs_of(cid)) == 1
    assert engine.table.get(cid).run.state == "exited"


async def test_restart_stops_and_starts_again(engine: Engine, env: Env) -> None:
    cid = await make(engine, "again")
    await engine.start_container(cid)
    first = env.launcher.runs_of(cid)[0]
    info = await asyncio.wait_for(engine.restart_container(cid), QUICK)
    assert first.ended and first.signals == [signal.SIGTERM]
    assert info.state == "running" and len(env.launcher.runs_of(cid)) == 2
    # the new run is tracked: a kill ends it, its exit is recorded
    await engine.kill_container(cid)
    assert await asyncio.wait_for(engine.wait_container(cid), QUICK) == 137


async def test_pause_and_unpause_freeze_the_running_container(engine: Engine, env: Env) -> None:
    cid = await make(engine, "frozen")
    await engine.start_container(cid)
    await engine.pause_container(cid)
    assert env.cgroups.groups[cid].frozen and engine.table.get(cid).run.state == "paused"
    await engine.unpause_container(cid)
    assert not env.cgroups.groups[cid].frozen and engine.table.get(cid).run.state == "running"


async def test_an_engine_that_opens_again_adopts_what_runs_and_records_what_ended(
        env: Env) -> None:
    first = await env.open()
    alive = await make(first, "alive")
    gone = await make(first, "gone")
    await first.start_container(alive)
    await first.start_container(gone)
    await first.close()  # containers outlive the engine (their shims supervise them)
    env.launcher.runs_of(gone)[0].end(4)  # ... and one ends while no engine watches

    second = await env.open()
    try:
        assert (await second.inspect_container(alive)).state == "running"
        ended = await second.inspect_container(gone)
        assert ended.state == "exited" and ended.exit_code == 4
        assert gone not in env.cgroups.groups  # what it held was released at adoption
        info = await asyncio.wait_for(second.stop_container(alive), QUICK)
        assert info.state == "exited" and info.exit_code == 143  # the adopted run's exit
        await second.remove_container(alive)
        await second.remove_container(gone)
        assert env.cgroups.groups == {}
    finally:
        await second.close()


@pytest.mark.parametrize("monitor_does_it", [True, False])
async def test_lo_up_by_the_init_or_else_by_the_engine(
        engine: Engine, env: Env, monitor_does_it: bool) -> None:
    """network_mode none: the monitor's init brings lo up itself; a monitor started before
    that (it still runs after an upgrade) does not say so, and the engine does it as before."""
    env.launcher.inits_bring_lo_up = monitor_does_it
    cid = await make(engine, "lonely")
    await engine.start_container(cid)
    run = env.launcher.runs_of(cid)[0]
    assert env.network.loopbacks == ([] if monitor_does_it else [run.launched.pid])


@pytest.mark.parametrize("version,monitor_takes_it,kernel_clones,moved", [
    ("v2", True, True, False),  # born in its cgroup: no cgroup.procs write
    ("v2", True, False, True),  # the kernel refused clone3 (< 5.7, filtered): moved as before
    ("v2", False, True, True),  # a monitor from before the field: never sent, moved
    ("v1", True, True, True),  # one directory per controller: moved in each
])
async def test_the_init_is_cloned_into_its_v2_cgroup_or_moved_there(
        engine: Engine, env: Env, version: str, monitor_takes_it: bool, kernel_clones: bool,
        moved: bool) -> None:
    """The cgroup is made (limits, device rules) before the launch; on v2 its directory goes
    with the launch so the init is born in it; whatever the kernel did, the init is in its
    cgroup before "go", and moved by the engine only when it is not there yet."""
    env.cgroups.version = version
    env.launcher.clones_into_cgroup = monitor_takes_it
    env.launcher.kernel_clones = kernel_clones
    cid = await make(engine, "born")
    await engine.start_container(cid)
    pid = env.launcher.runs_of(cid)[0].launched.pid
    sent = env.launcher.configs[-1].cgroup_dir
    assert sent == (f"/nonexistent/v2/{cid}" if version == "v2" and monitor_takes_it else "")
    cg = env.cgroups.groups[cid]
    assert pid in cg.pids()
    assert cg.members == ([pid] if moved else [])


@pytest.mark.parametrize("exit_release_fails", [False, True])
async def test_a_remove_after_the_exit_released_all_does_not_release_again(
        engine: Engine, env: Env, exit_release_fails: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The exit releases the run's cgroup, network and shm; the remove that follows only
    deletes the files, unless a step of that release failed: then the remove tries again."""
    cid = await make(engine, "once")
    await engine.start_container(cid)
    detach = env.network.detach
    if exit_release_fails:
        async def failing(container_id: str, netns_ended: bool = False) -> None:
            monkeypatch.setattr(env.network, "detach", detach)  # once
            raise OSError(16, "busy")
        monkeypatch.setattr(env.network, "detach", failing)
    env.launcher.runs_of(cid)[0].end(0)
    assert await asyncio.wait_for(engine.wait_container(cid), QUICK) == 0
    assert cid not in env.cgroups.groups
    env.network.detached.clear()
    if not exit_release_fails:  # the exit's release: the init has ended, its netns is going
        assert env.network.netns_ended[cid] is True
    await engine.remove_container(cid)
    assert env.network.detached == ([cid] if exit_release_fails else [])
    if exit_release_fails:  # the remove's release claims nothing about the netns
        assert env.network.netns_ended[cid] is False
    with pytest.raises(NotFound):
        await engine.inspect_container(cid)


async def test_the_cgroup_move_runs_off_the_loop(
        engine: Engine, env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """A v1 move (cgroup.procs) waits for an RCU grace period in the kernel (~10 ms): it runs
    in a thread, beside the network work, and the init is in its cgroup once started."""
    env.cgroups.version = "v1"
    threads: list[str] = []
    real_add = FakeCgroup.add_pid

    def add_pid(self: FakeCgroup, pid: int) -> None:
        threads.append(threading.current_thread().name)
        real_add(self, pid)

    monkeypatch.setattr(FakeCgroup, "add_pid", add_pid)
    cid = await make(engine, "moved")
    await engine.start_container(cid)
    pid = env.launcher.runs_of(cid)[0].launched.pid
    assert env.cgroups.groups[cid].members == [pid]
    assert len(threads) == 1 and threads[0] != threading.main_thread().name
