"""composer.operations.Project on an in-memory engine: what `up`, `restart` and `--wait`
decide and do — the image in convergence, scale overrides, the reach of --force-recreate,
`restart: true`, anonymous volumes across a recreate, pull policies, and --wait's ends."""
from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from composer import labels as L
from composer.errors import ComposerError
from composer.operations import Project, UpOptions, WaitTimeout
from composer.spec import LoadOptions, load_stack
from tests.unit.memengine import MemEngine

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def project(tmp_path: Path, text: str, engine: MemEngine,
            events: list[tuple[str, str]] | None = None) -> Project:
    (tmp_path / "compose.yaml").write_text(text)
    stack = load_stack(LoadOptions(environ={}, working_dir=str(tmp_path), project_name="p"))
    sink = events if events is not None else []
    return Project(stack, engine, progress=lambda obj, status: sink.append((obj, status)))  # type: ignore[arg-type]


def ids(engine: MemEngine) -> dict[str, str]:
    return {c.name: c.id for c in engine.containers.values()}


def kinds(engine: MemEngine, verb: str) -> list[str]:
    return [name for v, name in engine.log if v == verb]


TWO = """
services:
  db: {image: dbimg, command: sleep 600}
  web: {image: webimg, command: sleep 600, depends_on: [db]}
"""


def test_the_image_id_is_labelled_and_a_new_image_recreates(tmp_path: Path) -> None:
    engine = MemEngine({"dbimg": "sha256:d1", "webimg": "sha256:w1"})
    run(project(tmp_path, TWO, engine).up(UpOptions()))
    web = next(c for c in engine.containers.values() if c.name == "p-web-1")
    assert web.labels[L.IMAGE] == "sha256:w1"
    first = ids(engine)
    run(project(tmp_path, TWO, engine).up(UpOptions()))
    assert ids(engine) == first  # nothing changed: nothing recreated
    engine.images["webimg"] = "sha256:w2"  # e.g. `composer pull` fetched a newer one
    run(project(tmp_path, TWO, engine).up(UpOptions()))
    now = ids(engine)
    assert now["p-db-1"] == first["p-db-1"] and now["p-web-1"] != first["p-web-1"]
    web = engine.containers[now["p-web-1"]]
    assert web.labels[L.IMAGE] == "sha256:w2"


def test_up_build_rebuilds_and_a_changed_image_recreates(tmp_path: Path) -> None:
    engine = MemEngine({})
    text = "services:\n  app: {build: ., command: sleep 600}\n"
    run(project(tmp_path, text, engine).up(UpOptions()))
    assert engine.built == ["p-app"]
    first = ids(engine)
    run(project(tmp_path, text, engine).up(UpOptions()))  # image present: no build, no change
    assert engine.built == ["p-app"] and ids(engine) == first
    run(project(tmp_path, text, engine).up(UpOptions(build=True)))  # the build made a new id
    assert engine.built == ["p-app", "p-app"] and ids(engine) != first


def test_scale_reaches_the_plan_and_an_unknown_service_is_an_error(tmp_path: Path) -> None:
    engine = MemEngine({"dbimg": "sha256:d", "webimg": "sha256:w"})
    with pytest.raises(ComposerError, match="no such service: nosuch"):
        run(project(tmp_path, TWO, engine).up(UpOptions(scale={"nosuch": 2})))
    assert engine.containers == {}
    run(project(tmp_path, TWO, engine).up(UpOptions(scale={"web": 3})))
    assert sorted(ids(engine)) == ["p-db-1", "p-web-1", "p-web-2", "p-web-3"]
    run(project(tmp_path, TWO, engine).up(UpOptions(scale={"web": 1})))
    assert sorted(ids(engine)) == ["p-db-1", "p-web-1"]


def test_force_recreate_reaches_only_the_named_services(tmp_path: Path) -> None:
    engine = MemEngine({"dbimg": "sha256:d", "webimg": "sha256:w"})
    run(project(tmp_path, TWO, engine).up(UpOptions()))
    first = ids(engine)
    run(project(tmp_path, TWO, engine).up(UpOptions(services=["web"], force_recreate=True)))
    second = ids(engine)
    assert second["p-db-1"] == first["p-db-1"] and second["p-web-1"] != first["p-web-1"]
    run(project(tmp_path, TWO, engine).up(
        UpOptions(services=["web"], force_recreate=True, always_recreate_deps=True)))
    third = ids(engine)
    assert third["p-db-1"] != second["p-db-1"] and third["p-web-1"] != second["p-web-1"]


def test_no_deps_starts_only_the_named_service(tmp_path: Path) -> None:
    engine = MemEngine({"dbimg": "sha256:d", "webimg": "sha256:w"})
    text = TWO.replace("depends_on: [db]", "depends_on: {db: {condition: service_healthy}}")
    run(project(tmp_path, text, engine).up(UpOptions(services=["web"], no_deps=True)))
    assert sorted(ids(engine)) == ["p-web-1"]  # db neither created nor waited for


RESTART = """
services:
  db: {image: i, command: sleep 600}
  app: {image: i, command: sleep 600, depends_on: {db: {condition: service_started, restart: true}}}
  web: {image: i, command: sleep 600, depends_on: {app: {condition: service_started, restart: true}}}
  cron: {image: i, command: sleep 600, depends_on: [db]}
"""


def test_restart_restarts_the_dependents_with_restart_true(tmp_path: Path) -> None:
    engine = MemEngine({"i": "sha256:i"})
    run(project(tmp_path, RESTART, engine).up(UpOptions()))
    p = project(tmp_path, RESTART, engine)
    assert p.restart_set(["db"]) == {"db", "app", "web"}  # cron: no restart: true
    assert p.restart_set(["db"], no_deps=True) == {"db"}
    engine.log.clear()
    run(p.restart(["db"]))
    assert kinds(engine, "stop") == ["p-db-1", "p-app-1", "p-web-1"]
    assert kinds(engine, "start") == ["p-db-1", "p-app-1", "p-web-1"]
    with pytest.raises(ComposerError, match="no such service: nosuch"):
        run(p.restart(["nosuch"]))


def test_recreating_a_dependency_restarts_its_restart_true_dependents(tmp_path: Path) -> None:
    engine = MemEngine({"i": "sha256:i"})
    run(project(tmp_path, RESTART, engine).up(UpOptions()))
    first = ids(engine)
    engine.log.clear()
    changed = RESTART.replace("db: {image: i, command: sleep 600}", "db: {image: i, command: sleep 601}")
    run(project(tmp_path, changed, engine).up(UpOptions()))
    now = ids(engine)
    assert now["p-db-1"] != first["p-db-1"]  # recreated
    assert {n: now[n] for n in ("p-app-1", "p-web-1", "p-cron-1")} == {
        n: first[n] for n in ("p-app-1", "p-web-1", "p-cron-1")}  # restarted, not recreated
    # as Compose: the dependents stop before db is replaced, and start after it
    assert engine.log.index(("stop", "p-web-1")) < engine.log.index(("stop", "p-app-1")) \
        < engine.log.index(("remove", "p-db-1"))
    assert engine.log.index(("start", "p-db-1")) < engine.log.index(("start", "p-app-1")) \
        < engine.log.index(("start", "p-web-1"))
    assert ("stop", "p-cron-1") not in engine.log


VOLS = "services:\n  db: {image: i, command: sleep 600, volumes: [/data]}\n"


def test_recreate_keeps_anonymous_volumes_and_v_renews_them(tmp_path: Path) -> None:
    engine = MemEngine({"i": "sha256:i"})
    run(project(tmp_path, VOLS, engine).up(UpOptions()))
    (first,) = [m.source for c in engine.containers.values() for m in c.mounts]
    run(project(tmp_path, VOLS, engine).up(UpOptions(force_recreate=True)))
    (kept,) = [m.source for c in engine.containers.values() for m in c.mounts]
    assert kept == first and list(engine.volumes) == [first]
    run(project(tmp_path, VOLS, engine).up(UpOptions(renew_anon_volumes=True)))
    (renewed,) = [m.source for c in engine.containers.values() for m in c.mounts]
    assert renewed != first and list(engine.volumes) == [renewed]  # the old one is gone


@pytest.mark.parametrize(("policy", "present", "pulled", "error"), [
    ("missing", True, False, None),
    ("missing", False, True, None),
    ("always", True, True, None),
    ("never", True, False, None),
    ("never", False, False, "pull_policy is never"),
    ("build", True, False, None),
])
def test_pull_policies(tmp_path: Path, policy: str, present: bool, pulled: bool,
                       error: str | None) -> None:
    engine = MemEngine({"img": "sha256:1"} if present else {})
    p = project(tmp_path, "services:\n  a: {image: img}\n", engine)
    if error:
        with pytest.raises(ComposerError, match=error):
            run(p.ensure_images({"a"}, pull=policy))
    else:
        run(p.ensure_images({"a"}, pull=policy))
    assert engine.pulled == (["img"] if pulled else [])


def test_a_failed_pull_of_a_buildable_service_builds_it(tmp_path: Path) -> None:
    engine = MemEngine({})
    engine.pull_fails = True
    p = project(tmp_path, "services:\n  a: {image: img, build: .}\n", engine)
    run(p.ensure_images({"a"}, pull="always"))
    assert engine.pulled == ["img"] and engine.built == ["img"]


def test_quiet_pull_prints_no_pull_lines(tmp_path: Path) -> None:
    engine, events = MemEngine({}), []  # type: ignore[var-annotated]
    p = project(tmp_path, "services:\n  a: {image: img}\n", engine, events)
    run(p.ensure_images({"a"}, quiet_pull=True))
    assert engine.pulled == ["img"] and not [e for e in events if e[0].startswith("Image")]


ONESHOT = """
services:
  migrate: {image: i, command: "true"}
  app:
    image: i
    command: sleep 600
    depends_on: {migrate: {condition: service_completed_successfully}}
"""


def test_wait_accepts_a_one_shot_another_service_waits_on(tmp_path: Path) -> None:
    engine, events = MemEngine({"i": "sha256:i"}), []  # type: ignore[var-annotated]
    engine.exit_on_start["migrate"] = 0
    run(project(tmp_path, ONESHOT, engine, events).up(UpOptions(wait=True)))
    assert ("Container p-migrate-1", "Exited") in events
    assert ("Container p-app-1", "Healthy") in events


def test_wait_on_a_lone_one_shot_fails_as_compose(tmp_path: Path) -> None:
    engine = MemEngine({"i": "sha256:i"})
    engine.exit_on_start["job"] = 0
    with pytest.raises(ComposerError, match=r"container p-job-1 exited \(0\)"):
        run(project(tmp_path, "services:\n  job: {image: i}\n", engine).up(UpOptions(wait=True)))


def test_wait_timeout_ends_a_check_that_never_passes(tmp_path: Path) -> None:
    engine = MemEngine({"i": "sha256:i"})
    engine.health["slow"] = "starting"
    text = "services:\n  slow: {image: i, command: sleep 600}\n  fine: {image: i, command: sleep 600}\n"
    with pytest.raises(WaitTimeout) as err:
        run(project(tmp_path, text, engine).up(UpOptions(wait=True, wait_timeout=0.3)))
    assert str(err.value) == (
        "application not healthy after 0.3s: p-slow-1 is starting (health check not passed yet)")


def test_wait_on_an_unhealthy_container_fails_at_once(tmp_path: Path) -> None:
    engine = MemEngine({"i": "sha256:i"})
    engine.health["bad"] = "unhealthy"
    with pytest.raises(ComposerError, match="container p-bad-1 is unhealthy"):
        run(project(tmp_path, "services:\n  bad: {image: i}\n", engine).up(UpOptions(wait=True)))


def test_networks_and_volumes_created_are_reported_once(tmp_path: Path) -> None:
    engine, events = MemEngine({"i": "sha256:i"}), []  # type: ignore[var-annotated]
    text = "services:\n  a: {image: i, volumes: [data:/d]}\nvolumes:\n  data: {}\n"
    run(project(tmp_path, text, engine, events).up(UpOptions()))
    assert ("Network p_default", "Created") in events and ('Volume "p_data"', "Created") in events
    events.clear()
    run(project(tmp_path, text, engine, events).up(UpOptions()))
    assert not [e for e in events if e[0].startswith(("Network", "Volume"))]
    assert events == [("Container p-a-1", "Running")]


def test_create_waits_for_no_dependency_condition(tmp_path: Path) -> None:
    """`create` (no_start), as Compose's create: a dependency that is only created never
    gets healthy or completes, so its condition is not awaited (it used to fail at once,
    or wait out the health timeout)."""
    engine = MemEngine()
    stack = """
services:
  db: {image: x, healthcheck: {test: ["CMD", "true"]}}
  init: {image: x}
  web:
    image: x
    depends_on:
      db: {condition: service_healthy}
      init: {condition: service_completed_successfully}
"""
    events: list[tuple[str, str]] = []
    run(project(tmp_path, stack, engine, events).up(UpOptions(no_start=True)))
    assert sorted((c.name, c.state) for c in engine.containers.values()) == [
        ("p-db-1", "created"), ("p-init-1", "created"), ("p-web-1", "created")]
    assert not any(status == "Waiting" for _, status in events)


CHAIN = """
services:
  a: {image: i, command: sleep 600, healthcheck: {test: ["CMD", "true"]}}
  b:
    image: i
    command: sleep 600
    healthcheck: {test: ["CMD", "true"]}
    depends_on: {a: {condition: service_healthy}}
  c: {image: i, command: sleep 600, depends_on: {b: {condition: service_healthy}}}
"""


@pytest.mark.parametrize("wait", [False, True])
def test_up_creates_every_container_before_it_starts_any(tmp_path: Path, wait: bool) -> None:
    """As Compose's `up` (create, then start): the create phase creates every service in
    dependency order waiting for nothing, then the start phase starts them in that order,
    each once its dependency is healthy."""
    engine, events = MemEngine({"i": "sha256:i"}), []  # type: ignore[var-annotated]
    engine.health.update(a="healthy", b="healthy")
    run(project(tmp_path, CHAIN, engine, events).up(UpOptions(wait=wait)))
    lines = [f"{obj} {status}" for obj, status in events if obj.startswith("Container")]
    created = [lines.index(f"Container p-{s}-1 Created") for s in "abc"]
    starting = [lines.index(f"Container p-{s}-1 Starting") for s in "abc"]
    assert created == sorted(created) and starting == sorted(starting)
    assert max(created) < min(starting)
    assert lines.index("Container p-a-1 Healthy") < starting[1]
    assert lines.index("Container p-b-1 Healthy") < starting[2]
    assert [v for v, _ in engine.log if v in ("create", "start")] == ["create"] * 3 + ["start"] * 3


def test_a_failure_to_create_starts_nothing(tmp_path: Path) -> None:
    """As Compose: `up` stops at a failure of its create phase, before any container starts."""
    engine = _NoQuotaEngine({"dbimg": "sha256:d", "webimg": "sha256:w"})
    text = TWO.replace("depends_on: [db]", "depends_on: [db], storage_opt: {size: 10m}")
    with pytest.raises(ComposerError, match="^service web: container p-web-1: storage_opt.size"):
        run(project(tmp_path, text, engine).up(UpOptions()))
    assert {c.name: c.state for c in engine.containers.values()} == {"p-db-1": "created"}
    assert kinds(engine, "start") == []


def test_a_restart_true_dependent_stops_in_the_create_phase_and_starts_in_order(
        tmp_path: Path) -> None:
    """db recreated and a new service added: app and web (restart: true) stop before db is
    replaced, nothing starts before every container is created, then db, app, web and the
    new one start in dependency order."""
    engine = MemEngine({"i": "sha256:i"})
    run(project(tmp_path, RESTART, engine).up(UpOptions()))
    engine.log.clear()
    changed = RESTART.replace("db: {image: i, command: sleep 600}", "db: {image: i, command: sleep 601}")
    changed += "  new: {image: i, command: sleep 600, depends_on: [web]}\n"
    run(project(tmp_path, changed, engine).up(UpOptions()))
    verbs = [v for v, _ in engine.log if v in ("stop", "remove", "create", "start")]
    assert verbs.index("start") > max(i for i, v in enumerate(verbs) if v != "start")
    assert engine.log.index(("stop", "p-app-1")) < engine.log.index(("remove", "p-db-1"))
    assert kinds(engine, "start") == ["p-db-1", "p-app-1", "p-web-1", "p-new-1"]


class _NoQuotaEngine(MemEngine):
    """The engine on a state root without project quotas: what it says to storage_size."""

    async def create_container(self, spec):  # type: ignore[no-untyped-def]
        if spec.storage_size:
            from runtime.storage.quota import QuotaUnsupported
            raise QuotaUnsupported(
                f"container {spec.name}: storage_opt.size needs the state root on xfs mounted with "
                "pquota or ext4 (-O quota,project) mounted with prjquota; /var/lib/composer/"
                "containers is on ext4 at / without it")
        return await super().create_container(spec)


def test_a_size_the_host_cannot_give_fails_up_naming_the_service(tmp_path: Path) -> None:
    engine = _NoQuotaEngine({"webimg": "sha256:w1"})
    text = "services:\n  web: {image: webimg, storage_opt: {size: 10m}}\n"
    with pytest.raises(ComposerError) as err:
        run(project(tmp_path, text, engine).up(UpOptions()))
    assert str(err.value).startswith(
        "service web: container p-web-1: storage_opt.size needs the state root on xfs mounted "
        "with pquota or ext4 (-O quota,project) mounted with prjquota; ")
    assert engine.containers == {}
    run(project(tmp_path, "services:\n  web: {image: webimg}\n", engine).up(UpOptions()))
    assert [c.name for c in engine.containers.values()] == ["p-web-1"]


def test_a_wait_for_healthy_looks_again_soon_at_first(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A check of `interval: 100ms` passes ~0.1 s after the start: the wait looks every
    10 ms for its first second (at 50 ms it lost ~25 ms per dependency of a chain), then
    every 50 ms."""
    import dataclasses

    import composer.operations as ops

    engine = MemEngine({"dbimg": "sha256:d", "webimg": "sha256:w"})
    text = TWO.replace("depends_on: [db]", "depends_on: {db: {condition: service_healthy}}")
    engine.health["db"] = "starting"
    naps: list[float] = []
    clock = [0.0]
    real_sleep = asyncio.sleep

    async def sleep(delay: float) -> None:
        naps.append(delay)
        clock[0] += delay
        if len(naps) == 150:  # 1 s of 10 ms looks, then a few of 50 ms: healthy now
            (db,) = [c for c in engine.containers.values() if c.name == "p-db-1"]
            engine.containers[db.id] = dataclasses.replace(db, health="healthy")
        await real_sleep(0)

    class Loop:  # the wait's own clock, moved by the naps above
        def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
            self._loop = loop

        def time(self) -> float:
            return clock[0]

    monkeypatch.setattr(ops.asyncio, "sleep", sleep)
    monkeypatch.setattr(ops.asyncio, "get_running_loop",
                        lambda: Loop(asyncio.events._get_running_loop()))  # type: ignore[attr-defined]
    run(project(tmp_path, text, engine).up(UpOptions()))
    assert set(naps[:100]) == {ops.FAST_POLL} and set(naps[101:150]) == {0.05}
    assert sorted(ids(engine)) == ["p-db-1", "p-web-1"]
