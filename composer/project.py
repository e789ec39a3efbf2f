"""Reconciling a stack with what runs: plan first, then act.

`plan_up` compares the desired services (a config hash and a replica count each) with the
containers the engine reports (their compose labels) and decides, before anything is
touched, what each container needs: create, recreate, start, noop or remove — the
convergence plan of docker-compose (`Service.convergence_plan` in 1.x, `convergence.go`
in v2). `plan_down` lists what `down` removes. Both are pure: no engine calls, no I/O;
the caller executes the plan (in dependency order, through `composer.scheduler`).
"""
from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from composer import labels as L
from composer.errors import ComposerError
from runtime.api import ContainerInfo

ActionKind = Literal["create", "recreate", "restart", "start", "noop", "remove"]

RUNNING_STATES = frozenset({"running", "restarting", "paused"})  # up already: leave them
STARTABLE_STATES = frozenset({"created", "exited"})
BROKEN_STATES = frozenset({"dead", "removing"})  # can't be started: always replaced


class PlanError(ComposerError):
    """The request can't be planned (unknown service to scale, incompatible flags)."""


@dataclass(frozen=True)
class DesiredService:
    """What the stack file wants for one service."""

    name: str
    config_hash: str
    replicas: int = 1
    restart_deps: frozenset[str] = frozenset()  # depends_on entries with `restart: true`
    image_id: str | None = None  # the image id it would be created from, when known
    # services whose container this one joins (network_mode: service:X) or whose volumes it
    # mounts (volumes_from): recreating one of them leaves a stale reference, so this one is
    # recreated too (as Compose)
    namespace_deps: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Action:
    """One step on one container. `container` is the existing one (None for create);
    a recreate keeps the container's number, as Docker Compose does."""

    kind: ActionKind
    service: str
    number: int
    container: ContainerInfo | None = None
    reason: str = ""


@dataclass(frozen=True)
class ServicePlan:
    """The actions of one service, in the order to run them: scale-down removals (highest
    number first), then existing containers by number, then creations. `restart_after`: the
    dependencies (depends_on `restart: true`) being recreated or restarted, which make this
    service's running containers restart."""

    service: str
    actions: tuple[Action, ...] = ()
    restart_after: tuple[str, ...] = ()

    def kinds(self) -> tuple[ActionKind, ...]:
        return tuple(a.kind for a in self.actions)

    @property
    def recreates(self) -> bool:
        return any(a.kind == "recreate" for a in self.actions)

    @property
    def restarts(self) -> bool:
        return any(a.kind == "restart" for a in self.actions)

    @property
    def changed(self) -> bool:
        """True when executing this plan touches a container."""
        return any(a.kind != "noop" for a in self.actions)


@dataclass(frozen=True)
class Plan:
    """The whole convergence plan of `up`: per service in the desired order, plus orphans."""

    services: tuple[ServicePlan, ...] = ()
    orphans: tuple[ContainerInfo, ...] = ()  # containers of services no longer in the stack
    orphan_actions: tuple[Action, ...] = ()  # their removal, when remove_orphans
    warnings: tuple[str, ...] = ()

    def service(self, name: str) -> ServicePlan:
        for plan in self.services:
            if plan.service == name:
                return plan
        raise KeyError(name)

    @property
    def actions(self) -> tuple[Action, ...]:
        """Every action, orphan removals first (they may hold names or ports)."""
        return self.orphan_actions + tuple(a for p in self.services for a in p.actions)

    def restart_dependents(self, name: str) -> tuple[Action, ...]:
        """The `restart` actions that `name` being recreated or restarted triggers, directly or
        through other restarted services, dependents first: stop them before touching `name`
        (as Compose), they start again at their own turn."""
        order: list[str] = []

        def visit(dep: str) -> None:
            for plan in self.services:
                if dep in plan.restart_after and plan.service not in order:
                    visit(plan.service)
                    order.append(plan.service)

        visit(name)
        return tuple(a for s in order for a in self.service(s).actions if a.kind == "restart")


@dataclass(frozen=True)
class DownPlan:
    """What `down` removes: per service (in the given order), then orphans."""

    services: tuple[ServicePlan, ...] = ()
    orphans: tuple[ContainerInfo, ...] = ()
    orphan_actions: tuple[Action, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def actions(self) -> tuple[Action, ...]:
        return tuple(a for p in self.services for a in p.actions) + self.orphan_actions


def container_name(project: str, service: str, number: int) -> str:
    """`<project>-<service>-<n>`, as Docker Compose v2 names containers."""
    return f"{project}-{service}-{number}"


@dataclass(frozen=True)
class _Found:
    info: ContainerInfo
    labels: L.ContainerLabels


def _ours(
    existing: Iterable[ContainerInfo], project: str | None, oneoff: bool | None
) -> list[_Found]:
    """The labelled containers of `project` (any project when None), sorted by number."""
    found = []
    for info in existing:
        parsed = L.ContainerLabels.parse(info.labels)
        if parsed is None or (project is not None and parsed.project != project):
            continue
        if oneoff is not None and parsed.oneoff != oneoff:
            continue
        found.append(_Found(info, parsed))
    return sorted(found, key=lambda f: (f.labels.number, f.info.created_at, f.info.id))


def _by_service(found: Iterable[_Found]) -> dict[str, list[_Found]]:
    groups: dict[str, list[_Found]] = {}
    for f in found:
        groups.setdefault(f.labels.service, []).append(f)
    return groups


def _removals(service: str, found: Sequence[_Found], reason: str) -> tuple[Action, ...]:
    return tuple(
        Action("remove", service, f.labels.number, f.info, reason) for f in reversed(found)
    )


def _image_of(f: _Found) -> str:
    """The image id a container was created from: our label, else what the engine recorded."""
    if f.labels.image_id:
        return f.labels.image_id
    if f.info.image_id:
        return f.info.image_id
    return f.info.image if f.info.image.startswith("sha256:") else ""


def _recreate_reason(
    want: DesiredService, f: _Found, force: bool, shared_recreated: Sequence[str]
) -> str:
    if f.info.state in BROKEN_STATES:
        return f"container is {f.info.state}"
    if force:
        return "forced (--force-recreate)"
    if shared_recreated:
        return f"{', '.join(shared_recreated)} recreated (network_mode, ipc or pid service: / volumes_from)"
    if f.labels.config_hash != want.config_hash:
        return "config changed"
    have_image = _image_of(f)
    if want.image_id and have_image and have_image != want.image_id:
        return "image changed"
    return ""


@dataclass(frozen=True)
class _Strategy:
    force_recreate: bool
    no_recreate: bool
    shared_recreated: tuple[str, ...]  # namespace/volume parents being recreated
    restart_after: tuple[str, ...]  # restart: true dependencies recreated or restarted
    restart_note: str


def _converge(want: DesiredService, f: _Found, how: _Strategy) -> Action:
    reason = _recreate_reason(want, f, how.force_recreate, how.shared_recreated)
    number = f.labels.number
    if reason and (not how.no_recreate or f.info.state in BROKEN_STATES):
        return Action("recreate", want.name, number, f.info, reason)
    note = f"{reason}, kept (--no-recreate)" if reason else ""
    if how.restart_after and not how.no_recreate:
        if f.info.state in RUNNING_STATES:
            return Action("restart", want.name, number, f.info, how.restart_note)
        return Action("start", want.name, number, f.info, how.restart_note)
    if f.info.state in RUNNING_STATES:
        return Action("noop", want.name, number, f.info, note or "up to date")
    return Action("start", want.name, number, f.info, note or f"container is {f.info.state}")


def _plan_service(
    want: DesiredService, replicas: int, found: Sequence[_Found], how: _Strategy
) -> ServicePlan:
    keep, extra = list(found[:replicas]), list(found[replicas:])
    actions = list(_removals(want.name, extra, f"scale down to {replicas}"))
    actions.extend(_converge(want, f, how) for f in keep)
    next_number = max((f.labels.number for f in found), default=0) + 1
    for i in range(replicas - len(keep)):
        actions.append(Action("create", want.name, next_number + i, None, "new container"))
    plan = ServicePlan(want.name, tuple(actions))
    if plan.restarts:
        plan = ServicePlan(want.name, plan.actions, how.restart_after)
    return plan


ORPHAN_WARNING = "found orphan containers"


def _orphan_warning(orphans: Sequence[_Found]) -> str:
    names = ", ".join(f.info.name for f in orphans)
    return (
        f"{ORPHAN_WARNING} ({names}) for this project: if you removed or renamed "
        "a service in the stack file, run with --remove-orphans to clean them up"
    )


def _orphans(
    found: Sequence[_Found], services: Collection[str], remove: bool, known: Collection[str] = ()
) -> tuple[tuple[ContainerInfo, ...], tuple[Action, ...], tuple[str, ...]]:
    orphans = [f for f in found if f.labels.service not in services and f.labels.service not in known]
    if not orphans:
        return (), (), ()
    infos = tuple(f.info for f in orphans)
    if not remove:
        return infos, (), (_orphan_warning(orphans),)
    actions: list[Action] = []
    for service, group in sorted(_by_service(orphans).items()):
        actions.extend(_removals(service, group, "orphan (--remove-orphans)"))
    return infos, tuple(actions), ()


def plan_up(
    desired: Mapping[str, DesiredService],
    existing: Sequence[ContainerInfo],
    *,
    force_recreate: bool = False,
    no_recreate: bool = False,
    remove_orphans: bool = False,
    scale_overrides: Mapping[str, int] | None = None,
    project: str | None = None,
    known: Collection[str] = (),
    targets: Collection[str] | None = None,
    always_recreate_deps: bool = False,
) -> Plan:
    """The convergence plan of `up`, decided from labels, config hashes and image ids before
    acting.

    `desired` is in the order the plan lists services (give dependency order). `existing`
    are the engine's containers (filter them by `labels.project_filter`, or pass `project`);
    one-off (`run`) containers and unlabelled containers are ignored. `targets`: the
    services named on the command line (None: all of `desired`); `force_recreate` applies to
    them, their dependencies are recreated only when they diverged, or with
    `always_recreate_deps` (as Compose). A running service whose `restart_deps` contains a
    recreated or restarted service is restarted (`restart` action); one whose
    `namespace_deps` contains a recreated service is recreated. `known`: the stack's other
    services (not selected, or disabled by their profiles): their containers are left alone,
    not orphans (as Compose).
    """
    if force_recreate and no_recreate:
        raise PlanError("--force-recreate and --no-recreate can't be combined (pick one)")
    if always_recreate_deps and no_recreate:
        raise PlanError("--always-recreate-deps and --no-recreate can't be combined (pick one)")
    scale = dict(scale_overrides or {})
    unknown = sorted(set(scale) - set(desired))
    if unknown:
        raise PlanError(f"no such service to scale: {', '.join(unknown)}")
    for name, count in scale.items():
        if count < 0:
            raise PlanError(f"{name}: scale must be 0 or more, got {count}")

    found = _ours(existing, project, oneoff=False)
    groups = _by_service(found)
    plans: dict[str, ServicePlan] = {}

    def plan_of(name: str, path: tuple[str, ...]) -> ServicePlan:
        if name in plans:
            return plans[name]
        if name in path:
            cycle = " -> ".join((*path[path.index(name) :], name))
            raise PlanError(f"dependency cycle through restart: true / network_mode: {cycle}")
        want = desired[name]
        shared = tuple(
            dep
            for dep in sorted(want.namespace_deps)
            if dep in desired and plan_of(dep, (*path, name)).recreates
        )
        after: list[str] = []
        why: list[str] = []
        for dep in sorted(want.restart_deps):
            if dep not in desired:
                continue
            dep_plan = plan_of(dep, (*path, name))
            if dep_plan.recreates or dep_plan.restarts:
                after.append(dep)
                why.append(f"{dep} {'recreated' if dep_plan.recreates else 'restarted'}")
        targeted = targets is None or name in targets
        how = _Strategy(
            force_recreate=force_recreate if targeted else always_recreate_deps,
            no_recreate=no_recreate,
            shared_recreated=shared,
            restart_after=tuple(after),
            restart_note=f"dependency {', '.join(why)} (depends_on restart: true)" if why else "",
        )
        plans[name] = _plan_service(want, scale.get(name, want.replicas), groups.get(name, []), how)
        return plans[name]

    for name in desired:
        plan_of(name, ())
    orphans, orphan_actions, warnings = _orphans(found, desired.keys(), remove_orphans, known)
    return Plan(
        services=tuple(plans[name] for name in desired),
        orphans=orphans,
        orphan_actions=orphan_actions,
        warnings=warnings,
    )


def plan_down(
    existing: Sequence[ContainerInfo],
    services: Collection[str],
    *,
    remove_orphans: bool = False,
    project: str | None = None,
    known: Collection[str] = (),
) -> DownPlan:
    """What `down` removes: every container (one-off `run` containers included) of the
    stack's `services` (in that order), highest number first; containers of services no
    longer in the stack only with remove_orphans, else a warning. Containers of `known`
    services (disabled by their profiles) are left alone and are not orphans, as Compose."""
    found = _ours(existing, project, oneoff=None)
    groups = _by_service(found)
    plans = tuple(
        ServicePlan(name, _removals(name, groups.get(name, []), "down")) for name in services
    )
    orphans, orphan_actions, warnings = _orphans(found, services, remove_orphans, known)
    return DownPlan(plans, orphans, orphan_actions, warnings)
