"""Restart policies and health checks for running containers; the Engine drives it.

The Engine owns one `Supervisor(engine, bus)` and tells it what happens:

    check_spec(spec)                    at create: bad restart policy / healthcheck -> InvalidArgument
    supervisor.watch(info)              after every successful start (user start or restart)
    supervisor.user_stopped(cid)        before a user stop/kill: no restart, cancel a pending one
    decision = supervisor.on_exit(cid, exit_code)   when the container's process exited;
                                        if decision.restart the engine sets state "restarting"
                                        and restart_count; the supervisor calls
                                        engine.start_container(cid) after decision.delay
    supervisor.health(cid)              HealthState for inspect (status, streak, last results)
    supervisor.forget(cid)              on remove
    await supervisor.close()            on daemon shutdown (containers keep running)

Backoff is Docker's: 100 ms doubling per quick restart, capped, reset once a container ran
10 s. Health probes run through `engine.exec_run` under `asyncio.wait_for(timeout)` (the
engine must kill the exec'd process when the call is cancelled); status goes starting ->
healthy / unhealthy and each change is published as `health_status: <status>`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from runtime.api import ContainerInfo, Event, ExecResult, Health
from runtime.errors import EngineError, InvalidArgument, NotFound
from runtime.events import EventBus, container_attributes
from runtime.types import ContainerSpec, Healthcheck

log = logging.getLogger(__name__)

PolicyName = Literal["no", "always", "on-failure", "unless-stopped"]
HEALTH_LOG_SIZE = 5  # results kept, as Docker
HEALTH_OUTPUT_MAX = 4096  # bytes of probe output kept per result


class SupervisedEngine(Protocol):
    """The part of the Engine the supervisor calls."""

    async def start_container(self, ref: str) -> ContainerInfo: ...

    async def exec_run(
        self,
        ref: str,
        argv: list[str],
        user: str | None = None,
        env: dict[str, str] | None = None,
        workdir: str | None = None,
    ) -> ExecResult: ...


@dataclass(frozen=True)
class RestartPolicy:
    name: PolicyName = "no"
    max_retries: int = 0  # on-failure:N; 0 = no limit

    @classmethod
    def parse(cls, text: str) -> RestartPolicy:
        """`no`, `always`, `unless-stopped`, `on-failure`, `on-failure:N`."""
        name, _, count = (text or "no").partition(":")
        if name in ("no", "always", "unless-stopped") and not count:
            return cls(name)  # type: ignore[arg-type]
        if name == "on-failure":
            if not count:
                return cls("on-failure")
            if count.isdigit():
                return cls("on-failure", int(count))
        raise InvalidArgument(
            f"invalid restart policy {text!r}: use no, always, unless-stopped or on-failure[:max-retries]",
            subject=text,
        )

    def wants_restart(self, exit_code: int, restart_count: int, user_stopped: bool) -> bool:
        """Restart after an exit? Never after a user stop; on-failure only for non-zero codes."""
        if user_stopped or self.name == "no":
            return False
        if self.name == "on-failure":
            return exit_code != 0 and (self.max_retries == 0 or restart_count < self.max_retries)
        return True  # always, unless-stopped

    def start_on_daemon_start(self, user_stopped: bool) -> bool:
        """Start a stopped container when the daemon comes up (Docker: `always` does even after
        a user stop; `unless-stopped` not)."""
        return self.name == "always" or (self.name == "unless-stopped" and not user_stopped)


@dataclass(frozen=True)
class Backoff:
    initial: float = 0.1
    factor: float = 2.0
    cap: float = 10.0
    reset_after: float = 10.0  # a container that ran this long starts the sequence again

    def delay(self, attempt: int) -> float:
        return float(min(self.cap, self.initial * self.factor**attempt))


@dataclass(frozen=True)
class RestartDecision:
    restart: bool
    delay: float = 0.0
    restart_count: int = 0
    reason: str = ""


@dataclass(frozen=True)
class HealthResult:
    start: float  # wall clock
    end: float
    exit_code: int  # -1: timeout or the probe could not run
    output: str


@dataclass(frozen=True)
class HealthState:
    status: Health = "starting"
    failing_streak: int = 0
    log: tuple[HealthResult, ...] = ()


def health_argv(test: tuple[str, ...]) -> list[str] | None:
    """Compose/Docker `test` -> argv to exec, or None for no check (`NONE` or empty)."""
    if not test or test[0] == "NONE":
        return None
    kind, *rest = test
    if kind == "CMD" and rest:
        return list(rest)
    if kind == "CMD-SHELL" and len(rest) == 1:
        return ["/bin/sh", "-c", rest[0]]
    raise InvalidArgument(
        f'invalid healthcheck test {list(test)!r}: use ["CMD", args...], ["CMD-SHELL", "command"] or ["NONE"]'
    )


def check_spec(spec: ContainerSpec) -> None:
    """What the engine calls at create: reject a bad restart policy or healthcheck test early."""
    RestartPolicy.parse(spec.restart)
    if spec.healthcheck is not None:
        health_argv(spec.healthcheck.test)
        hc = spec.healthcheck
        for name in ("interval", "timeout", "start_interval"):
            if getattr(hc, name) <= 0:
                raise InvalidArgument(
                    f"invalid healthcheck {name} {getattr(hc, name)!r}: must be > 0"
                )
        if hc.retries < 0 or hc.start_period < 0:
            raise InvalidArgument("invalid healthcheck: retries and start_period must be >= 0")


@dataclass
class _Watched:
    id: str
    name: str
    policy: RestartPolicy
    healthcheck: Healthcheck | None
    started_at: float
    restart_count: int = 0
    attempt: int = 0  # quick restarts in a row (backoff exponent)
    user_stopped: bool = False
    restarting: bool = False  # a start we issued ourselves is in flight
    health: HealthState | None = None
    health_task: asyncio.Task[None] | None = None
    restart_task: asyncio.Task[None] | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    attributes: dict[str, str] = field(default_factory=dict)  # of its events: name, image, labels


class Supervisor:
    def __init__(
        self,
        engine: SupervisedEngine,
        bus: EventBus | None = None,
        *,
        backoff: Backoff = Backoff(),
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        on_health: Callable[[str, Health], None] | None = None,
    ) -> None:
        self._engine = engine
        self._bus = bus
        self._backoff = backoff
        self._clock = clock
        self._wall = wall
        self._on_health = on_health
        self._watched: dict[str, _Watched] = {}

    # ------------------------------------------------------------ what the engine calls

    def watch(self, info: ContainerInfo) -> None:
        """The container just started: run its health checks, note the time for the backoff.
        Never raises: a bad policy or test (which `check_spec` rejects at create) is logged."""
        try:
            policy = RestartPolicy.parse(info.spec.restart)
        except InvalidArgument as e:
            log.warning("container %s: %s; not restarting it", info.name or info.id, e)
            policy = RestartPolicy("no")
        hc = info.spec.healthcheck
        try:
            argv = health_argv(hc.test) if hc is not None else None
        except InvalidArgument as e:
            log.warning("container %s: %s; no health checks", info.name or info.id, e)
            hc = argv = None
        st = self._watched.get(info.id)
        if st is None:
            st = self._watched[info.id] = _Watched(info.id, info.name, policy, hc, self._clock())
        else:
            self._cancel(st.health_task)
            ours = st.restarting and st.restart_task is asyncio.current_task()
            if not ours:  # a user start: a fresh count (as Docker), no restart pending any more
                st.restart_count = 0
                st.attempt = 0
                self._cancel(st.restart_task)
                st.restart_task = None
            st.policy, st.healthcheck, st.started_at = policy, hc, self._clock()
        st.attributes = container_attributes(info.name, info.spec.image, info.labels)
        st.user_stopped = False
        st.restarting = False
        if hc is not None and argv is not None:
            st.health = HealthState("starting")
            st.health_task = self._spawn(st, self._health_loop(st, hc, argv))
        else:
            st.health = None

    def user_stopped(self, container_id: str) -> bool:
        """The user stops/kills it: don't restart. True if a pending restart was cancelled."""
        st = self._watched.get(container_id)
        if st is None:
            return False
        st.user_stopped = True
        pending = st.restart_task is not None and not st.restart_task.done()
        self._cancel(st.restart_task)
        st.restart_task = None
        st.restarting = False
        return pending

    def on_exit(self, container_id: str, exit_code: int) -> RestartDecision:
        """The container's process exited: decide (and schedule) a restart."""
        st = self._watched.get(container_id)
        if st is None:
            return RestartDecision(False, reason="not supervised")
        self._cancel(st.health_task)
        st.health_task = None
        if self._clock() - st.started_at >= self._backoff.reset_after:
            st.attempt = 0
        if not st.policy.wants_restart(exit_code, st.restart_count, st.user_stopped):
            why = "stopped by the user" if st.user_stopped else f"policy {st.policy.name}"
            return RestartDecision(False, restart_count=st.restart_count, reason=why)
        delay = self._backoff.delay(st.attempt)
        st.attempt += 1
        st.restart_count += 1
        st.restarting = True
        self._cancel(st.restart_task)
        st.restart_task = self._spawn(st, self._restart_later(st, delay))
        return RestartDecision(True, delay, st.restart_count, f"policy {st.policy.name}")

    def health(self, container_id: str) -> HealthState | None:
        st = self._watched.get(container_id)
        return st.health if st is not None else None

    def restart_count(self, container_id: str) -> int:
        st = self._watched.get(container_id)
        return st.restart_count if st is not None else 0

    def forget(self, container_id: str) -> None:
        st = self._watched.pop(container_id, None)
        if st is not None:
            for task in list(st.tasks):
                self._cancel(task)

    async def close(self) -> None:
        pending = {t for st in self._watched.values() for t in st.tasks}
        while pending:  # a task may swallow one cancel (e.g. in a library's wait): cancel again
            for task in pending:
                task.cancel()
            done, pending = await asyncio.wait(pending, timeout=1.0)
            for task in done:
                if not task.cancelled():
                    task.exception()  # retrieved: how a watcher ended at shutdown is no news
        self._watched.clear()

    # ------------------------------------------------------------ internals

    def _spawn(self, st: _Watched, coro: object) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        st.tasks.add(task)
        task.add_done_callback(st.tasks.discard)
        return task

    @staticmethod
    def _cancel(task: asyncio.Task[None] | None) -> None:
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()

    async def _restart_later(self, st: _Watched, delay: float) -> None:
        await asyncio.sleep(delay)
        if self._watched.get(st.id) is not st or st.user_stopped:
            return
        try:
            await self._engine.start_container(st.id)  # the engine calls watch() again
            st.restart_task = None
        except NotFound:
            self.forget(st.id)
        except EngineError as e:
            log.warning("restarting container %s failed: %s", st.name or st.id, e)
            st.restarting = False
            st.restart_task = None
            self.on_exit(st.id, getattr(e, "exit_code", 125))  # counts as another failed run

    async def _health_loop(self, st: _Watched, hc: Healthcheck, argv: list[str]) -> None:
        started = self._clock()
        ever_healthy = False
        retries = max(hc.retries, 1)
        while True:
            in_start_period = self._clock() - started < hc.start_period
            await asyncio.sleep(
                hc.start_interval if in_start_period and not ever_healthy else hc.interval
            )
            in_start_period = self._clock() - started < hc.start_period
            result = await self._probe(st.id, argv, hc.timeout)
            cur = st.health or HealthState()
            status: Health = cur.status
            streak = cur.failing_streak
            if result.exit_code == 0:
                status, streak, ever_healthy = "healthy", 0, True
            elif not in_start_period or ever_healthy:  # start-period failures don't count
                streak += 1
                if streak >= retries:
                    status = "unhealthy"
            st.health = replace(
                cur, status=status, failing_streak=streak, log=(*cur.log, result)[-HEALTH_LOG_SIZE:]
            )
            if status != cur.status:
                self._health_changed(st, status)

    async def _probe(self, cid: str, argv: list[str], timeout: float) -> HealthResult:
        start = self._wall()
        try:
            # not wait_for: on 3.11 it returns the result of a probe that ended just as the
            # loop was cancelled, swallowing the cancellation (close() then waited forever)
            async with asyncio.timeout(timeout):
                res = await self._engine.exec_run(cid, argv)
            code, out = res.exit_code, res.stdout + res.stderr
        except TimeoutError:
            code, out = -1, f"health check exceeded timeout ({timeout:g}s)"
        except EngineError as e:
            code, out = -1, f"health check could not run: {e}"
        return HealthResult(start, self._wall(), code, out[:HEALTH_OUTPUT_MAX])

    def _health_changed(self, st: _Watched, status: Health) -> None:
        log.info("container %s is %s", st.name or st.id, status)
        if self._on_health is not None:
            self._on_health(st.id, status)
        if self._bus is not None:
            attrs = {**st.attributes, "health_status": status}
            self._bus.publish(
                Event(self._wall(), "container", f"health_status: {status}", st.id, st.name, attrs)
            )
