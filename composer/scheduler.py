"""When things happen: start a service graph in dependency order, stop it in reverse.

The graph is a `networkx.DiGraph` of service names where an edge `A -> B` means "A depends
on B", with edge attributes `condition` (service_started | service_healthy |
service_completed_successfully), `required` (bool) and `restart` (bool). The scheduler knows
nothing else about services: the caller passes `start(name)` and
`wait_condition(name, condition)` coroutines, so it is unit-tested on toy graphs.

Semantics (as docker-compose 1.x `parallel.py` and Compose v2 `convergence.go`):
- every service gets a task; it waits until each dependency has *started* and then meets
  its condition (`wait_condition(dep, condition)`, awaited once per (dep, condition) and
  shared by all dependents; it raises when the condition can't be met);
- independent services start in parallel, at most `parallelism` `start()` calls at a time
  (waiting for conditions does not hold a slot, so a slow health check can't starve others);
- a service whose start failed, or whose dependency's condition failed, turns its
  dependents into an `UpstreamError` naming the chain; they are never started, while other
  independent branches carry on;
- a `required: false` dependency that is not part of the run is skipped; if it is part of
  the run and fails, the dependent starts anyway and a warning is recorded;
- cancelling `run_up` (Ctrl-C) cancels every pending wait and in-flight start; no start
  begins after the cancellation.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, Literal, Protocol, TypeVar, Union

from composer.errors import ComposerError

if TYPE_CHECKING:  # imported where a graph is walked: `ps` and friends never pay for it
    import networkx as nx

SERVICE_STARTED = "service_started"
SERVICE_HEALTHY = "service_healthy"
SERVICE_COMPLETED_SUCCESSFULLY = "service_completed_successfully"
CONDITIONS = (SERVICE_STARTED, SERVICE_HEALTHY, SERVICE_COMPLETED_SUCCESSFULLY)

Status = Literal[
    "waiting", "starting", "started", "healthy", "exited", "error", "stopping", "stopped", "removed"
]
EventHook = Callable[[str, Status, str], None]
StartFn = Callable[[str], Awaitable[None]]
StopFn = Callable[[str], Awaitable[None]]
WaitConditionFn = Callable[[str, str], Awaitable[None]]



class HasGraph(Protocol):
    """What keeps a dependency graph in `.graph` (composer.graph.ServiceGraph)."""

    @property
    def graph(self) -> nx.DiGraph: ...


GraphLike = Union["nx.DiGraph", HasGraph]  # noqa: UP007 - networkx is imported lazily

T = TypeVar("T")
R = TypeVar("R")


class SchedulerError(ComposerError):
    """The graph can't be scheduled (cycle, unknown service, bad argument)."""


class UpstreamError(SchedulerError):
    """A service was not started because a dependency failed.

    `chain` is the path of dependencies down to the one that failed, `cause` that failure:
    `web: dependency failed to start: app -> db: container exited with code 1`.
    """

    def __init__(self, service: str, chain: tuple[str, ...], cause: str) -> None:
        self.service = service
        self.chain = chain
        self.cause = cause
        super().__init__(f"{service}: dependency failed to start: {' -> '.join(chain)}: {cause}")


@dataclass(frozen=True)
class Dependency:
    """One outgoing edge of the graph: `name` depends on nothing here, it *is* the dependency."""

    name: str
    condition: str = SERVICE_STARTED
    required: bool = True
    restart: bool = False


def dependencies(graph: GraphLike, service: str) -> tuple[Dependency, ...]:
    """The dependencies of `service` (its out-edges), sorted by name.

    Reads the edge attributes `condition` / `required` / `restart`, or the same fields of
    an object stored as the edge attribute `dependency` (composer.graph's edges).
    """
    deps = [_dependency(dep, data)
            for _, dep, data in as_digraph(graph).out_edges(service, data=True)]
    return tuple(sorted(deps, key=lambda d: d.name))


def _dependency(name: str, data: Mapping[str, object]) -> Dependency:
    obj = data.get("dependency")
    if obj is not None:
        keys = ("condition", "required", "restart")
        data = {k: getattr(obj, k) for k in keys if hasattr(obj, k)}
    return Dependency(
        name=name,
        condition=str(data.get("condition", SERVICE_STARTED)),
        required=bool(data.get("required", True)),
        restart=bool(data.get("restart", False)),
    )


class _Edge(Protocol):
    @property
    def service(self) -> str: ...


class _Known(Protocol):
    """A graph that knows networkx's order of some runs without networkx
    (composer.graph.ServiceGraph from its cache)."""

    def known_order(self, services: Collection[str] | None = None) -> list[str] | None: ...

    def dependencies(self, name: str) -> Iterable[_Edge]: ...

    def dependents(self, name: str) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class _Walk:
    """What a run reads of its graph: the order of its services (dependencies first), what
    each needs and what needs it."""

    order: list[str]
    needs: Callable[[str], tuple[Dependency, ...]]
    needed_by: Callable[[str], list[str]]


def _walk(graph: GraphLike, services: Collection[str] | None) -> _Walk:
    known = getattr(graph, "known_order", None)
    order = known(services) if callable(known) else None
    if order is not None:  # networkx's order, cached: no networkx to import
        g: _Known = graph  # type: ignore[assignment]
        return _Walk(
            order,
            lambda n: tuple(_dependency(d.service, {"dependency": d}) for d in g.dependencies(n)),
            lambda n: sorted(g.dependents(n)))
    digraph = as_digraph(graph)
    return _Walk(_targets(digraph, services), lambda n: dependencies(digraph, n),
                 lambda n: sorted(digraph.predecessors(n)))


def as_digraph(graph: GraphLike) -> nx.DiGraph:
    """The networkx DiGraph itself, or the one a wrapper keeps in `.graph` (ServiceGraph)."""
    import networkx as nx

    if isinstance(graph, nx.DiGraph):
        return graph
    inner = getattr(graph, "graph", None)
    if isinstance(inner, nx.DiGraph):
        return inner
    raise SchedulerError(f"not a dependency graph: {type(graph).__name__}")


@dataclass(frozen=True)
class UpResult:
    started: tuple[str, ...] = ()  # in the order their start() returned
    failed: tuple[str, ...] = ()  # start() raised
    skipped: tuple[str, ...] = ()  # not started: a dependency failed (UpstreamError)
    errors: Mapping[str, Exception] = field(default_factory=dict)  # failed + skipped
    warnings: tuple[str, ...] = ()  # optional dependencies that failed or were missing

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped


@dataclass(frozen=True)
class DownResult:
    stopped: tuple[str, ...] = ()  # in the order their stop() returned
    failed: tuple[str, ...] = ()
    errors: Mapping[str, Exception] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass(frozen=True)
class Outcome(Generic[T, R]):
    """The result of `fn(item)` in `run_parallel`: a value, or the exception it raised."""

    item: T
    value: R | None = None
    error: Exception | None = None


def _emit(events: EventHook | None, service: str, status: Status, message: str = "") -> None:
    if events is not None:
        events(service, status, message)


def _targets(graph: nx.DiGraph, services: Collection[str] | None) -> list[str]:
    import networkx as nx

    """The services of this run in a stable topological order (dependencies first)."""
    names = set(graph.nodes) if services is None else set(services)
    unknown = sorted(names - set(graph.nodes))
    if unknown:
        raise SchedulerError(f"no such service: {', '.join(unknown)}")
    sub = graph.subgraph(names)
    try:
        order = list(nx.lexicographical_topological_sort(sub.reverse(copy=False)))
    except nx.NetworkXUnfeasible:
        cycle = [u for u, _ in nx.find_cycle(sub)]
        path = " -> ".join([*cycle, cycle[0]])
        raise SchedulerError(f"dependency cycle: {path} (remove one depends_on)") from None
    return order


def _check_limit(parallelism: int) -> None:
    if parallelism < 1:
        raise SchedulerError(f"parallelism must be at least 1, got {parallelism}")


class _DependencyFailed(Exception):
    """Raised by a condition task when the dependency itself did not start."""

    def __init__(self, failure: Exception) -> None:
        super().__init__(str(failure))
        self.failure = failure


def _upstream(service: str, dep: str, exc: BaseException) -> UpstreamError:
    if isinstance(exc, _DependencyFailed) and isinstance(exc.failure, UpstreamError):
        return UpstreamError(service, (dep, *exc.failure.chain), exc.failure.cause)
    inner = exc.failure if isinstance(exc, _DependencyFailed) else exc
    return UpstreamError(service, (dep,), str(inner) or type(inner).__name__)


class _Up:
    """The state of one `run_up`: one task per service, one shared task per awaited condition."""

    def __init__(
        self,
        graph: GraphLike,
        start: StartFn,
        wait_condition: WaitConditionFn,
        parallelism: int,
        services: Collection[str] | None,
        events: EventHook | None,
    ) -> None:
        _check_limit(parallelism)
        self.walk = _walk(graph, services)
        self.start = start
        self.wait_condition = wait_condition
        self.events = events
        self.order = self.walk.order
        self.slots = asyncio.Semaphore(parallelism)
        self.done = {name: asyncio.Event() for name in self.order}
        self.failures: dict[str, Exception] = {}
        self.conditions: dict[tuple[str, str], asyncio.Task[None]] = {}
        self.started: list[str] = []
        self.failed: list[str] = []
        self.skipped: list[str] = []
        self.warnings: list[str] = []

    async def run(self) -> UpResult:
        try:
            async with asyncio.TaskGroup() as tg:
                for name in self.order:
                    tg.create_task(self._service(name), name=f"up:{name}")
        finally:
            # condition waits nobody needs any more (their dependents failed elsewhere, or we
            # were cancelled) must not outlive the run
            pending = list(self.conditions.values())
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        return UpResult(
            started=tuple(self.started),
            failed=tuple(self.failed),
            skipped=tuple(self.skipped),
            errors={name: self.failures[name] for name in self.order if name in self.failures},
            warnings=tuple(self.warnings),
        )

    async def _service(self, name: str) -> None:
        try:
            try:
                await self._wait_dependencies(name)
            except UpstreamError as exc:
                self.failures[name] = exc
                self.skipped.append(name)
                _emit(self.events, name, "error", str(exc))
                return
            async with self.slots:
                _emit(self.events, name, "starting")
                try:
                    await self.start(name)
                except Exception as exc:
                    self.failures[name] = exc
                    self.failed.append(name)
                    _emit(self.events, name, "error", str(exc) or type(exc).__name__)
                    return
            self.started.append(name)
            _emit(self.events, name, "started")
        finally:
            self.done[name].set()

    def _condition(self, dep: str, condition: str) -> asyncio.Task[None]:
        key = (dep, condition)
        task = self.conditions.get(key)
        if task is None:
            task = asyncio.create_task(self._await_condition(dep, condition), name=f"wait:{dep}")
            self.conditions[key] = task
        return task

    async def _await_condition(self, dep: str, condition: str) -> None:
        if dep in self.done:  # part of this run: it must have started first
            await self.done[dep].wait()
            failure = self.failures.get(dep)
            if failure is not None:
                raise _DependencyFailed(failure)
        try:
            await self.wait_condition(dep, condition)
        except Exception as exc:
            _emit(self.events, dep, "error", str(exc) or type(exc).__name__)
            raise
        if condition == SERVICE_HEALTHY:
            _emit(self.events, dep, "healthy")
        elif condition == SERVICE_COMPLETED_SUCCESSFULLY:
            _emit(self.events, dep, "exited", "exited with code 0")

    async def _wait_dependencies(self, name: str) -> None:
        pending: dict[asyncio.Task[None], Dependency] = {}
        for dep in self.walk.needs(name):
            if dep.name not in self.done and not dep.required:
                self.warnings.append(
                    f"{name}: optional dependency {dep.name} is not part of this run, skipped"
                )
                continue
            pending[self._condition(dep.name, dep.condition)] = dep
        if not pending:
            return
        _emit(self.events, name, "waiting", ", ".join(sorted(d.name for d in pending.values())))
        while pending:
            finished, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in sorted(finished, key=lambda t: pending[t].name):
                dep = pending.pop(task)
                exc = task.exception()
                if exc is None:
                    continue
                if not dep.required:
                    self.warnings.append(
                        f"{name}: optional dependency {dep.name} failed, starting anyway: "
                        f"{_upstream(name, dep.name, exc).cause}"
                    )
                    continue
                raise _upstream(name, dep.name, exc)


async def run_up(
    graph: GraphLike,
    start: StartFn,
    wait_condition: WaitConditionFn,
    *,
    parallelism: int = 8,
    services: Collection[str] | None = None,
    events: EventHook | None = None,
) -> UpResult:
    """Start the services of `graph` as soon as their dependencies meet their conditions.

    `services` limits the run to those nodes (default: all). A required dependency outside
    it is assumed to be managed elsewhere (already up): only its condition is awaited.
    `wait_condition` is called for every condition, service_started included (return at
    once if there is nothing to wait for). Failures are reported in the result, never
    raised; SchedulerError is raised up front for a cycle or an unknown service.
    """
    return await _Up(graph, start, wait_condition, parallelism, services, events).run()


async def run_down(
    graph: GraphLike,
    stop: StopFn,
    *,
    parallelism: int = 8,
    services: Collection[str] | None = None,
    events: EventHook | None = None,
) -> DownResult:
    """Stop the services of `graph` in reverse dependency order, in parallel when ready.

    A service is stopped once every dependent in the run has been stopped. Teardown is
    best-effort: a failed stop is recorded and its dependencies are still stopped.
    """
    _check_limit(parallelism)
    walk = _walk(graph, services)
    order = walk.order
    done = {name: asyncio.Event() for name in order}
    slots = asyncio.Semaphore(parallelism)
    stopped: list[str] = []
    failed: list[str] = []
    errors: dict[str, Exception] = {}

    async def one(name: str) -> None:
        try:
            for dependent in walk.needed_by(name):
                if dependent in done:
                    await done[dependent].wait()
            async with slots:
                _emit(events, name, "stopping")
                try:
                    await stop(name)
                except Exception as exc:
                    errors[name] = exc
                    failed.append(name)
                    _emit(events, name, "error", str(exc) or type(exc).__name__)
                    return
            stopped.append(name)
            _emit(events, name, "stopped")
        finally:
            done[name].set()

    async with asyncio.TaskGroup() as tg:
        for name in reversed(order):
            tg.create_task(one(name), name=f"down:{name}")
    return DownResult(
        stopped=tuple(stopped),
        failed=tuple(failed),
        errors={n: errors[n] for n in reversed(order) if n in errors},
    )


async def run_parallel(
    items: Iterable[T], fn: Callable[[T], Awaitable[R]], *, limit: int = 8
) -> list[Outcome[T, R]]:
    """Run `fn` on every item, at most `limit` at a time; outcomes in the items' order.

    An exception from one call is captured in its Outcome and does not stop the others;
    cancellation cancels them all.
    """
    _check_limit(limit)
    slots = asyncio.Semaphore(limit)
    listed = list(items)
    outcomes: list[Outcome[T, R] | None] = [None] * len(listed)

    async def one(index: int, item: T) -> None:
        async with slots:
            try:
                outcomes[index] = Outcome(item, value=await fn(item))
            except Exception as exc:
                outcomes[index] = Outcome(item, error=exc)

    async with asyncio.TaskGroup() as tg:
        for index, item in enumerate(listed):
            tg.create_task(one(index, item))
    return [o for o in outcomes if o is not None]

