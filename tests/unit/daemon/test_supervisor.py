"""Restart policies with backoff, and health checks, on the fake engine with tiny intervals."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from runtime.api import Event, ExecResult
from runtime.errors import InvalidArgument, LaunchError
from runtime.supervisor import Backoff, RestartPolicy, Supervisor, check_spec, health_argv
from runtime.types import ContainerSpec, Healthcheck
from tests.unit.daemon.fake_engine import FakeEngine

FAST = Backoff(initial=0.01, factor=2, cap=0.04, reset_after=10)


async def until(cond: Callable[[], bool], timeout: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "condition not met in time"
        await asyncio.sleep(0.005)


@pytest.fixture
async def sup_engine() -> FakeEngine:
    e = FakeEngine(supervise=True, backoff=FAST)
    yield e  # type: ignore[misc]
    await e.close()


async def run(
    engine: FakeEngine, restart: str = "no", hc: Healthcheck | None = None, name: str = "web-1",
    labels: dict[str, str] | None = None,
) -> str:
    info = await engine.create_container(
        ContainerSpec(name, "busybox:latest", restart=restart, healthcheck=hc, labels=labels or {})
    )
    await engine.start_container(info.id)
    return info.id


def state(engine: FakeEngine, cid: str) -> str:
    return engine.containers[cid].info.state


# ---------------------------------------------------------------- policies


@pytest.mark.parametrize(
    ("text", "policy"),
    [
        ("no", RestartPolicy("no")),
        ("", RestartPolicy("no")),
        ("always", RestartPolicy("always")),
        ("unless-stopped", RestartPolicy("unless-stopped")),
        ("on-failure", RestartPolicy("on-failure", 0)),
        ("on-failure:5", RestartPolicy("on-failure", 5)),
    ],
)
def test_parse_policy(text: str, policy: RestartPolicy) -> None:
    assert RestartPolicy.parse(text) == policy


@pytest.mark.parametrize("text", ["sometimes", "always:3", "on-failure:x", "on-failure:-1", "no:1"])
def test_parse_bad_policy(text: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid restart policy"):
        RestartPolicy.parse(text)


def test_policy_decisions() -> None:
    onf = RestartPolicy("on-failure", 2)
    assert onf.wants_restart(1, 0, False) and onf.wants_restart(1, 1, False)
    assert not onf.wants_restart(1, 2, False)  # max reached
    assert not onf.wants_restart(0, 0, False)  # success
    assert RestartPolicy("on-failure").wants_restart(1, 1000, False)
    assert RestartPolicy("always").wants_restart(0, 50, False)
    assert not RestartPolicy("always").wants_restart(1, 0, True)  # user stopped
    assert not RestartPolicy("no").wants_restart(1, 0, False)
    assert RestartPolicy("always").start_on_daemon_start(user_stopped=True)
    assert not RestartPolicy("unless-stopped").start_on_daemon_start(user_stopped=True)
    assert RestartPolicy("unless-stopped").start_on_daemon_start(user_stopped=False)
    assert not RestartPolicy("no").start_on_daemon_start(user_stopped=False)


def test_backoff_doubles_from_100ms_and_caps() -> None:
    b = Backoff()
    assert [b.delay(i) for i in range(8)] == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0]
    assert b.delay(50) == 10.0


# ---------------------------------------------------------------- restarts


async def test_always_restarts_with_doubling_delays(sup_engine: FakeEngine) -> None:
    cid = await run(sup_engine, "always")
    for n in range(1, 6):
        await sup_engine.exit(cid, 0)
        assert state(sup_engine, cid) == "restarting"
        assert sup_engine.containers[cid].info.restart_count == n
        await until(lambda: state(sup_engine, cid) == "running")
    assert [d.delay for d in sup_engine.decisions] == [0.01, 0.02, 0.04, 0.04, 0.04]  # capped
    assert [d.restart_count for d in sup_engine.decisions] == [1, 2, 3, 4, 5]
    assert all(d.restart for d in sup_engine.decisions)
    assert sup_engine.supervisor is not None and sup_engine.supervisor.restart_count(cid) == 5


async def test_backoff_resets_after_a_long_run() -> None:
    now = [0.0]
    engine = FakeEngine()
    engine.supervisor = Supervisor(
        engine,
        engine.bus,
        backoff=Backoff(initial=0.01, cap=1.0, reset_after=10),
        clock=lambda: now[0],
    )
    try:
        cid = await run(engine, "always")
        for _ in range(4):  # quick crashes: 0 s of (fake) run time each
            await engine.exit(cid, 1)
            await until(lambda: state(engine, cid) == "running")
        now[0] += 11  # this run lasted 11 s: the sequence starts over
        await engine.exit(cid, 1)
        await until(lambda: state(engine, cid) == "running")
        now[0] += 9.9  # not long enough to reset
        await engine.exit(cid, 1)
        assert [d.delay for d in engine.decisions] == [0.01, 0.02, 0.04, 0.08, 0.01, 0.02]
    finally:
        await engine.close()


async def test_on_failure_max_retries(sup_engine: FakeEngine) -> None:
    cid = await run(sup_engine, "on-failure:2")
    for expected in (1, 2):
        await sup_engine.exit(cid, 1)
        assert state(sup_engine, cid) == "restarting"
        await until(lambda: state(sup_engine, cid) == "running")
        assert sup_engine.containers[cid].info.restart_count == expected
    await sup_engine.exit(cid, 1)
    await asyncio.sleep(0.1)
    assert state(sup_engine, cid) == "exited"


async def test_on_failure_does_not_restart_success_and_no_never(sup_engine: FakeEngine) -> None:
    a = await run(sup_engine, "on-failure", name="a")
    b = await run(sup_engine, "no", name="b")
    await sup_engine.exit(a, 0)
    await sup_engine.exit(b, 1)
    await asyncio.sleep(0.1)
    assert state(sup_engine, a) == "exited" and state(sup_engine, b) == "exited"
    assert [(d.restart, d.reason) for d in sup_engine.decisions] == [
        (False, "policy on-failure"),
        (False, "policy no"),
    ]


@pytest.mark.parametrize("policy", ["always", "unless-stopped", "on-failure"])
async def test_user_stop_or_kill_is_not_restarted(sup_engine: FakeEngine, policy: str) -> None:
    cid = await run(sup_engine, policy)
    await sup_engine.stop_container(cid)
    await asyncio.sleep(0.1)
    assert state(sup_engine, cid) == "exited"
    await sup_engine.start_container(cid)
    await sup_engine.kill_container(cid, "SIGKILL")
    await asyncio.sleep(0.1)
    assert state(sup_engine, cid) == "exited"
    assert sup_engine.containers[cid].info.exit_code == 137


async def test_stop_during_backoff_cancels_the_restart() -> None:
    engine = FakeEngine(supervise=True, backoff=Backoff(initial=0.3))
    try:
        cid = await run(engine, "always")
        await engine.exit(cid, 1)
        assert state(engine, cid) == "restarting"
        assert engine.supervisor is not None
        assert engine.supervisor.user_stopped(cid) is True
        await asyncio.sleep(0.5)
        assert state(engine, cid) == "restarting"  # the fake leaves the state; no start happened
        assert engine.containers[cid].info.pid == 0
    finally:
        await engine.close()


async def test_user_start_resets_restart_count(sup_engine: FakeEngine) -> None:
    cid = await run(sup_engine, "always")
    await sup_engine.exit(cid, 1)
    await until(lambda: state(sup_engine, cid) == "running")
    assert sup_engine.supervisor is not None and sup_engine.supervisor.restart_count(cid) == 1
    await sup_engine.stop_container(cid)
    await sup_engine.start_container(cid)
    assert sup_engine.supervisor.restart_count(cid) == 0


async def test_failed_restart_counts_and_retries(sup_engine: FakeEngine) -> None:
    cid = await run(sup_engine, "on-failure:5")
    real_start = sup_engine.start_container
    fails = [2]

    async def flaky(ref: str):  # type: ignore[no-untyped-def]
        if fails[0]:
            fails[0] -= 1
            raise LaunchError("exec failed: no such file", subject="web-1", exit_code=127)
        return await real_start(ref)

    sup_engine.start_container = flaky  # type: ignore[method-assign]
    await sup_engine.exit(cid, 1)
    await until(lambda: state(sup_engine, cid) == "running")
    assert sup_engine.supervisor is not None and sup_engine.supervisor.restart_count(cid) == 3


async def test_forget_cancels_pending_restart() -> None:
    engine = FakeEngine(supervise=True, backoff=Backoff(initial=0.2))
    try:
        cid = await run(engine, "always")
        await engine.exit(cid, 1)
        await engine.remove_container(cid, force=True)
        await asyncio.sleep(0.3)
        assert cid not in engine.containers
        assert engine.supervisor is not None and engine.supervisor.health(cid) is None
    finally:
        await engine.close()


# ---------------------------------------------------------------- health checks


def hc(test: tuple[str, ...], **kw: float) -> Healthcheck:
    opts: dict[str, float] = {
        "interval": 0.02,
        "timeout": 0.5,
        "retries": 2,
        "start_period": 0.0,
        "start_interval": 0.02,
    }
    opts.update(kw)
    return Healthcheck(test, **opts)  # type: ignore[arg-type]


def test_health_argv() -> None:
    assert health_argv(("CMD", "curl", "-f", "http://localhost")) == [
        "curl",
        "-f",
        "http://localhost",
    ]
    assert health_argv(("CMD-SHELL", "curl -f localhost || exit 1")) == [
        "/bin/sh",
        "-c",
        "curl -f localhost || exit 1",
    ]
    assert health_argv(("NONE",)) is None
    assert health_argv(()) is None
    for bad in (("CMD",), ("SHELL", "x"), ("CMD-SHELL", "a", "b")):
        with pytest.raises(InvalidArgument, match="invalid healthcheck test"):
            health_argv(bad)


async def collect_health(engine: FakeEngine) -> tuple[list[Event], asyncio.Task[None]]:
    events: list[Event] = []
    sub = engine.bus.subscribe()

    async def pump() -> None:
        async for ev in sub:
            if ev.action.startswith("health_status"):
                events.append(ev)

    return events, asyncio.ensure_future(pump())


async def test_healthy_transition_is_published_and_inspectable(sup_engine: FakeEngine) -> None:
    events, pump = await collect_health(sup_engine)
    project = {"com.docker.compose.project": "shop", "com.docker.compose.service": "web"}
    cid = await run(sup_engine, hc=hc(("CMD-SHELL", "exit 0")), labels=project)
    assert (await sup_engine.inspect_container(cid)).health == "starting"
    sup_engine.exec_handler = lambda c, argv: ExecResult(0, "ok")
    await until(lambda: len(events) == 1)
    assert events[0].action == "health_status: healthy"
    # as every container event: name, image and labels (`composer events` filters on them)
    assert events[0].id == cid and events[0].attributes == {
        "name": "web-1", "image": "busybox:latest", **project, "health_status": "healthy"}
    assert (await sup_engine.inspect_container(cid)).health == "healthy"
    assert sup_engine.exec_calls[0] == (cid, ["/bin/sh", "-c", "exit 0"])
    await asyncio.sleep(0.1)
    assert len(events) == 1  # only changes are published
    pump.cancel()


async def test_unhealthy_after_retries_then_recovers(sup_engine: FakeEngine) -> None:
    events, pump = await collect_health(sup_engine)
    results = iter([1, 1, 1, 0])
    sup_engine.exec_handler = lambda c, argv: ExecResult(next(results, 0), "", "down")
    cid = await run(sup_engine, hc=hc(("CMD", "check"), retries=2))
    await until(lambda: len(events) == 2)
    assert [e.action for e in events] == ["health_status: unhealthy", "health_status: healthy"]
    assert sup_engine.supervisor is not None
    h = sup_engine.supervisor.health(cid)
    assert h is not None and h.status == "healthy" and h.failing_streak == 0
    assert [r.exit_code for r in h.log][:4] == [1, 1, 1, 0]
    assert h.log[0].output == "down"
    assert len(h.log) <= 5
    pump.cancel()


async def test_probe_timeout_is_a_failure(sup_engine: FakeEngine) -> None:
    cid = await run(sup_engine, hc=hc(("CMD", "sleep", "5"), timeout=0.05, retries=1))
    await until(
        lambda: (
            (sup_engine.supervisor.health(cid) or None) is not None
            and sup_engine.supervisor.health(cid).status == "unhealthy"
        )
    )  # type: ignore[union-attr]
    h = sup_engine.supervisor.health(cid)  # type: ignore[union-attr]
    assert h is not None and h.log[0].exit_code == -1
    assert "exceeded timeout (0.05s)" in h.log[0].output


async def test_start_period_failures_do_not_count(sup_engine: FakeEngine) -> None:
    sup_engine.exec_handler = lambda c, argv: ExecResult(1)
    cid = await run(
        sup_engine,
        hc=hc(("CMD", "check"), retries=1, start_period=0.3, start_interval=0.01, interval=0.02),
    )
    assert sup_engine.supervisor is not None
    await asyncio.sleep(0.2)
    h = sup_engine.supervisor.health(cid)
    assert h is not None and h.status == "starting" and len(h.log) >= 5  # probed, not counted
    await until(lambda: sup_engine.supervisor.health(cid).status == "unhealthy")  # type: ignore[union-attr]


async def test_none_test_has_no_health_and_exit_stops_probes(sup_engine: FakeEngine) -> None:
    a = await run(sup_engine, hc=Healthcheck(("NONE",)), name="a")
    assert sup_engine.supervisor is not None and sup_engine.supervisor.health(a) is None
    b = await run(sup_engine, hc=hc(("CMD", "true")), name="b")
    sup_engine.exec_handler = lambda c, argv: ExecResult(0)
    await until(lambda: len(sup_engine.exec_calls) >= 2)
    await sup_engine.exit(b, 0)
    n = len(sup_engine.exec_calls)
    await asyncio.sleep(0.1)
    assert len(sup_engine.exec_calls) == n


async def test_close_cancels_everything(sup_engine: FakeEngine) -> None:
    await run(sup_engine, "always", hc=hc(("CMD", "true")))
    sup = sup_engine.supervisor
    assert sup is not None
    tasks = [t for st in sup._watched.values() for t in st.tasks]
    assert tasks
    await sup.close()
    assert all(t.done() for t in tasks)


async def test_user_start_during_backoff_cancels_the_pending_restart() -> None:
    engine = FakeEngine(supervise=True, backoff=Backoff(initial=0.2))
    try:
        cid = await run(engine, "always")
        await engine.exit(cid, 1)
        real_start = engine.start_container
        calls: list[str] = []

        async def counting(ref: str):  # type: ignore[no-untyped-def]
            calls.append(ref)
            return await real_start(ref)

        engine.start_container = counting  # type: ignore[method-assign]
        await engine.start_container(cid)  # the user, before the backoff ran out
        await asyncio.sleep(0.35)
        assert calls == [cid]  # the supervisor's restart did not fire as well
        assert engine.supervisor is not None and engine.supervisor.restart_count(cid) == 0
    finally:
        await engine.close()


async def test_watch_never_raises_on_bad_specs(sup_engine: FakeEngine) -> None:
    cid = await run(sup_engine, "sometimes", hc=Healthcheck(("SHELL", "x")))
    assert sup_engine.supervisor is not None and sup_engine.supervisor.health(cid) is None
    await sup_engine.exit(cid, 1)
    assert state(sup_engine, cid) == "exited"  # treated as "no"


def test_check_spec() -> None:
    check_spec(
        ContainerSpec("a", "b", restart="on-failure:3", healthcheck=Healthcheck(("CMD", "x")))
    )
    with pytest.raises(InvalidArgument, match="invalid restart policy 'sometimes'"):
        check_spec(ContainerSpec("a", "b", restart="sometimes"))
    with pytest.raises(InvalidArgument, match="invalid healthcheck test"):
        check_spec(ContainerSpec("a", "b", healthcheck=Healthcheck(("CMD",))))
    with pytest.raises(InvalidArgument, match="invalid healthcheck interval 0"):
        check_spec(ContainerSpec("a", "b", healthcheck=Healthcheck(("CMD", "x"), interval=0)))


async def test_close_ends_a_watcher_that_swallowed_a_cancellation(sup_engine: FakeEngine) -> None:
    """On 3.11 `wait_for` returns the result of a probe that ends just as its task is
    cancelled: the health loop went on, and close() (composerd's shutdown, every test's
    teardown) waited for it forever (1 unit run in ~5 hung)."""
    cid = await run(sup_engine, hc=hc(("CMD", "check")))
    sup = sup_engine.supervisor
    assert sup is not None
    swallowed = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            swallowed.set()  # as wait_for does when its inner future is already done
        await asyncio.sleep(3600)

    sup._spawn(sup._watched[cid], stubborn())  # noqa: SLF001
    await asyncio.sleep(0)
    t0 = time.monotonic()
    closing = asyncio.create_task(sup.close())
    await asyncio.wait({closing}, timeout=10)
    assert closing.done() and time.monotonic() - t0 < 5 and swallowed.is_set()
