"""What the verbs do: a Stack acted out on an engine (the Engine API, in-process or a client).

Plan, then act: `up` computes the convergence plan (composer.project) from labels and config
hashes, then the scheduler (composer.scheduler) runs each service's actions as soon as its
dependencies meet their conditions. `down` stops in reverse dependency order. Nothing here
prints: progress goes to a `Progress` callback the CLI provides.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from composer import labels as L
from composer.convert import (
    build_dependencies,
    build_request,
    config_hash,
    container_spec,
    hook_container_spec,
    network_spec,
    volume_spec,
)
from composer.errors import ComposerError, check_services
from composer.graph import ServiceGraph, build_graph
from composer.hooks import (
    HookOutput,
    exec_hooks,
    hook_labels,
    no_output,
    remove_hook_containers,
    run_pre_start,
)
from composer.project import (
    ORPHAN_WARNING,
    Action,
    DesiredService,
    Plan,
    PlanError,
    plan_down,
    plan_up,
)
from composer.scheduler import DownResult, Outcome, UpResult, run_down, run_parallel, run_up
from composer.spec import Stack
from composer.spec.service import MAX_REPLICAS_ENV, max_replicas
from runtime.api import ContainerInfo, EngineAPI
from runtime.errors import Conflict, InvalidArgument, NotFound
from runtime.types import ContainerSpec, Mount

ANONYMOUS_VOLUME = "com.docker.volume.anonymous"  # the engine's label on anonymous volumes
PULL_POLICIES = ("always", "missing", "never", "build")

Progress = Callable[[str, str], None]  # (object, status), e.g. ("Container lnmp-db-1", "Started")
# Called with each container `up` is about to start (or leaves running) -- before it starts,
# so an attached `up` is attached before the first byte (composer.cli.attached).
BeforeStart = Callable[[ContainerInfo], Awaitable[None]]


class UpFailed(ComposerError):
    """A service could not be started; the message names the chain."""


class WaitTimeout(ComposerError):
    """`up --wait-timeout N` ran out before every service was running/healthy."""


@dataclass
class UpOptions:
    services: Sequence[str] = ()
    force_recreate: bool = False
    no_recreate: bool = False
    remove_orphans: bool = False
    scale: dict[str, int] = field(default_factory=dict)
    build: bool = False
    no_build: bool = False
    no_start: bool = False
    wait: bool = False
    timeout: float | None = None
    health_timeout: float = 600.0  # bound on one dependency condition (service_healthy, ...)
    no_deps: bool = False  # only the named services, their dependencies not started nor awaited
    always_recreate_deps: bool = False  # --force-recreate for the dependencies too
    renew_anon_volumes: bool = False  # -V: recreate, with fresh anonymous volumes
    pull: str | None = None  # always|missing|never|build over each service's pull_policy
    quiet_pull: bool = False
    wait_timeout: float | None = None  # --wait-timeout: the whole up, dependencies included
    ignore_orphans: bool = False  # COMPOSE_IGNORE_ORPHANS: no orphan warning


FAST_POLL, FAST_POLL_FOR = 0.01, 1.0  # s: how often a wait for a condition looks at first


def _noop(obj: str, status: str) -> None:
    pass


class Project:
    def __init__(self, stack: Stack, engine: EngineAPI, progress: Progress = _noop,
                 build_output: Callable[[str, str], None] | None = None) -> None:
        self.stack = stack
        self.engine = engine
        self.progress = progress
        self.build_output = build_output or (lambda service, line: None)
        # where hooks' output goes: (source, line); the attached `up` prints it, as Compose
        self.hook_output: HookOutput = no_output
        self.before_start: BeforeStart | None = None
        self._graph: ServiceGraph | None = None
        self._image_ids: dict[str, str | None] = {}
        self.by_labels = False  # the stack was rebuilt from container labels (-p NAME, no file)
        self.parallelism = 8  # containers started/stopped at a time (--parallel)
        # composer.stackcache's folder for networkx's answers about this graph (the CLI's)
        self.graph_cache: Path | None = None

    @property
    def name(self) -> str:
        return self.stack.name

    @property
    def graph(self) -> ServiceGraph:
        if self._graph is None:
            self._graph = build_graph(self.stack, cache=self.graph_cache)
        return self._graph

    # -- queries --------------------------------------------------------------------------
    async def containers(
        self, services: Collection[str] = (), *, all: bool = True, oneoff: bool | None = False,
        hooks: bool = False,
    ) -> list[ContainerInfo]:
        """The project's containers of `services` (all when empty), by service and number;
        the containers of pre_start hooks only with `hooks=True` (and then only them)."""
        found = await self.engine.list_containers(all=all, labels={L.PROJECT: self.name})
        return L.project_containers(found, services, oneoff=oneoff, hooks=hooks)

    def image_ref(self, service: str) -> str:
        svc = self.stack.services[service]
        return svc.image or f"{self.name}-{service}"

    # -- up -------------------------------------------------------------------------------
    def check_services(self, names: Iterable[str]) -> None:
        """Every name is a service of the stack, else one line naming it (as Compose's
        `no such service: x`)."""
        check_services(names, self.stack.all_services())

    def selected(self, services: Sequence[str], *, no_deps: bool = False) -> list[str]:
        """The services `up SERVICES` acts on, dependencies first: the named ones and what they
        need (only the named ones with --no-deps); every service when none is named."""
        self.check_services(services)
        if not services:
            chosen = set(self.graph.services)
        elif no_deps:
            chosen = set(services)
        else:
            chosen = self.graph.select(services)
        return [s for gen in self.graph.generations() for s in gen if s in chosen]

    async def up(self, opts: UpOptions) -> UpResult:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + opts.wait_timeout if opts.wait_timeout else None
        if opts.pull is not None and opts.pull not in PULL_POLICIES:
            raise ComposerError(f"invalid --pull {opts.pull!r} (use {', '.join(PULL_POLICIES)})")
        order = self.selected(opts.services, no_deps=opts.no_deps)
        selected = set(order)
        for name, count in opts.scale.items():
            self.check_services([name])
            if count < 0:
                raise PlanError(f"--scale {name}={count}: use a number of 0 or more")
        await self.ensure_images(selected, build=opts.build, no_build=opts.no_build,
                                 pull=opts.pull, quiet_pull=opts.quiet_pull)
        await self.ensure_hook_images(selected, pull=opts.pull, quiet=opts.quiet_pull)
        await self.ensure_networks(selected)
        await self.ensure_volumes()
        for name in order:
            self._image_ids[name] = await self.image_id(name)
        existing = await self.containers()
        desired = {name: self._desired(name, opts.scale) for name in order}
        plan = plan_up(
            desired, existing, no_recreate=opts.no_recreate,
            force_recreate=opts.force_recreate or opts.renew_anon_volumes,
            always_recreate_deps=opts.always_recreate_deps,
            targets=list(opts.services) or None, remove_orphans=opts.remove_orphans,
            project=self.name, scale_overrides={k: v for k, v in opts.scale.items() if k in selected},
            known=self.stack.all_services().keys(),  # not selected / profile off: not orphans
        )
        for warning in plan.warnings:
            if not (opts.ignore_orphans and warning.startswith(ORPHAN_WARNING)):
                self.progress("Warning", warning)
        await self._remove_all([a.container for a in plan.orphan_actions], opts.timeout)
        # --no-deps: the named services alone, nothing of their dependencies awaited
        graph = self.graph.graph.subgraph(selected).copy() if opts.no_deps else self.graph
        # as Compose's `up` (create, then start): first every service's containers are created
        # or recreated, in dependency order and waiting for no condition (a dependency that is
        # only created will never be healthy or complete); a failure there ends the `up`
        # before anything starts
        deferred: dict[str, list[ContainerInfo]] = {}

        async def create(name: str) -> None:
            deferred[name] = await self._create_service(plan, name, opts)

        warned: list[str] = []
        result = await run_up(graph, start=create, wait_condition=_no_wait,
                              services=selected, parallelism=self.parallelism)
        self._report(result, warned)
        if opts.no_start:
            return result
        # then they start in dependency order, each once its dependencies meet their condition
        result = await run_up(
            graph,
            start=lambda name: self._start_service(name, deferred.get(name, [])),
            wait_condition=lambda dep, cond: self._wait_condition(dep, cond, opts, deadline),
            services=selected, parallelism=self.parallelism,
        )
        self._report(result, warned)
        if opts.wait:
            await self.wait_ready(order, opts, deadline)
        return result

    async def wait_ready(self, services: Sequence[str], opts: UpOptions,
                         deadline: float | None) -> None:
        """`up --wait`: every service running (healthy when it has a health check); a one-shot
        that another service waits on with service_completed_successfully must have exited
        0 instead (as Compose). Fails on the first container that exited or is unhealthy."""
        completed = {d.service for s in services for d in self.stack.services[s].depends_on
                     if d.condition == "service_completed_successfully"}
        waits = [
            self._wait_condition(
                name,
                "service_completed_successfully" if name in completed else "running_or_healthy",
                opts, deadline, waiting=True,
            )
            for name in services if self._replicas(name, opts.scale) > 0
        ]
        tasks = [asyncio.ensure_future(w) for w in waits]
        try:
            await asyncio.gather(*tasks)
        except WaitTimeout:
            raise WaitTimeout(
                f"application not healthy after {_seconds(opts.wait_timeout)}: "
                f"{await self._not_ready(services, completed)}") from None
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _not_ready(self, services: Sequence[str], completed: Collection[str]) -> str:
        out = []
        for c in await self.containers(services):
            name = c.labels.get(L.SERVICE, "")
            if name in completed:
                if c.state != "exited":
                    out.append(f"{c.name} has not exited yet")
            elif c.health and c.health != "healthy":
                out.append(f"{c.name} is {c.health}" + (" (health check not passed yet)"
                                                       if c.health == "starting" else ""))
            elif c.state != "running":
                out.append(f"{c.name} is {c.state}")
        return ", ".join(out) or "still starting"

    def _replicas(self, name: str, scale: dict[str, int]) -> int:
        svc = self.stack.services[name]
        replicas = scale.get(name)
        if replicas is not None:
            limit = max_replicas(self.stack.environment)
            if replicas > limit:
                raise ComposerError(f"--scale {name}={replicas}: more than the limit of {limit} "
                                    f"replicas per service (set {MAX_REPLICAS_ENV} to raise it)")
            if replicas > 1 and svc.container_name:
                raise ComposerError(f"--scale {name}={replicas}: service {name} sets container_name "
                                    f"{svc.container_name!r}, which must be unique (remove it to scale)")
        if replicas is None:
            replicas = svc.scale if svc.scale is not None else svc.deploy.replicas
        return 1 if replicas is None else replicas

    def _desired(self, name: str, scale: dict[str, int]) -> DesiredService:
        svc = self.stack.services[name]
        shared = {src.split(":")[0] for src in svc.volumes_from if not src.startswith("container:")}
        # a container in another's namespace is made again with it (compose-go adds these as
        # depends_on with restart: true)
        for mode in (svc.network_mode, svc.ipc, svc.pid):
            if mode and mode.startswith("service:"):
                shared.add(mode.split(":", 1)[1])
        return DesiredService(
            name, config_hash(svc), self._replicas(name, scale),
            frozenset(d.service for d in svc.depends_on if d.restart),
            self._image_ids.get(name), frozenset(shared & set(self.stack.services)),
        )

    async def image_id(self, service: str) -> str | None:
        """The id of the image the service's containers are created from (None: not here)."""
        try:
            return (await self.engine.inspect_image(self.image_ref(service))).id
        except NotFound:
            return None

    def _report(self, result: UpResult, warned: list[str]) -> None:
        """Print a run's warnings not printed yet (`warned`); raise its first failure."""
        for warning in result.warnings:
            if warning not in warned:
                warned.append(warning)
                self.progress("Warning", warning)
        if not result.ok:
            raise UpFailed(f"{next(iter(result.errors.values()))}")

    async def _create_service(self, plan: Plan, name: str, opts: UpOptions) -> list[ContainerInfo]:
        """The create phase of one service: its actions carried out but for the starts; returns
        the containers to start in the start phase (none with --no-start)."""
        service_plan = plan.service(name)
        if service_plan.recreates or service_plan.restarts:
            # as Compose: the dependents with `restart: true` stop before their dependency is
            # replaced, and start again at their own turn (their `restart` action)
            for action in plan.restart_dependents(name):
                await self._stop_for_restart(action)
        to_start = []
        for action in service_plan.actions:
            c = await self._act(action, opts)
            if c is not None:
                to_start.append(c)
        return to_start

    async def _start_service(self, name: str, to_start: list[ContainerInfo]) -> None:
        """Start `to_start` (containers of `name` that are not running), running the
        service's pre_start hooks first when none of its containers runs (as Compose: the
        first `up`, a recreate, `start` after `stop`; not when scaling up a running service)."""
        if not to_start:
            return
        if self.stack.services[name].pre_start:
            ids = {c.id for c in to_start}
            running = [c for c in await self.containers([name], all=False) if c.id not in ids]
            if not running:
                await self.pre_start(name, min(to_start, key=_number))
        for c in to_start:
            await self._start(c)

    async def pre_start(self, name: str, target: ContainerInfo) -> None:
        """The service's pre_start hooks, in order, each in its own container sharing
        `target`'s volumes and networks; a failure raises and `target` stays created."""
        svc = self.stack.services[name]
        await remove_hook_containers(self.engine, self.name, name)
        specs = [
            hook_container_spec(self.stack, name, target.spec, target.mounts, hook, i,
                                labels=hook_labels(self.name, name))
            for i, hook in enumerate(svc.pre_start)
        ]
        self.progress(f"Container {target.name}", "Pre-start hooks")
        await run_pre_start(self.engine, name, specs, self.hook_output)

    async def _stop_for_restart(self, action: Action) -> None:
        if action.container is None:
            return
        c = await self.engine.inspect_container(action.container.id)
        if c.state in ("running", "paused", "restarting"):
            self.progress(f"Container {c.name}", "Stopping")
            await self.engine.stop_container(c.id)
            self.progress(f"Container {c.name}", "Stopped")

    async def _act(self, action: Action, opts: UpOptions) -> ContainerInfo | None:
        """Carry out one action but for its start: the container it would start is returned
        (created, recreated or stopped; None with --no-start), for the start phase."""
        kind = action.kind
        started = None if opts.no_start else action.container
        if kind == "remove" and action.container is not None:
            await self._remove(action.container, opts.timeout)
            return None
        if kind == "create":
            info = await self._create(action.service, action.number)
            started = None if opts.no_start else info
        elif kind == "recreate" and action.container is not None:
            info = await self._recreate(action.container, action.service, action.number, opts)
            started = None if opts.no_start else info
        elif kind == "restart" and action.container is not None:
            await self._stop_for_restart(action)
        elif kind == "noop" and action.container is not None:
            if self.before_start is not None:
                await self.before_start(action.container)
            self.progress(f"Container {action.container.name}", "Running")
            return None
        elif kind != "start":
            return None
        return started

    async def _start(self, c: ContainerInfo) -> ContainerInfo:
        """Start a container and run its service's post_start hooks in it (as Compose: a
        failing hook fails the start, the container keeps running)."""
        service = c.labels.get(L.SERVICE, "")
        if self.before_start is not None:  # the attached `up` attaches before each start
            await self.before_start(c)
        self.progress(f"Container {c.name}", "Starting")
        try:
            info = await self.engine.start_container(c.id)
        except Exception as e:
            raise ComposerError(f"service {service}: {e}") from e
        svc = self.stack.services.get(service)
        if svc is not None and svc.post_start:
            await exec_hooks(self.engine, info, service, "post_start", svc.post_start,
                             self.hook_output)
        self.progress(f"Container {c.name}", "Started")
        return info

    async def _stop(self, c: ContainerInfo, timeout: float | None = None, *,
                    quiet: bool = False) -> None:
        """Stop a running container, its service's pre_stop hooks first (as Compose: a failing
        hook fails the stop and the container keeps running)."""
        label = f"Container {c.name}"
        if not quiet:
            self.progress(label, "Stopping")
        service = c.labels.get(L.SERVICE, "")
        svc = self.stack.services.get(service)
        if svc is not None and svc.pre_stop and c.state == "running":
            await exec_hooks(self.engine, c, service, "pre_stop", svc.pre_stop, self.hook_output)
        await self.engine.stop_container(c.id, timeout)
        if not quiet:
            self.progress(label, "Stopped")

    def container_labels(self, service: str, number: int, *, oneoff: bool = False) -> dict[str, str]:
        svc = self.stack.services[service]
        return L.container_labels(
            self.name, service, number, config_hash(svc), oneoff=oneoff,
            working_dir=self.stack.project_directory, config_files=self.stack.files,
            depends_on=[L.DependsOnLabel(d.service, d.condition, d.restart) for d in svc.depends_on],
            image_id=self._image_ids.get(service) or "",
        )

    async def _recreate(self, old: ContainerInfo, service: str, number: int,
                        opts: UpOptions) -> ContainerInfo:
        """Replace a container, keeping its number and (unless -V) its anonymous volumes, as
        Compose does; anonymous volumes the new one does not take over are removed."""
        label = f"Container {old.name}"
        self.progress(label, "Recreate")
        anonymous = await self._anonymous_volumes(old)
        spec = container_spec(self.stack, service, number, labels=self.container_labels(service, number))
        inherited: set[str] = set()
        if not opts.renew_anon_volumes and anonymous:
            spec, inherited = await self._inherit_volumes(spec, anonymous)
        await self._remove(old, opts.timeout, quiet=True, volumes=opts.renew_anon_volumes)
        for m in anonymous:
            if m.source not in inherited and not opts.renew_anon_volumes:
                try:
                    await self.engine.remove_volume(m.source, force=True)
                except (NotFound, Conflict):
                    pass
        info = await self._engine_create(service, spec)
        self.progress(label, "Recreated")
        return info

    async def _anonymous_volumes(self, c: ContainerInfo) -> list[Mount]:
        names = {m.source for m in c.mounts if m.type == "volume" and m.source}
        if not names:
            return []
        anon = {v.name for v in await self.engine.list_volumes()
                if v.name in names and ANONYMOUS_VOLUME in v.spec.labels}
        return [m for m in c.mounts if m.type == "volume" and m.source in anon]

    async def _inherit_volumes(self, spec: ContainerSpec, old: list[Mount]) -> tuple[ContainerSpec, set[str]]:
        """The new spec with the old container's anonymous volumes at the targets that are
        still anonymous volumes: an anonymous entry of the service, or a VOLUME of its image."""
        try:
            image_volumes = set((await self.engine.inspect_image(spec.image)).volumes)
        except NotFound:
            image_volumes = set()
        by_target = {m.target.rstrip("/") or "/": m for m in old}
        taken: set[str] = set()
        mounts = []
        for m in spec.mounts:
            key = m.target.rstrip("/") or "/"
            if m.type == "volume" and not m.source and key in by_target:
                mounts.append(replace(m, source=by_target[key].source))
                taken.add(key)
            else:
                mounts.append(m)
        targets = {m.target.rstrip("/") or "/" for m in spec.mounts}
        for v in sorted(image_volumes):
            key = v.rstrip("/") or "/"
            if key in by_target and key not in targets:
                mounts.append(replace(by_target[key], target=v))
                taken.add(key)
        return replace(spec, mounts=tuple(mounts)), {by_target[k].source for k in taken}

    async def _create(self, service: str, number: int) -> ContainerInfo:
        spec = container_spec(self.stack, service, number, labels=self.container_labels(service, number))
        self.progress(f"Container {spec.name}", "Creating")
        info = await self._engine_create(service, spec)
        self.progress(f"Container {spec.name}", "Created")
        return info

    async def _engine_create(self, service: str, spec: ContainerSpec) -> ContainerInfo:
        """The engine's create. A request it refuses (a key this host cannot honour, such as
        storage_opt.size without project quotas) names the service, as a failed start does."""
        try:
            return await self.engine.create_container(spec)
        except InvalidArgument as e:
            raise ComposerError(f"service {service}: {e}") from e

    async def _wait_condition(self, service: str, condition: str, opts: UpOptions,
                              deadline: float | None = None, *, waiting: bool = False) -> None:
        """Until `service`'s containers meet `condition` (service_healthy,
        service_completed_successfully, or running_or_healthy for --wait); raises on a
        container that exited (non-zero for completed) or is unhealthy, or at the deadline."""
        if condition == "service_started":
            return
        loop = asyncio.get_running_loop()
        started = loop.time()
        own = started + opts.health_timeout
        end = min(own, deadline) if deadline is not None else own
        announced = False
        while True:
            cs = await self.containers([service])
            if not cs:
                raise ComposerError(f"service {service} has no container")
            states = [await self.engine.inspect_container(c.id) for c in cs]
            if (waiting or condition != "running_or_healthy") and not announced:
                for s in states:
                    self.progress(f"Container {s.name}", "Waiting")
                announced = True
            if condition == "service_completed_successfully":
                if all(s.state == "exited" for s in states):
                    bad = [s for s in states if s.exit_code != 0]
                    if bad:
                        raise ComposerError(
                            f"service {service} didn't complete successfully: exit {bad[0].exit_code}")
                    for s in states:
                        self.progress(f"Container {s.name}", "Exited")
                    return
            else:  # service_healthy, or running_or_healthy (--wait: healthy, else running)
                for s in states:
                    if s.state in ("exited", "dead"):
                        raise ComposerError(
                            f"container {s.name} exited ({s.exit_code})")
                    if s.health == "unhealthy":
                        raise ComposerError(f"container {s.name} is unhealthy")
                has_check = any(s.health for s in states)
                if condition == "service_healthy" and not has_check:
                    raise ComposerError(
                        f"service {service} has no healthcheck: add one or depend on it with "
                        "condition service_started")
                if all(s.health == "healthy" or (not s.health and s.state == "running") for s in states):
                    for s in states:
                        self.progress(f"Container {s.name}", "Healthy")
                    return
            if loop.time() > end:
                if deadline is not None and end == deadline:
                    raise WaitTimeout(
                        f"service {service}: not {condition.replace('service_', '')} after "
                        f"{_seconds(opts.wait_timeout)} (--wait-timeout)")
                raise ComposerError(
                    f"service {service}: timed out after {_seconds(opts.health_timeout)} "
                    f"waiting for {condition}")
            # a check of `interval: 100ms` passes ~0.1 s after the start: look again soon
            # for the first second (two small requests a time), then every 50 ms
            await asyncio.sleep(FAST_POLL if loop.time() - started < FAST_POLL_FOR else 0.05)

    # -- resources ------------------------------------------------------------------------
    def networks_used(self, services: Collection[str]) -> list[str]:
        keys: dict[str, None] = {}
        for name in services:
            svc = self.stack.services[name]
            if svc.network_mode:
                continue
            for n in svc.networks or ():
                keys[n.name] = None
            if not svc.networks:
                keys["default"] = None
        return list(keys)

    async def ensure_networks(self, services: Collection[str]) -> None:
        """Create the networks the services use; `Network x  Created` for each one that was
        not there (as Compose: nothing for one that exists)."""
        keys = self.networks_used(services)
        if not keys:
            return
        have = {n.name for n in await self.engine.list_networks()}
        for key in keys:
            spec = network_spec(self.stack, key)
            new = not spec.external and spec.name not in have
            if new:
                self.progress(f"Network {spec.name}", "Creating")
            try:
                info = await self.engine.create_network(spec)
            except NotFound:
                raise ComposerError(
                    f"network {spec.name} declared as external, but could not be found: "
                    f"create it first") from None
            if new:
                self.progress(f"Network {spec.name}", "Created")
            for line in info.warnings:  # e.g. another firewall's forward drop we may not open
                self.progress("Warning", f"network {spec.name}: {line}")

    async def ensure_volumes(self) -> None:
        """Create the stack's named volumes; `Volume "x"  Created` for each new one."""
        if not self.stack.volumes:
            return
        have = {v.name for v in await self.engine.list_volumes()}
        for key in self.stack.volumes:
            spec = volume_spec(self.stack, key)
            new = not spec.external and spec.name not in have
            if new:
                self.progress(f'Volume "{spec.name}"', "Creating")
            try:
                await self.engine.create_volume(spec)
            except NotFound:
                raise ComposerError(
                    f"external volume {spec.name!r} not found: create it first") from None
            if new:
                self.progress(f'Volume "{spec.name}"', "Created")

    async def ensure_images(self, services: Collection[str], *, build: bool = False,
                            no_build: bool = False, pull: str | None = None,
                            quiet_pull: bool = False) -> None:
        """Pull or build what each service needs, as Compose decides it: `--pull` (else the
        service's pull_policy, default missing) says when to pull an `image:`; `--build` makes
        the policy `build` for services with `build:`. A service with `build:` whose image
        is missing is built (Compose would try a pull first), also when a pull failed."""
        for name in sorted(services):
            svc = self.stack.services[name]
            ref = self.image_ref(name)
            policy = pull or svc.pull_policy or "missing"
            if build and svc.build is not None:
                policy = "build"
            have = await self._image_exists(ref)
            buildable = svc.build is not None and not no_build
            if buildable and (policy == "build" or not have) and policy != "always":
                await self.build([name])
                continue
            if svc.image and (policy == "always" or (not have and policy != "never")
                              and policy != "build"):
                try:
                    await self.pull([name], quiet=quiet_pull)
                    continue
                except ComposerError:
                    if not buildable:
                        raise
                await self.build([name])
                continue
            if not have:
                raise ComposerError(
                    f"service {name}: no image {ref} here and pull_policy is {policy} "
                    f"(pull it with `composer pull {name}`, build it, or load it with "
                    "`composer image load FILE`)")
        for name in sorted(services):  # image mounts: pulled when missing, as Compose
            volumes = self.stack.services[name].volumes
            for ref in dict.fromkeys(m.source for m in volumes if m.type == "image" and m.source):
                if not await self._image_exists(ref):
                    await self._pull_ref(name, ref)

    async def _pull_ref(self, service: str, ref: str) -> None:
        self.progress(f"Image {ref}", "Pulling")
        async for ev in self.engine.pull_image(ref):
            if ev.error:
                raise ComposerError(f"service {service}: image mount {ref}: {ev.error} (load it with "
                                    "`composer image load FILE`)")
        self.progress(f"Image {ref}", "Pulled")

    async def ensure_hook_images(self, services: Collection[str], *, pull: str | None = None,
                                 quiet: bool = False) -> None:
        """The images pre_start hooks name (`image:`), pulled when missing (or always with
        `--pull always`), as Compose pulls them with the services' images."""
        refs = sorted({h.image for n in services for h in self.stack.services[n].pre_start
                       if h.image and h.image != self.image_ref(n)})
        for ref in refs:
            if pull == "never" or (pull != "always" and await self._image_exists(ref)):
                continue
            if not quiet:
                self.progress(f"Image {ref}", "Pulling")
            async for ev in self.engine.pull_image(ref):
                if ev.error:
                    raise ComposerError(f"pre_start hook image {ref}: {ev.error} (load it with "
                                        "`composer image load FILE`)")
            if not quiet:
                self.progress(f"Image {ref}", "Pulled")

    async def _image_exists(self, ref: str) -> bool:
        try:
            await self.engine.inspect_image(ref)
            return True
        except NotFound:
            return False

    async def pull(self, services: Sequence[str] = (), *, missing_only: bool = False,
                   quiet: bool = False) -> None:
        self.check_services(services)
        names = [n for n in (services or sorted(self.stack.services)) if self.stack.services[n].image]

        async def one(name: str) -> None:
            ref = self.image_ref(name)
            if missing_only and await self._image_exists(ref):
                return
            if not quiet:
                self.progress(f"Image {ref}", "Pulling")
            async for ev in self.engine.pull_image(ref):
                if ev.error:
                    raise ComposerError(
                        f"service {name}: {ev.error} (or build it with `build:`, or load it "
                        "with `composer image load FILE`)")
                if not quiet and ev.layer and ev.status in ("pull complete", "already exists"):
                    self.progress(f"  {ev.layer}", ev.status.capitalize())
            if not quiet:
                self.progress(f"Image {ref}", "Pulled")

        # every image at once, as Compose pulls; the first failure (in service order) is raised
        _raise_first(await run_parallel(names, one))

    async def build(self, services: Sequence[str] = (), *, no_cache: bool = False,
                    build_args: Mapping[str, str | None] | None = None, pull: bool = False,
                    quiet: bool = False) -> None:
        """Build the services' images; `build_args` (--build-arg) and `pull` (--pull) over
        their `build:` (composer.buildplan); `quiet`: no output."""
        from composer.buildplan import with_overrides
        from composer.sshkeys import key_agents

        self.check_services(services)
        names = [n for n in (services or sorted(self.stack.services)) if self.stack.services[n].build]
        order: list[str] = []  # a service whose image another's build uses is built first

        def visit(name: str, path: tuple[str, ...]) -> None:
            if name in order or self.stack.services.get(name) is None or not self.stack.services[name].build:
                return
            if name in path:
                raise ComposerError(f"build dependency cycle: {' -> '.join((*path, name))}")
            for dep in build_dependencies(self.stack, name):
                visit(dep, (*path, name))
            order.append(name)

        for name in names:
            visit(name, ())
        for name in order:
            b = self.stack.services[name].build
            assert b is not None
            ref = self.image_ref(name)
            async with key_agents(self.stack, name) as agents:  # build.ssh key files
                req = with_overrides(build_request(self.stack, name, ref, no_cache=no_cache,
                                                   ssh_agents=agents),
                                     self.stack, name, build_args or {}, pull)
                if not quiet:
                    self.progress(f"Image {ref}", "Building")
                async for step in self.engine.build_image(req):
                    if step.error:
                        raise ComposerError(f"service {name}: build failed: {step.error}")
                    if step.line and not quiet:
                        self.build_output(name, step.line)
            if not quiet:
                self.progress(f"Image {ref}", "Built")

    async def pull_images(self, services: Sequence[str] = (), *, policy: str | None = None,
                          quiet: bool = False, ignore_failures: bool = False,
                          ignore_buildable: bool = False) -> None:
        """The `pull` verb, as docker compose: each service's `pull_policy` (or `policy`)
        decides (never/build: skipped; missing: only when absent); a service that can be
        built is skipped with `ignore_buildable`, and its failed pull only warns; another
        failure ends it unless `ignore_failures`."""
        self.check_services(services)
        names = list(services) or sorted(self.stack.services)
        must_build: list[str] = []
        seen: set[str] = set()
        for name in names:
            svc = self.stack.services[name]
            ref = self.image_ref(name)
            label = f"Image {ref}"
            how = policy or svc.pull_policy or "always"
            if not svc.image:
                continue  # nothing to pull: an image made by build:
            if how in ("never", "build"):
                if not quiet:
                    self.progress(label, "Skipped")
                continue
            if how in ("missing", "if_not_present") and await self._image_exists(ref):
                if not quiet:
                    self.progress(label, "Skipped - Image is already present locally")
                continue
            if svc.build is not None and ignore_buildable:
                if not quiet:
                    self.progress(label, "Skipped - Image can be built")
                continue
            if ref in seen:
                continue
            seen.add(ref)
            try:
                await self.pull([name], quiet=quiet)
            except ComposerError as e:
                if svc.build is not None:
                    must_build.append(name)
                    self.progress("Warning", str(e))
                    continue
                if not ignore_failures:
                    raise
                self.progress("Warning", str(e))
        if must_build:
            self.progress("Warning", "some service image(s) must be built from source by "
                                     f"running: composer build {' '.join(must_build)}")

    async def remove_images(self, which: str) -> None:
        """`down --rmi`: `all` the images of the services, `local` only those without an
        `image:` of their own (the project-service images `build` made)."""
        refs = dict.fromkeys(self.image_ref(n) for n in sorted(self.stack.services)
                             if which == "all" or not self.stack.services[n].image)
        for ref in refs:
            try:
                await self.engine.remove_image(ref)
            except NotFound:
                continue
            except Conflict as e:
                self.progress("Warning", f"image {ref} was kept: {e}")
                continue
            self.progress(f"Image {ref}", "Removed")

    # -- down and friends ------------------------------------------------------------------
    async def down(self, *, remove_orphans: bool = False, volumes: bool = False,
                   timeout: float | None = None, rmi: str | None = None) -> DownResult:
        existing = await self.containers(oneoff=None)
        # containers of services disabled by their profiles stay, and are not orphans (as
        # docker compose: `--profile NAME down` removes them)
        plan = plan_down(existing, list(self.stack.services), remove_orphans=remove_orphans,
                         project=self.name, known=self.stack.disabled_services.keys())
        for w in plan.warnings:
            self.progress("Warning", w)
        by_service: dict[str, list[ContainerInfo]] = {}
        for c in existing:
            by_service.setdefault(c.labels.get(L.SERVICE, ""), []).append(c)

        async def stop(name: str) -> None:
            _raise_first(await run_parallel(
                by_service.get(name, []),
                lambda c: self._remove(c, timeout, volumes=volumes, hooks=True)))

        result = await run_down(self.graph, stop, services=set(self.stack.services) & set(by_service),
                                parallelism=self.parallelism)
        await self._remove_all([a.container for a in plan.orphan_actions], timeout, volumes=volumes)
        await remove_hook_containers(self.engine, self.name)  # left by an interrupted up
        # from the labels alone (-p NAME without a stack file): every network of the project
        keys = list(self.stack.networks) if self.by_labels else self.networks_used(self.stack.services)
        if self.by_labels and not existing and not keys and not (volumes and self.stack.volumes):
            self.progress("Warning", f'No resource found to remove for project "{self.name}".')
        for key in keys:
            if key in self.stack.networks and self.stack.networks[key].external:
                continue
            name = self.stack.network_name(key)
            try:
                await self.engine.remove_network(name)
                self.progress(f"Network {name}", "Removed")
            except NotFound:
                pass
            except Conflict:  # a container left running (profile not active) still uses it
                self.progress(f"Network {name}", "Resource is still in use")
        if volumes:
            for key, vol in self.stack.volumes.items():
                if vol.external:
                    continue
                name = self.stack.volume_name(key)
                try:
                    await self.engine.remove_volume(name)
                    self.progress(f"Volume {name}", "Removed")
                except NotFound:
                    pass
        if not result.ok:  # e.g. a pre_stop hook failed: that container is still running
            raise ComposerError(str(next(iter(result.errors.values()))))
        if rmi is not None:
            await self.remove_images(rmi)
        return result

    async def _remove_all(self, containers: Sequence[ContainerInfo | None], timeout: float | None,
                          *, volumes: bool = False) -> None:
        """Remove containers side by side (orphans: no order between them)."""
        _raise_first(await run_parallel(
            [c for c in containers if c is not None],
            lambda c: self._remove(c, timeout, volumes=volumes)))

    async def _remove(self, c: ContainerInfo | None, timeout: float | None, *,
                      volumes: bool = False, quiet: bool = False, hooks: bool = False) -> None:
        """Stop (with the service's pre_stop hooks when `hooks`: `down`, not a recreate or a
        scale-down, as Compose) and remove a container."""
        if c is None:
            return
        label = f"Container {c.name}"
        if c.state in ("running", "paused", "restarting"):
            if hooks and c.labels.get(L.ONEOFF) != "True":
                await self._stop(c, timeout, quiet=quiet)
            else:
                if not quiet:
                    self.progress(label, "Stopping")
                await self.engine.stop_container(c.id, timeout)
                if not quiet:
                    self.progress(label, "Stopped")
        await self.engine.remove_container(c.id, force=True, volumes=volumes)
        if not quiet:
            self.progress(label, "Removed")

    async def stop(self, services: Sequence[str] = (), timeout: float | None = None) -> None:
        self.check_services(services)
        running = {c.labels.get(L.SERVICE, ""): c for c in await self.containers(services, all=False)}
        by_service: dict[str, list[ContainerInfo]] = {}
        for c in await self.containers(services, all=False):
            by_service.setdefault(c.labels.get(L.SERVICE, ""), []).append(c)

        async def stop_one(name: str) -> None:
            _raise_first(await run_parallel(by_service.get(name, []),
                                            lambda c: self._stop(c, timeout)))

        result = await run_down(self.graph, stop_one, services=set(running) & set(self.stack.services),
                                parallelism=self.parallelism)
        if not result.ok:  # a pre_stop hook failed: that container is still running
            raise ComposerError(str(next(iter(result.errors.values()))))

    async def start(self, services: Sequence[str] = ()) -> None:
        """Start the stopped containers in dependency order; a service none of whose
        containers runs gets its pre_start hooks first, each container its post_start ones."""
        self.check_services(services)
        cs = await self.containers(services)
        order = [s for gen in self.graph.generations() for s in gen]
        for name in order:
            todo = [c for c in cs if c.labels.get(L.SERVICE) == name
                    and c.state not in ("running", "paused")]
            if todo:
                await self._start_service(name, todo)

    def restart_set(self, services: Sequence[str], *, no_deps: bool = False) -> set[str]:
        """What `restart SERVICES` restarts: the named services (all when none is named) and,
        unless --no-deps, every service depending on one of them with `restart: true`,
        transitively (as Compose)."""
        self.check_services(services)
        names = set(services) if services else set(self.graph.services)
        if no_deps or not services:
            return names & set(self.graph.services)
        todo = list(names)
        while todo:
            dep = todo.pop()
            for dependent in self.graph.dependents(dep):
                edge = self.graph.graph.edges[dependent, dep]["dependency"]
                if edge.restart and dependent not in names:
                    names.add(dependent)
                    todo.append(dependent)
        return names & set(self.graph.services)

    async def restart(self, services: Sequence[str] = (), *, timeout: float | None = None,
                      no_deps: bool = False) -> None:
        """Restart containers (stopped ones start) in dependency order, each service once the
        restarted services it depends on with `restart: true` meet their condition (as
        Compose); one-off containers are left alone."""
        names = self.restart_set(services, no_deps=no_deps)
        by_service: dict[str, list[ContainerInfo]] = {}
        for c in await self.containers(sorted(names)):
            by_service.setdefault(c.labels.get(L.SERVICE, ""), []).append(c)
        # only the `restart: true` edges order a restart, as Compose
        graph = self.graph.graph.edge_subgraph(
            [(a, b) for a, b, d in self.graph.graph.edges(data="dependency") if d.restart]
        ).copy()
        graph.add_nodes_from(names)
        targets = names & set(by_service)

        async def restart_one(name: str) -> None:
            for c in by_service.get(name, []):
                label = f"Container {c.name}"
                self.progress(label, "Restarting")
                svc = self.stack.services.get(name)
                if svc is not None and svc.pre_stop and c.state == "running":
                    await exec_hooks(self.engine, c, name, "pre_stop", svc.pre_stop, self.hook_output)
                if c.state in ("running", "paused", "restarting"):
                    # the engine's restart: in between it reads "restarting", so `logs -f`
                    # and an attached `up` stay on it (a stop would end them)
                    info = await self.engine.restart_container(c.id, timeout)
                else:
                    info = await self.engine.start_container(c.id)
                if svc is not None and svc.post_start:
                    await exec_hooks(self.engine, info, name, "post_start", svc.post_start,
                                     self.hook_output)
                self.progress(label, "Started")

        async def ready(dep: str, condition: str) -> None:
            if dep in targets:
                await self._wait_condition(dep, condition, UpOptions())

        result = await run_up(graph, restart_one, ready, services=targets,
                              parallelism=self.parallelism)
        if not result.ok:
            raise UpFailed(str(next(iter(result.errors.values()))))


async def _no_wait(service: str, condition: str) -> None:
    return None


def _seconds(value: float | None) -> str:
    """10 -> "10s", 2.5 -> "2.5s" (as Go prints a duration of whole seconds)."""
    if value is None:
        return "-"
    return f"{value:g}s"


def _number(c: ContainerInfo) -> int:
    try:
        return int(c.labels.get(L.CONTAINER_NUMBER, "0"))
    except ValueError:
        return 0


def _raise_first(outcomes: Sequence[Outcome[Any, Any]]) -> None:
    """Raise the first error of `run_parallel`'s outcomes (they are in the items' order)."""
    for o in outcomes:
        if o.error is not None:
            raise o.error
