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

ActionKind = Literal["create", "recreate", "start", "noop", "remove"]

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
    number first), then existing containers by number, then creations."""

    service: str
    actions: tuple[Action, ...] = ()

    def kinds(self) -> tuple[ActionKind, ...]:
        return tuple(a.kind for a in self.actions)

    @property
    def recreates(self) -> bool:
        return any(a.kind == "recreate" for a in self.actions)

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


def _recreate_reason(
    want: DesiredService, f: _Found, force: bool, deps_recreated: Sequence[str]
) -> str:
    if f.info.state in BROKEN_STATES:
        return f"container is {f.info.state}"
    if force:
        return "forced (--force-recreate)"
    if f.labels.config_hash != want.config_hash:
        return "config changed"
    have_image = f.labels.image_id or (f.info.image if f.info.image.startswith("sha256:") else "")
    if want.image_id and have_image and have_image != want.image_id:
        return "image changed"
    if deps_recreated:
        return f"dependency {', '.join(deps_recreated)} recreated (depends_on restart: true)"
    return ""


def _converge(
    want: DesiredService,
    f: _Found,
    *,
    force_recreate: bool,
    no_recreate: bool,
    deps_recreated: Sequence[str],
) -> Action:
    reason = _recreate_reason(want, f, force_recreate, deps_recreated)
    number = f.labels.number
    if reason and (not no_recreate or f.info.state in BROKEN_STATES):
        return Action("recreate", want.name, number, f.info, reason)
    note = f"{reason}, kept (--no-recreate)" if reason else ""
    if f.info.state in RUNNING_STATES:
        return Action("noop", want.name, number, f.info, note or "up to date")
    return Action("start", want.name, number, f.info, note or f"container is {f.info.state}")


def _plan_service(
    want: DesiredService,
    replicas: int,
    found: Sequence[_Found],
    *,
    force_recreate: bool,
    no_recreate: bool,
    deps_recreated: Sequence[str],
) -> ServicePlan:
    keep, extra = list(found[:replicas]), list(found[replicas:])
    actions = list(_removals(want.name, extra, f"scale down to {replicas}"))
    for f in keep:
        actions.append(
            _converge(
                want,
                f,
                force_recreate=force_recreate,
                no_recreate=no_recreate,
                deps_recreated=deps_recreated,
            )
        )
    next_number = max((f.labels.number for f in found), default=0) + 1
    for i in range(replicas - len(keep)):
        actions.append(Action("create", want.name, next_number + i, None, "new container"))
    return ServicePlan(want.name, tuple(actions))


def _orphan_warning(orphans: Sequence[_Found]) -> str:
    names = ", ".join(f.info.name for f in orphans)
    return (
        f"found orphan containers ({names}) for this project: if you removed or renamed "
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
) -> Plan:
    """The convergence plan of `up`, decided from labels and config hashes before acting.

    `desired` is in the order the plan lists services (give dependency order). `existing`
    are the engine's containers (filter them by `labels.project_filter`, or pass `project`);
    one-off (`run`) containers and unlabelled containers are ignored. A service whose
    `restart_deps` contains a recreated service is recreated too. `known`: the stack's other
    services (not selected, or disabled by their profiles): their containers are left alone,
    not orphans (as Compose).
    """
    if force_recreate and no_recreate:
        raise PlanError("--force-recreate and --no-recreate can't be combined (pick one)")
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
            raise PlanError(f"dependency cycle through restart: true: {cycle}")
        want = desired[name]
        deps_recreated = [
            dep
            for dep in sorted(want.restart_deps)
            if dep in desired and plan_of(dep, (*path, name)).recreates
        ]
        plans[name] = _plan_service(
            want,
            scale.get(name, want.replicas),
            groups.get(name, []),
            force_recreate=force_recreate,
            no_recreate=no_recreate,
            deps_recreated=deps_recreated,
        )
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
