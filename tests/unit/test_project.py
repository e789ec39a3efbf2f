"""composer.project: the convergence plan, table-driven on fake ContainerInfo."""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from composer import labels as L
from composer.project import (
    DesiredService,
    Plan,
    PlanError,
    container_name,
    plan_down,
    plan_up,
)
from runtime.api import ContainerInfo, State
from runtime.types import ContainerSpec

PROJECT = "proj"


def ctr(
    service: str,
    number: int = 1,
    config_hash: str = "h1",
    state: State = "running",
    *,
    project: str = PROJECT,
    oneoff: bool = False,
    image_id: str = "",
    created_at: float = 0.0,
    engine_image_id: str = "",
) -> ContainerInfo:
    labels = L.container_labels(project, service, number, config_hash, oneoff=oneoff, image_id=image_id)
    name = container_name(project, service, number) if not oneoff else f"{project}-{service}-run-{number}"
    spec = ContainerSpec(name=name, image="busybox", labels=labels)
    return ContainerInfo(
        id=f"id-{name}", name=name, image="busybox", spec=spec, state=state, created_at=created_at,
        image_id=engine_image_id,
    )


def want(name: str, config_hash: str = "h1", replicas: int = 1, restart: tuple[str, ...] = (),
         image_id: str | None = None, shares: tuple[str, ...] = ()) -> DesiredService:
    return DesiredService(name, config_hash, replicas, frozenset(restart), image_id, frozenset(shares))


def summary(plan: Plan) -> list[tuple[str, str, int]]:
    return [(a.service, a.kind, a.number) for a in plan.actions]


@dataclass
class Case:
    id: str
    desired: list[DesiredService]
    existing: list[ContainerInfo]
    expect: list[tuple[str, str, int]]
    kwargs: dict[str, object] = field(default_factory=dict)


CASES = [
    Case(
        "fresh",
        [want("db"), want("web", replicas=2)],
        [],
        [("db", "create", 1), ("web", "create", 1), ("web", "create", 2)],
    ),
    Case(
        "same-hash-noop",
        [want("db"), want("web")],
        [ctr("db"), ctr("web")],
        [("db", "noop", 1), ("web", "noop", 1)],
    ),
    Case(
        "changed-hash-recreates-only-that-one",
        [want("db"), want("web", "h2")],
        [ctr("db"), ctr("web")],
        [("db", "noop", 1), ("web", "recreate", 1)],
    ),
    Case(
        "stopped-same-hash-starts",
        [want("db"), want("web")],
        [ctr("db", state="exited"), ctr("web", state="created")],
        [("db", "start", 1), ("web", "start", 1)],
    ),
    Case(
        "paused-and-restarting-are-left-alone",
        [want("db"), want("web")],
        [ctr("db", state="paused"), ctr("web", state="restarting")],
        [("db", "noop", 1), ("web", "noop", 1)],
    ),
    Case(
        "stopped-changed-hash-recreates",
        [want("web", "h2")],
        [ctr("web", state="exited")],
        [("web", "recreate", 1)],
    ),
    Case(
        "dead-container-is-replaced",
        [want("web")],
        [ctr("web", state="dead")],
        [("web", "recreate", 1)],
    ),
    Case(
        "restart-dependency-recreated-restarts-dependents-transitively",
        # as Compose: a dependent with `restart: true` is restarted, not recreated. Listed
        # dependents first: the plan must not depend on the mapping order
        [want("web", restart=("app",)), want("app", restart=("db",)), want("db", "h2"), want("other")],
        [ctr("web"), ctr("app"), ctr("db"), ctr("other")],
        [("web", "restart", 1), ("app", "restart", 1), ("db", "recreate", 1), ("other", "noop", 1)],
    ),
    Case(
        "restart-dependent-that-changed-is-recreated-and-a-stopped-one-started",
        [want("db", "h2"), want("app", "h2", restart=("db",)), want("job", restart=("db",))],
        [ctr("db"), ctr("app"), ctr("job", state="exited")],
        [("db", "recreate", 1), ("app", "recreate", 1), ("job", "start", 1)],
    ),
    Case(
        "network-mode-service-parent-recreated-recreates-the-child",
        [want("vpn", "h2"), want("app", shares=("vpn",)), want("side")],
        [ctr("vpn"), ctr("app"), ctr("side")],
        [("vpn", "recreate", 1), ("app", "recreate", 1), ("side", "noop", 1)],
    ),
    Case(
        "force-recreate-of-a-target-leaves-its-dependencies",
        [want("db"), want("web")],
        [ctr("db"), ctr("web")],
        [("db", "noop", 1), ("web", "recreate", 1)],
        {"force_recreate": True, "targets": ["web"]},
    ),
    Case(
        "always-recreate-deps-recreates-the-dependencies-too",
        [want("db"), want("web")],
        [ctr("db"), ctr("web")],
        [("db", "recreate", 1), ("web", "noop", 1)],
        {"always_recreate_deps": True, "targets": ["web"]},
    ),
    Case(
        "a-diverged-dependency-is-recreated-without-force",
        [want("db", "h2"), want("web")],
        [ctr("db"), ctr("web")],
        [("db", "recreate", 1), ("web", "noop", 1)],
        {"targets": ["web"]},
    ),
    Case(
        "dependency-recreated-without-restart-true-is-noop",
        [want("db", "h2"), want("app")],
        [ctr("db"), ctr("app")],
        [("db", "recreate", 1), ("app", "noop", 1)],
    ),
    Case(
        "restart-dependency-unchanged-is-noop",
        [want("db"), want("app", restart=("db",))],
        [ctr("db"), ctr("app")],
        [("db", "noop", 1), ("app", "noop", 1)],
    ),
    Case(
        "restart-dependency-not-in-stack-is-ignored",
        [want("app", restart=("gone",))],
        [ctr("app")],
        [("app", "noop", 1)],
    ),
    Case(
        "scale-up-creates-after-the-highest-number",
        [want("web", replicas=3)],
        [ctr("web", 1), ctr("web", 3)],
        [("web", "noop", 1), ("web", "noop", 3), ("web", "create", 4)],
    ),
    Case(
        "scale-down-removes-highest-first",
        [want("web", replicas=1)],
        [ctr("web", 2), ctr("web", 1), ctr("web", 3)],
        [("web", "remove", 3), ("web", "remove", 2), ("web", "noop", 1)],
    ),
    Case(
        "scale-override",
        [want("web", replicas=1), want("db")],
        [ctr("web", 1), ctr("db")],
        [("web", "noop", 1), ("web", "create", 2), ("web", "create", 3), ("db", "remove", 1)],
        {"scale_overrides": {"web": 3, "db": 0}},
    ),
    Case(
        "orphans-removed-with-flag-first",
        [want("web")],
        [ctr("web"), ctr("old", 1), ctr("old", 2)],
        [("old", "remove", 2), ("old", "remove", 1), ("web", "noop", 1)],
        {"remove_orphans": True},
    ),
    Case(
        "force-recreate",
        [want("db"), want("web")],
        [ctr("db"), ctr("web", state="exited")],
        [("db", "recreate", 1), ("web", "recreate", 1)],
        {"force_recreate": True},
    ),
    Case(
        "no-recreate-keeps-changed-containers",
        [want("db", "h2"), want("web", "h2"), want("app", restart=("db",))],
        [ctr("db"), ctr("web", state="exited"), ctr("app")],
        [("db", "noop", 1), ("web", "start", 1), ("app", "noop", 1)],
        {"no_recreate": True},
    ),
    Case(
        "no-recreate-still-creates-missing",
        [want("web", "h2", replicas=2)],
        [ctr("web")],
        [("web", "noop", 1), ("web", "create", 2)],
        {"no_recreate": True},
    ),
    Case(
        "image-changed-recreates",
        [want("web", image_id="sha256:new"), want("db", image_id="sha256:same")],
        [ctr("web", image_id="sha256:old"), ctr("db", image_id="sha256:same")],
        [("web", "recreate", 1), ("db", "noop", 1)],
    ),
    Case(
        "image-of-an-unlabelled-container-comes-from-the-engine",
        [want("web", image_id="sha256:new"), want("db", image_id="sha256:same")],
        [ctr("web", engine_image_id="sha256:old"), ctr("db", engine_image_id="sha256:same")],
        [("web", "recreate", 1), ("db", "noop", 1)],
    ),
    Case(
        "image-unknown-on-either-side-is-not-a-change",
        [want("web", image_id=None), want("db", image_id="sha256:x")],
        [ctr("web", image_id="sha256:old"), ctr("db")],
        [("web", "noop", 1), ("db", "noop", 1)],
    ),
    Case(
        "oneoff-unlabelled-and-other-projects-ignored",
        [want("web")],
        [
            ctr("web"),
            ctr("web", 7, oneoff=True),
            ctr("web", 2, project="other"),
            ContainerInfo(id="x", name="x", image="busybox", spec=ContainerSpec(name="x", image="busybox")),
        ],
        [("web", "noop", 1)],
        {"project": PROJECT},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_plan_up(case: Case) -> None:
    plan = plan_up({d.name: d for d in case.desired}, case.existing, **case.kwargs)  # type: ignore[arg-type]
    assert summary(plan) == case.expect


def test_plan_is_decided_from_existing_containers_and_keeps_them() -> None:
    web = ctr("web", config_hash="h1")
    plan = plan_up({"web": want("web", "h2")}, [web])
    (action,) = plan.service("web").actions
    assert action.container is web
    assert action.reason == "config changed"
    assert plan.service("web").recreates and plan.service("web").changed


def test_restart_propagation_reason_names_the_dependency() -> None:
    plan = plan_up({"db": want("db", "h2"), "app": want("app", restart=("db",))}, [ctr("db"), ctr("app")])
    assert plan.service("app").actions[0].reason == "dependency db recreated (depends_on restart: true)"
    assert plan.service("app").restart_after == ("db",)


def test_restart_dependents_lists_what_to_stop_first_dependents_first() -> None:
    desired = [want("db", "h2"), want("app", restart=("db",)), want("web", restart=("app",)),
               want("cron", restart=("db",)), want("other")]
    plan = plan_up({d.name: d for d in desired}, [ctr(d.name) for d in desired])
    assert [a.service for a in plan.restart_dependents("db")] == ["web", "app", "cron"]
    assert plan.restart_dependents("other") == ()
    assert plan.service("web").actions[0].reason == "dependency app restarted (depends_on restart: true)"


def test_force_recreate_and_no_recreate_scope() -> None:
    desired = {"db": want("db", "h2"), "web": want("web")}
    plan = plan_up(desired, [ctr("db"), ctr("web")], no_recreate=True, targets=["web"])
    assert summary(plan) == [("db", "noop", 1), ("web", "noop", 1)]  # no-recreate: deps too
    with pytest.raises(PlanError, match="--always-recreate-deps and --no-recreate"):
        plan_up(desired, [], no_recreate=True, always_recreate_deps=True)


def test_noop_plan_is_unchanged() -> None:
    plan = plan_up({"web": want("web")}, [ctr("web")])
    assert not plan.service("web").changed
    assert plan.service("web").kinds() == ("noop",)


def test_no_recreate_reason_says_it_was_kept() -> None:
    plan = plan_up({"web": want("web", "h2")}, [ctr("web")], no_recreate=True)
    assert plan.service("web").actions[0].reason == "config changed, kept (--no-recreate)"


def test_orphans_without_flag_are_a_warning() -> None:
    plan = plan_up({"web": want("web")}, [ctr("web"), ctr("old")])
    assert [c.name for c in plan.orphans] == ["proj-old-1"]
    assert plan.orphan_actions == ()
    assert plan.warnings == (
        "found orphan containers (proj-old-1) for this project: if you removed or renamed a "
        "service in the stack file, run with --remove-orphans to clean them up",
    )


def test_incompatible_flags_and_bad_scale_are_errors() -> None:
    with pytest.raises(PlanError, match="can't be combined"):
        plan_up({"web": want("web")}, [], force_recreate=True, no_recreate=True)
    with pytest.raises(PlanError, match="no such service to scale: nope"):
        plan_up({"web": want("web")}, [], scale_overrides={"nope": 2})
    with pytest.raises(PlanError, match="scale must be 0 or more"):
        plan_up({"web": want("web")}, [], scale_overrides={"web": -1})


def test_restart_cycle_is_an_error() -> None:
    with pytest.raises(PlanError, match="a -> b -> a"):
        plan_up({"a": want("a", restart=("b",)), "b": want("b", restart=("a",))}, [])


def test_plan_down_removes_everything_highest_first_and_warns_on_orphans() -> None:
    existing = [ctr("web", 1), ctr("web", 2), ctr("db"), ctr("web", 3, oneoff=True), ctr("old"), ctr("x", project="other")]
    plan = plan_down(existing, ["web", "db"], project=PROJECT)
    assert [(a.service, a.kind, a.number) for a in plan.actions] == [
        ("web", "remove", 3),
        ("web", "remove", 2),
        ("web", "remove", 1),
        ("db", "remove", 1),
    ]
    assert [c.name for c in plan.orphans] == ["proj-old-1"]
    assert len(plan.warnings) == 1 and "--remove-orphans" in plan.warnings[0]

    plan = plan_down(existing, ["web", "db"], project=PROJECT, remove_orphans=True)
    assert plan.actions[-1].service == "old" and plan.actions[-1].kind == "remove"
    assert plan.warnings == ()


def test_known_services_are_not_orphans() -> None:
    """Containers of the stack's other services (not selected, or disabled by their profiles)
    are left alone by up and down, even with remove_orphans (as Compose)."""
    existing = [ctr("web"), ctr("debug"), ctr("old")]
    plan = plan_up({"web": want("web")}, existing, remove_orphans=True, known=["web", "debug"])
    assert summary(plan) == [("old", "remove", 1), ("web", "noop", 1)]
    assert [c.name for c in plan.orphans] == ["proj-old-1"]
    plan = plan_down(existing, ["web"], project=PROJECT, remove_orphans=True, known=["debug"])
    assert [(a.service, a.kind) for a in plan.actions] == [("web", "remove"), ("old", "remove")]
    plan = plan_down([ctr("web"), ctr("debug")], ["web"], project=PROJECT, known=["debug"])
    assert (plan.orphans, plan.warnings) == ((), ())


def test_container_name() -> None:
    assert container_name("proj", "web", 2) == "proj-web-2"
