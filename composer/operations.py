"""What the verbs do: a Stack acted out on an engine (the Engine API, in-process or a client).

Plan, then act: `up` computes the convergence plan (composer.project) from labels and config
hashes, then the scheduler (composer.scheduler) runs each service's actions as soon as its
dependencies meet their conditions. `down` stops in reverse dependency order. Nothing here
prints: progress goes to a `Progress` callback the CLI provides.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field

from composer import labels as L
from composer.convert import config_hash, container_spec, network_spec, volume_spec
from composer.errors import ComposerError
from composer.graph import ServiceGraph, build_graph
from composer.project import Action, DesiredService, Plan, plan_down, plan_up
from composer.scheduler import DownResult, UpResult, run_down, run_up
from composer.spec import Stack
from runtime.api import BuildRequest, ContainerInfo, EngineAPI
from runtime.errors import Conflict, NotFound

Progress = Callable[[str, str], None]  # (object, status), e.g. ("Container lnmp-db-1", "Started")
# Called with each container `up` is about to start (or leaves running) -- before it starts,
# so an attached `up` is attached before the first byte (composer.cli.attached).
BeforeStart = Callable[[ContainerInfo], Awaitable[None]]


class UpFailed(ComposerError):
    """A service could not be started; the message names the chain."""


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
    health_timeout: float = 600.0


def _noop(obj: str, status: str) -> None:
    pass


class Project:
    def __init__(self, stack: Stack, engine: EngineAPI, progress: Progress = _noop,
                 build_output: Callable[[str, str], None] | None = None) -> None:
        self.stack = stack
        self.engine = engine
        self.progress = progress
        self.build_output = build_output or (lambda service, line: None)
        self.before_start: BeforeStart | None = None
        self._graph: ServiceGraph | None = None

    @property
    def name(self) -> str:
        return self.stack.name

    @property
    def graph(self) -> ServiceGraph:
        if self._graph is None:
            self._graph = build_graph(self.stack)
        return self._graph

    # -- queries --------------------------------------------------------------------------
    async def containers(
        self, services: Collection[str] = (), *, all: bool = True, oneoff: bool | None = False
    ) -> list[ContainerInfo]:
        found = await self.engine.list_containers(all=all, labels={L.PROJECT: self.name})
        out = []
        for c in found:
            if oneoff is not None and (c.labels.get(L.ONEOFF, "False") == "True") != oneoff:
                continue
            if services and c.labels.get(L.SERVICE) not in services:
                continue
            out.append(c)
        return sorted(out, key=lambda c: (c.labels.get(L.SERVICE, ""), _number(c)))

    def image_ref(self, service: str) -> str:
        svc = self.stack.services[service]
        return svc.image or f"{self.name}-{service}"

    # -- up -------------------------------------------------------------------------------
    async def up(self, opts: UpOptions) -> UpResult:
        graph = self.graph
        selected = graph.select(opts.services) if opts.services else set(graph.services)
        await self.ensure_images(selected, build=opts.build, no_build=opts.no_build)
        await self.ensure_networks(selected)
        await self.ensure_volumes()
        existing = await self.containers()
        desired = {name: self._desired(name, opts.scale) for name in selected}
        plan = plan_up(
            desired, existing, force_recreate=opts.force_recreate, no_recreate=opts.no_recreate,
            remove_orphans=opts.remove_orphans, project=self.name,
            known=self.stack.all_services().keys(),  # not selected / profile off: not orphans
        )
        for warning in plan.warnings:
            self.progress("Warning", warning)
        for action in plan.orphan_actions:
            await self._remove(action.container, opts.timeout)
        result = await run_up(
            graph,
            start=lambda name: self._apply(plan, name, opts),
            wait_condition=lambda dep, cond: self._wait_condition(dep, cond, opts),
            services=selected,
        )
        if not result.ok:
            first = next(iter(result.errors.items()))
            raise UpFailed(f"{first[1]}")
        if opts.wait:
            for name in selected:
                await self._wait_condition(name, "service_healthy_or_running", opts)
        return result

    def _desired(self, name: str, scale: dict[str, int]) -> DesiredService:
        svc = self.stack.services[name]
        replicas = scale.get(name)
        if replicas is None:
            replicas = svc.scale if svc.scale is not None else (svc.deploy.replicas or 1)
        return DesiredService(
            name, config_hash(svc), replicas,
            frozenset(d.service for d in svc.depends_on if d.restart),
        )

    async def _apply(self, plan: Plan, name: str, opts: UpOptions) -> None:
        for action in plan.service(name).actions:
            await self._act(action, opts)

    async def _act(self, action: Action, opts: UpOptions) -> None:
        kind = action.kind
        if kind == "remove" and action.container is not None:
            await self._remove(action.container, opts.timeout)
        elif kind == "create":
            await self._create_and_start(action.service, action.number, opts)
        elif kind == "recreate" and action.container is not None:
            self.progress(f"Container {action.container.name}", "Recreate")
            await self._remove(action.container, opts.timeout, quiet=True)
            await self._create_and_start(action.service, action.number, opts)
        elif kind == "start" and action.container is not None:
            if not opts.no_start:
                if self.before_start is not None:
                    await self.before_start(action.container)
                self.progress(f"Container {action.container.name}", "Starting")
                await self.engine.start_container(action.container.id)
                self.progress(f"Container {action.container.name}", "Started")
        elif kind == "noop" and action.container is not None:
            if self.before_start is not None:
                await self.before_start(action.container)
            self.progress(f"Container {action.container.name}", "Running")

    def container_labels(self, service: str, number: int, *, oneoff: bool = False) -> dict[str, str]:
        svc = self.stack.services[service]
        return L.container_labels(
            self.name, service, number, config_hash(svc), oneoff=oneoff,
            working_dir=self.stack.project_directory, config_files=self.stack.files,
            depends_on=[L.DependsOnLabel(d.service, d.condition, d.restart) for d in svc.depends_on],
        )

    async def _create_and_start(self, service: str, number: int, opts: UpOptions) -> ContainerInfo:
        spec = container_spec(self.stack, service, number, labels=self.container_labels(service, number))
        self.progress(f"Container {spec.name}", "Creating")
        info = await self.engine.create_container(spec)
        self.progress(f"Container {spec.name}", "Created")
        if opts.no_start:
            return info
        if self.before_start is not None:
            await self.before_start(info)
        self.progress(f"Container {spec.name}", "Starting")
        try:
            info = await self.engine.start_container(info.id)
        except Exception as e:
            raise ComposerError(f"service {service}: {e}") from e
        self.progress(f"Container {spec.name}", "Started")
        return info

    async def _wait_condition(self, service: str, condition: str, opts: UpOptions) -> None:
        if condition == "service_started":
            return
        deadline = asyncio.get_running_loop().time() + opts.health_timeout
        while True:
            cs = await self.containers([service])
            if not cs:
                raise ComposerError(f"service {service} has no container")
            states = [await self.engine.inspect_container(c.id) for c in cs]
            if condition == "service_completed_successfully":
                if all(s.state == "exited" for s in states):
                    bad = [s for s in states if s.exit_code != 0]
                    if bad:
                        raise ComposerError(
                            f"service {service} didn't complete successfully: exit {bad[0].exit_code}")
                    return
            else:  # service_healthy (or --wait: healthy, else running)
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
                        if s.health:
                            self.progress(f"Container {s.name}", "Healthy")
                    return
            if asyncio.get_running_loop().time() > deadline:
                raise ComposerError(f"service {service}: timed out waiting for {condition}")
            await asyncio.sleep(0.05)

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
        for key in self.networks_used(services):
            spec = network_spec(self.stack, key)
            try:
                await self.engine.create_network(spec)
            except NotFound:
                raise ComposerError(
                    f"network {spec.name} declared as external, but could not be found: "
                    f"create it first") from None

    async def ensure_volumes(self) -> None:
        for key in self.stack.volumes:
            spec = volume_spec(self.stack, key)
            try:
                await self.engine.create_volume(spec)
            except NotFound:
                raise ComposerError(
                    f"external volume {spec.name!r} not found: create it first") from None

    async def ensure_images(self, services: Collection[str], *, build: bool = False,
                            no_build: bool = False) -> None:
        for name in sorted(services):
            svc = self.stack.services[name]
            ref = self.image_ref(name)
            have = await self._image_exists(ref)
            if svc.build is not None and not no_build and (build or not have):
                await self.build([name])
            elif not have or svc.pull_policy == "always":
                await self.pull([name], missing_only=svc.pull_policy != "always")

    async def _image_exists(self, ref: str) -> bool:
        try:
            await self.engine.inspect_image(ref)
            return True
        except NotFound:
            return False

    async def pull(self, services: Sequence[str] = (), *, missing_only: bool = False) -> None:
        names = [n for n in (services or sorted(self.stack.services)) if self.stack.services[n].image]
        for name in names:
            ref = self.image_ref(name)
            if missing_only and await self._image_exists(ref):
                continue
            self.progress(f"Image {ref}", "Pulling")
            async for ev in self.engine.pull_image(ref):
                if ev.error:
                    raise ComposerError(
                        f"service {name}: {ev.error} (or build it with `build:`, or load it "
                        "with `composer image load FILE`)")
                if ev.layer and ev.status in ("pull complete", "already exists"):
                    self.progress(f"  {ev.layer}", ev.status.capitalize())
            self.progress(f"Image {ref}", "Pulled")

    async def build(self, services: Sequence[str] = (), *, no_cache: bool = False) -> None:
        names = [n for n in (services or sorted(self.stack.services)) if self.stack.services[n].build]
        for name in names:
            b = self.stack.services[name].build
            assert b is not None
            ref = self.image_ref(name)
            self.progress(f"Image {ref}", "Building")
            req = BuildRequest(
                context=b.context, dockerfile=b.dockerfile or "Dockerfile", tag=ref,
                target=b.target, build_args={k: v for k, v in b.args.items() if v is not None},
                no_cache=no_cache or b.no_cache,
            )
            async for step in self.engine.build_image(req):
                if step.error:
                    raise ComposerError(f"service {name}: build failed: {step.error}")
                if step.line:
                    self.build_output(name, step.line)
            self.progress(f"Image {ref}", "Built")

    # -- down and friends ------------------------------------------------------------------
    async def down(self, *, remove_orphans: bool = False, volumes: bool = False,
                   timeout: float | None = None) -> DownResult:
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
            await asyncio.gather(*(self._remove(c, timeout, volumes=volumes)
                                   for c in by_service.get(name, [])))

        result = await run_down(self.graph, stop, services=set(self.stack.services) & set(by_service))
        for action in plan.orphan_actions:
            if action.container is not None:
                await self._remove(action.container, timeout, volumes=volumes)
        for key in self.networks_used(self.stack.services):
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
        return result

    async def _remove(self, c: ContainerInfo | None, timeout: float | None, *,
                      volumes: bool = False, quiet: bool = False) -> None:
        if c is None:
            return
        label = f"Container {c.name}"
        if c.state in ("running", "paused", "restarting"):
            if not quiet:
                self.progress(label, "Stopping")
            await self.engine.stop_container(c.id, timeout)
            if not quiet:
                self.progress(label, "Stopped")
        await self.engine.remove_container(c.id, force=True, volumes=volumes)
        if not quiet:
            self.progress(label, "Removed")

    async def stop(self, services: Sequence[str] = (), timeout: float | None = None) -> None:
        running = {c.labels.get(L.SERVICE, ""): c for c in await self.containers(services, all=False)}
        by_service: dict[str, list[ContainerInfo]] = {}
        for c in await self.containers(services, all=False):
            by_service.setdefault(c.labels.get(L.SERVICE, ""), []).append(c)

        async def stop_one(name: str) -> None:
            for c in by_service.get(name, []):
                self.progress(f"Container {c.name}", "Stopping")
                await self.engine.stop_container(c.id, timeout)
                self.progress(f"Container {c.name}", "Stopped")

        await run_down(self.graph, stop_one, services=set(running) & set(self.stack.services))

    async def restart(self, services: Sequence[str] = (), timeout: float | None = None) -> None:
        """Each container restarted by the engine (stop, then start, in dependency order):
        in between it reads "restarting", so `logs -f` and an attached `up` stay on it."""
        cs = await self.containers(services)
        order = [s for gen in self.graph.generations() for s in gen]
        for name in order:
            for c in cs:
                if c.labels.get(L.SERVICE) == name:
                    self.progress(f"Container {c.name}", "Restarting")
                    await self.engine.restart_container(c.id, timeout)
                    self.progress(f"Container {c.name}", "Started")

    async def start(self, services: Sequence[str] = ()) -> None:
        cs = await self.containers(services)
        order = [s for gen in self.graph.generations() for s in gen]
        for name in order:
            for c in cs:
                if c.labels.get(L.SERVICE) == name and c.state not in ("running", "paused"):
                    self.progress(f"Container {c.name}", "Starting")
                    await self.engine.start_container(c.id)
                    self.progress(f"Container {c.name}", "Started")


def _number(c: ContainerInfo) -> int:
    try:
        return int(c.labels.get(L.CONTAINER_NUMBER, "0"))
    except ValueError:
        return 0
