"""composer.scheduler on toy graphs of strings (edge A -> B: A depends on B)."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.scheduler import (
    SERVICE_COMPLETED_SUCCESSFULLY,
    SERVICE_HEALTHY,
    SERVICE_STARTED,
    SchedulerError,
    UpstreamError,
    dependencies,
    run_down,
    run_parallel,
    run_up,
)

TIMEOUT = 5.0


def graph(*edges: tuple[str, str] | tuple[str, str, dict[str, object]], nodes: tuple[str, ...] = ()) -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_nodes_from(nodes)
    for edge in edges:
        if len(edge) == 2:
            g.add_edge(edge[0], edge[1], condition=SERVICE_STARTED, required=True, restart=False)
        else:
            data = {"condition": SERVICE_STARTED, "required": True, "restart": False, **edge[2]}
            g.add_edge(edge[0], edge[1], **data)
    return g


class Recorder:
    """start/stop/wait_condition fakes that record calls; per-service behaviour overridable."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.waits: list[tuple[str, str]] = []
        self.events: list[tuple[str, str, str]] = []
        self.behaviour: dict[str, Callable[[], Awaitable[None]]] = {}
        self.conditions: dict[tuple[str, str], Callable[[], Awaitable[None]]] = {}

    async def start(self, name: str) -> None:
        self.calls.append(name)
        if name in self.behaviour:
            await self.behaviour[name]()
        else:
            await asyncio.sleep(0)

    async def wait_condition(self, name: str, condition: str) -> None:
        self.waits.append((name, condition))
        if (name, condition) in self.conditions:
            await self.conditions[(name, condition)]()

    def event(self, service: str, status: str, message: str) -> None:
        self.events.append((service, status, message))


def fail(message: str) -> Callable[[], Awaitable[None]]:
    async def f() -> None:
        await asyncio.sleep(0)
        raise RuntimeError(message)

    return f


async def up(g: nx.DiGraph, rec: Recorder, **kw: object):  # type: ignore[no-untyped-def]
    async with asyncio.timeout(TIMEOUT):
        return await run_up(g, rec.start, rec.wait_condition, events=rec.event, **kw)  # type: ignore[arg-type]


def overlap_pair(a: str, b: str) -> dict[str, Callable[[], Awaitable[None]]]:
    """Behaviours for a and b that only finish if both run at the same time."""
    entered = {a: asyncio.Event(), b: asyncio.Event()}

    def make(me: str, other: str) -> Callable[[], Awaitable[None]]:
        async def f() -> None:
            entered[me].set()
            async with asyncio.timeout(0.3):
                await entered[other].wait()

        return f

    return {a: make(a, b), b: make(b, a)}


# -- run_up ---------------------------------------------------------------------------------


async def test_chain_starts_in_dependency_order() -> None:
    g = graph(("web", "app"), ("app", "db"))
    rec = Recorder()
    result = await up(g, rec)
    assert rec.calls == ["db", "app", "web"]
    assert result.started == ("db", "app", "web")
    assert result.ok and not result.errors
    assert sorted(rec.waits) == [("app", SERVICE_STARTED), ("db", SERVICE_STARTED)]


async def test_diamond_starts_middles_in_parallel() -> None:
    g = graph(("top", "left"), ("top", "right"), ("left", "base"), ("right", "base"))
    rec = Recorder()
    rec.behaviour.update(overlap_pair("left", "right"))
    result = await up(g, rec)
    assert result.ok, result.errors
    assert rec.calls[0] == "base" and rec.calls[-1] == "top"
    assert set(rec.calls[1:3]) == {"left", "right"}


async def test_diamond_sequential_when_parallelism_is_one() -> None:
    # the overlap fixture must be able to fail: with one slot, left and right can't overlap
    g = graph(("top", "left"), ("top", "right"), ("left", "base"), ("right", "base"))
    rec = Recorder()
    rec.behaviour.update(overlap_pair("left", "right"))
    result = await up(g, rec, parallelism=1)
    # left waits for right in vain and times out; right then finds left entered
    assert result.failed == ("left",)
    assert result.skipped == ("top",)


async def test_bounded_parallelism_is_honoured() -> None:
    g = graph(nodes=tuple(f"s{i}" for i in range(10)))
    rec = Recorder()
    current = 0
    peak = 0

    async def busy() -> None:
        nonlocal current, peak
        current += 1
        peak = max(peak, current)
        await asyncio.sleep(0.01)
        current -= 1

    for i in range(10):
        rec.behaviour[f"s{i}"] = busy
    result = await up(g, rec, parallelism=3)
    assert peak == 3
    assert len(result.started) == 10


async def test_failure_blocks_dependents_but_not_independent_branch() -> None:
    g = graph(("web", "app"), ("app", "db"), ("worker", "cache"))
    rec = Recorder()
    rec.behaviour["db"] = fail("container exited with code 1")
    result = await up(g, rec)
    assert result.failed == ("db",)
    assert set(result.skipped) == {"app", "web"}
    assert set(result.started) == {"cache", "worker"}
    assert "app" not in rec.calls and "web" not in rec.calls
    err = result.errors["web"]
    assert isinstance(err, UpstreamError)
    assert str(err) == "web: dependency failed to start: app -> db: container exited with code 1"
    assert err.chain == ("app", "db")
    assert str(result.errors["app"]) == "app: dependency failed to start: db: container exited with code 1"
    assert isinstance(result.errors["db"], RuntimeError)
    assert ("web", "error", str(err)) in rec.events
    assert not result.ok


async def test_failed_condition_blocks_dependents() -> None:
    g = graph(("app", "db", {"condition": SERVICE_HEALTHY}), ("web", "app"))
    rec = Recorder()
    rec.conditions[("db", SERVICE_HEALTHY)] = fail("container db is unhealthy")
    result = await up(g, rec)
    assert result.started == ("db",)  # db itself started
    assert result.skipped == ("app", "web")
    assert str(result.errors["web"]) == (
        "web: dependency failed to start: app -> db: container db is unhealthy"
    )
    assert ("db", "error", "container db is unhealthy") in rec.events


async def test_fail_fast_does_not_wait_for_other_conditions() -> None:
    # app needs db (fails at once) and cache healthy (never): app is skipped and run_up
    # returns; the pending health wait is cancelled, not awaited forever
    g = graph(("app", "db"), ("app", "cache", {"condition": SERVICE_HEALTHY}))
    rec = Recorder()
    rec.behaviour["db"] = fail("boom")
    cancelled = asyncio.Event()

    async def never() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    rec.conditions[("cache", SERVICE_HEALTHY)] = never
    result = await up(g, rec)
    assert result.skipped == ("app",)
    assert cancelled.is_set()


async def test_completed_successfully_waits_for_the_oneshot_to_exit() -> None:
    g = graph(("app", "migrate", {"condition": SERVICE_COMPLETED_SUCCESSFULLY}))
    rec = Recorder()
    exited = asyncio.Event()

    async def migrate() -> None:
        asyncio.get_running_loop().call_later(0.05, exited.set)

    async def app() -> None:
        assert exited.is_set(), "app started before migrate exited"

    async def wait_exit() -> None:
        await exited.wait()

    rec.behaviour.update(migrate=migrate, app=app)
    rec.conditions[("migrate", SERVICE_COMPLETED_SUCCESSFULLY)] = wait_exit
    result = await up(g, rec)
    assert result.ok, result.errors
    assert rec.calls == ["migrate", "app"]
    assert ("migrate", "exited", "exited with code 0") in rec.events


async def test_condition_is_awaited_once_for_all_dependents() -> None:
    g = graph(*[(s, "db", {"condition": SERVICE_HEALTHY}) for s in ("a", "b", "c")])
    rec = Recorder()
    result = await up(g, rec)
    assert result.ok
    assert rec.waits == [("db", SERVICE_HEALTHY)]
    assert [e for e in rec.events if e[1] == "healthy"] == [("db", "healthy", "")]


async def test_optional_missing_dependency_is_skipped() -> None:
    g = graph(("web", "db", {"required": False}), ("web", "cache"))
    rec = Recorder()
    result = await up(g, rec, services={"web", "cache"})
    assert rec.calls == ["cache", "web"]
    assert ("db", SERVICE_STARTED) not in rec.waits
    assert result.ok
    assert result.warnings == ("web: optional dependency db is not part of this run, skipped",)


async def test_required_dependency_outside_run_is_awaited_not_started() -> None:
    g = graph(("web", "db", {"condition": SERVICE_HEALTHY}))
    rec = Recorder()
    result = await up(g, rec, services={"web"})
    assert rec.calls == ["web"]
    assert rec.waits == [("db", SERVICE_HEALTHY)]
    assert result.ok


async def test_optional_failing_dependency_starts_dependent_with_warning() -> None:
    g = graph(("web", "db", {"required": False}))
    rec = Recorder()
    rec.behaviour["db"] = fail("no space left")
    result = await up(g, rec)
    assert result.failed == ("db",)
    assert result.started == ("web",)
    assert result.warnings == ("web: optional dependency db failed, starting anyway: no space left",)


async def test_events_trace_one_service() -> None:
    g = graph(("web", "db"))
    rec = Recorder()
    await up(g, rec)
    assert [e for e in rec.events if e[0] == "web"] == [
        ("web", "waiting", "db"),
        ("web", "starting", ""),
        ("web", "started", ""),
    ]
    assert [e[1] for e in rec.events if e[0] == "db"] == ["starting", "started"]


async def test_cancellation_cancels_pending_starts_cleanly() -> None:
    # web <- app <- db; db's start hangs; cache's health wait hangs
    g = graph(("web", "app"), ("app", "db"), ("worker", "cache", {"condition": SERVICE_HEALTHY}))
    rec = Recorder()
    db_entered = asyncio.Event()
    cancelled: list[str] = []

    def hang(name: str, entered: asyncio.Event | None = None) -> Callable[[], Awaitable[None]]:
        async def f() -> None:
            if entered is not None:
                entered.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.append(name)
                raise

        return f

    rec.behaviour["db"] = hang("db", db_entered)
    rec.conditions[("cache", SERVICE_HEALTHY)] = hang("cache-health")
    task = asyncio.create_task(run_up(g, rec.start, rec.wait_condition, events=rec.event))
    async with asyncio.timeout(TIMEOUT):
        await db_entered.wait()
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert sorted(cancelled) == ["cache-health", "db"]
    assert "app" not in rec.calls and "web" not in rec.calls and "worker" not in rec.calls
    others = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
    assert not others, others


async def test_cycle_and_unknown_service_are_errors() -> None:
    rec = Recorder()
    with pytest.raises(SchedulerError, match=r"dependency cycle: (a -> b -> a|b -> a -> b)"):
        await up(graph(("a", "b"), ("b", "a")), rec)
    with pytest.raises(SchedulerError, match="no such service: nope"):
        await up(graph(("a", "b")), rec, services={"a", "nope"})
    with pytest.raises(SchedulerError, match="parallelism"):
        await up(graph(("a", "b")), rec, parallelism=0)
    assert rec.calls == []


def test_dependencies_reads_edge_attributes() -> None:
    g = graph(("web", "db", {"condition": SERVICE_HEALTHY, "restart": True}), ("web", "cache", {"required": False}))
    deps = dependencies(g, "web")
    assert [(d.name, d.condition, d.required, d.restart) for d in deps] == [
        ("cache", SERVICE_STARTED, False, False),
        ("db", SERVICE_HEALTHY, True, True),
    ]


# -- run_down -------------------------------------------------------------------------------


async def down(g: nx.DiGraph, stop: Callable[[str], Awaitable[None]], **kw: object):  # type: ignore[no-untyped-def]
    async with asyncio.timeout(TIMEOUT):
        return await run_down(g, stop, **kw)  # type: ignore[arg-type]


async def test_down_stops_in_reverse_order() -> None:
    g = graph(("web", "app"), ("app", "db"))
    order: list[str] = []

    async def stop(name: str) -> None:
        await asyncio.sleep(0)
        order.append(name)

    result = await down(g, stop)
    assert order == ["web", "app", "db"]
    assert result.stopped == ("web", "app", "db") and result.ok


async def test_down_is_parallel_within_a_level() -> None:
    g = graph(("top", "left"), ("top", "right"), ("left", "base"), ("right", "base"))
    calls: list[str] = []
    behaviour = overlap_pair("left", "right")

    async def stop(name: str) -> None:
        calls.append(name)
        if name in behaviour:
            await behaviour[name]()

    result = await down(g, stop)
    assert result.ok, result.errors
    assert calls[0] == "top" and calls[-1] == "base"
    assert set(calls[1:3]) == {"left", "right"}


async def test_down_failed_stop_still_stops_dependencies() -> None:
    g = graph(("web", "db"))
    events: list[tuple[str, str, str]] = []

    async def stop(name: str) -> None:
        if name == "web":
            raise RuntimeError("timeout")

    result = await down(g, stop, events=lambda s, st, m: events.append((s, st, m)))
    assert result.failed == ("web",)
    assert result.stopped == ("db",)
    assert str(result.errors["web"]) == "timeout"
    assert ("web", "error", "timeout") in events and ("db", "stopped", "") in events


async def test_down_subset_ignores_dependents_outside() -> None:
    g = graph(("web", "db"))
    order: list[str] = []

    async def stop(name: str) -> None:
        order.append(name)

    await down(g, stop, services={"db"})
    assert order == ["db"]


# -- run_parallel ---------------------------------------------------------------------------


async def test_run_parallel_keeps_order_captures_errors_and_bounds() -> None:
    current = 0
    peak = 0

    async def fn(x: int) -> int:
        nonlocal current, peak
        current += 1
        peak = max(peak, current)
        await asyncio.sleep(0.01 * (5 - x))
        current -= 1
        if x == 2:
            raise ValueError("two")
        return x * 10

    outcomes = await run_parallel(range(5), fn, limit=2)
    assert [o.item for o in outcomes] == [0, 1, 2, 3, 4]
    assert [o.value for o in outcomes] == [0, 10, None, 30, 40]
    assert str(outcomes[2].error) == "two"
    assert peak == 2


async def test_accepts_wrapper_with_dependency_objects_on_edges() -> None:
    # composer.graph keeps the DiGraph in `.graph` and a Dependency object per edge
    @dataclass(frozen=True)
    class Dep:
        service: str
        condition: str = SERVICE_STARTED
        restart: bool = False
        required: bool = True

    class Wrapper:
        def __init__(self, g: nx.DiGraph) -> None:
            self.graph = g

    g = nx.DiGraph()
    g.add_edge("web", "db", dependency=Dep("db", SERVICE_HEALTHY, restart=True))
    g.add_edge("web", "cache", dependency=Dep("cache", required=False))
    deps = dependencies(Wrapper(g), "web")
    assert [(d.name, d.condition, d.required, d.restart) for d in deps] == [
        ("cache", SERVICE_STARTED, False, False),
        ("db", SERVICE_HEALTHY, True, True),
    ]
    rec = Recorder()
    result = await up(Wrapper(g), rec)
    assert result.ok and rec.calls[-1] == "web"
    assert ("db", SERVICE_HEALTHY) in rec.waits
    with pytest.raises(SchedulerError, match="not a dependency graph"):
        await up(object(), rec)


@st.composite
def dags(draw: st.DrawFn) -> tuple[nx.DiGraph, set[str]]:
    n = draw(st.integers(1, 9))
    names = [f"s{i}" for i in range(n)]
    g = nx.DiGraph()
    g.add_nodes_from(names)
    for i in range(n):
        for j in range(i):  # edges only to lower indices: acyclic by construction
            if draw(st.booleans()):
                g.add_edge(names[i], names[j], condition=SERVICE_STARTED, required=True)
    failing = set(draw(st.lists(st.sampled_from(names), max_size=3)))
    return g, failing


@settings(max_examples=60, deadline=None)
@given(dags(), st.integers(1, 4))
def test_random_dags_respect_order_and_failure_propagation(
    case: tuple[nx.DiGraph, set[str]], parallelism: int
) -> None:
    g, failing = case
    finished: list[str] = []

    async def start(name: str) -> None:
        for dep in g.successors(name):
            assert dep in finished, f"{name} started before {dep}"
        await asyncio.sleep(0)
        if name in failing:
            raise RuntimeError(f"{name} broke")
        finished.append(name)

    async def wait(name: str, condition: str) -> None:
        await asyncio.sleep(0)

    result = asyncio.run(run_up(g, start, wait, parallelism=parallelism))
    for name in g.nodes:
        broken_below = any(d in failing for d in nx.descendants(g, name))
        if broken_below:  # never started, even if it would have failed itself
            err = result.errors[name]
            assert isinstance(err, UpstreamError) and name in result.skipped
            path = (name, *err.chain)
            assert all(g.has_edge(a, b) for a, b in zip(path, path[1:], strict=False))
            assert err.chain[-1] in failing and err.cause == f"{err.chain[-1]} broke"
        elif name in failing:
            assert name in result.failed
        else:
            assert name in result.started
    assert set(result.started) == set(finished)
