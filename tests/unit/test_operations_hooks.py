"""Lifecycle hooks on an in-memory engine: when pre_start, post_start and pre_stop run, in
which order against the containers' start and stop, with which settings, and what a failure
does (Compose's semantics: docker/compose pkg/compose/{pre_start,hook,convergence,down}.go)."""
from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from composer import labels as L
from composer.errors import ComposerError
from composer.operations import Project, UpOptions
from composer.spec import LoadOptions, load_stack
from runtime.api import ExecResult
from tests.unit.memengine import MemEngine

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def project(tmp_path: Path, text: str, engine: MemEngine, environ: dict[str, str] | None = None,
            output: list[tuple[str, str]] | None = None) -> Project:
    (tmp_path / "compose.yaml").write_text(text)
    stack = load_stack(LoadOptions(environ=environ or {}, working_dir=str(tmp_path), project_name="p"))
    p = Project(stack, engine)  # type: ignore[arg-type]
    if output is not None:
        p.hook_output = lambda source, line: output.append((source, line))
    return p


PRE = """
services:
  db:
    image: dbimg
    volumes: [data:/data, /anon]
    tmpfs: [/scratch]
    environment: {SVC: db, BOTH: service}
    pre_start:
      - command: first
        user: root
        environment: {BOTH: hook}
      - command: second
        image: tool:1
        working_dir: /data
        privileged: true
  web:
    image: webimg
    depends_on: [db]
volumes:
  data:
"""


def test_pre_start_hooks_run_in_order_in_their_own_containers_before_the_service(tmp_path: Path) -> None:
    engine = MemEngine()
    out: list[tuple[str, str]] = []
    engine.hook_output["first"] = "preparing\ndone\n"
    run(project(tmp_path, PRE, engine, output=out).up(UpOptions()))
    # as Compose's `up`: every service's containers are created first, then at db's start
    # its hooks run before db itself starts
    assert [s for s in engine.log if s[0] in ("create", "start", "hook")] == [
        ("create", "p-db-1"), ("create", "p-web-1"),
        ("create", "p-db-1-pre_start-0"), ("hook", "first"),
        ("create", "p-db-1-pre_start-1"), ("hook", "second"),
        ("start", "p-db-1"), ("start", "p-web-1"),
    ]
    assert ("remove", "p-db-1-pre_start-0") in engine.log and ("remove", "p-db-1-pre_start-1") in engine.log
    assert not [c for c in engine.containers.values() if L.HOOK in c.labels]  # removed after
    assert out == [("db pre_start[0] ->", "preparing"), ("db pre_start[0] ->", "done")]


def test_a_pre_start_container_has_the_services_volumes_networks_image_and_environment(tmp_path: Path) -> None:
    engine = MemEngine()
    specs = []
    original = engine.create_container

    async def record(spec):  # type: ignore[no-untyped-def]
        specs.append(spec)
        return await original(spec)

    engine.create_container = record  # type: ignore[method-assign]
    run(project(tmp_path, PRE, engine).up(UpOptions()))
    db = next(s for s in specs if s.name == "p-db-1")
    first, second = (s for s in specs if "pre_start" in s.name)
    db_mounts = next(c for c in engine.containers.values() if c.name == "p-db-1").mounts
    assert first.mounts == second.mounts == tuple(m for m in db_mounts if m.type != "tmpfs")
    assert {m.target for m in first.mounts} == {"/data", "/anon"}  # the anonymous one named
    assert first.image == "dbimg" and second.image == "tool:1"
    assert first.command == ("first",) and first.user == "root" and not first.privileged
    assert first.env == {"SVC": "db", "BOTH": "hook"}
    assert second.working_dir == "/data" and second.privileged
    assert [n.network for n in first.networks] == [n.network for n in db.networks] == ["p_default"]
    assert first.networks[0].aliases == ()  # `db` keeps resolving to the service only
    assert first.labels == {L.PROJECT: "p", L.SERVICE: "db", L.HOOK: "pre_start",
                            L.VERSION: L.COMPOSER_VERSION}
    assert first.restart == "no"


def test_a_failing_pre_start_hook_stops_the_service_and_its_dependents(tmp_path: Path) -> None:
    engine = MemEngine()
    engine.hook_exit["first"] = 17
    engine.hook_output["first"] = "migrating\nerror: no schema\n"
    with pytest.raises(ComposerError) as err:
        run(project(tmp_path, PRE, engine).up(UpOptions()))
    assert str(err.value) == "service db: pre_start[0] exited with code 17: error: no schema"
    states = {c.name: c.state for c in engine.containers.values()}
    # created (as Compose, before any start), not started; the hook's container gone
    assert states == {"p-db-1": "created", "p-web-1": "created"}
    assert ("hook", "second") not in engine.log  # the later hooks do not run
    assert ("start", "p-web-1") not in engine.log


ONCE = """
services:
  s:
    image: img
    environment: {V: "${V:-1}"}
    deploy: {replicas: 2}
    pre_start: [{command: token}]
"""


def hooks_run(engine: MemEngine) -> int:
    return sum(1 for v, _ in engine.log if v == "hook")


def test_pre_start_runs_once_per_service_and_again_only_when_no_replica_runs(tmp_path: Path) -> None:
    engine = MemEngine()
    run(project(tmp_path, ONCE, engine).up(UpOptions()))
    assert hooks_run(engine) == 1  # once for both replicas (per_replica: false)
    targets = [s for s in engine.log if s[0] == "create"][:2]
    assert targets == [("create", "p-s-1"), ("create", "p-s-2")]
    run(project(tmp_path, ONCE, engine).up(UpOptions()))
    assert hooks_run(engine) == 1  # unchanged: nothing recreated, nothing re-run
    run(project(tmp_path, ONCE, engine).up(UpOptions(scale={"s": 3})))
    assert hooks_run(engine) == 1  # scaling up a running service does not re-run it
    run(project(tmp_path, ONCE, engine).restart())
    assert hooks_run(engine) == 1  # nor does a restart
    run(project(tmp_path, ONCE, engine, environ={"V": "2"}).up(UpOptions()))
    assert hooks_run(engine) == 2  # the spec changed: recreated, re-run once
    run(project(tmp_path, ONCE, engine).up(UpOptions(force_recreate=True)))
    assert hooks_run(engine) == 3
    run(project(tmp_path, ONCE, engine).stop())
    run(project(tmp_path, ONCE, engine).start())
    assert hooks_run(engine) == 4  # `start` of a stopped service, as Compose's startService


def test_up_no_start_does_not_run_pre_start(tmp_path: Path) -> None:
    engine = MemEngine()
    run(project(tmp_path, ONCE, engine).up(UpOptions(no_start=True)))
    assert hooks_run(engine) == 0


def test_a_stale_hook_container_is_removed_before_the_hooks_run_and_by_down(tmp_path: Path) -> None:
    engine = MemEngine()
    p = project(tmp_path, ONCE, engine)
    from runtime.types import ContainerSpec

    stale = run(engine.create_container(ContainerSpec("p-s-1-pre_start-0", "img", labels={
        L.PROJECT: "p", L.SERVICE: "s", L.HOOK: "pre_start"})))
    assert run(p.containers(all=True)) == []  # not a container of the service
    run(p.up(UpOptions()))
    assert stale.id not in engine.containers
    stale = run(engine.create_container(ContainerSpec("p-s-1-pre_start-0", "img", labels={
        L.PROJECT: "p", L.SERVICE: "s", L.HOOK: "pre_start"})))
    run(project(tmp_path, ONCE, engine).down())
    assert engine.containers == {}


def test_a_missing_hook_image_is_pulled(tmp_path: Path) -> None:
    engine = MemEngine({"dbimg": "sha256:d", "webimg": "sha256:w"})
    run(project(tmp_path, PRE, engine).up(UpOptions()))
    assert engine.pulled == ["tool:1"]


EXEC = """
services:
  app:
    image: img
    post_start:
      - command: chown -R 1000 /data
        user: root
        privileged: true
        working_dir: /data
        environment: {X: "1"}
      - command: [echo, second]
    pre_stop:
      - command: flush
  web:
    image: img
    depends_on: [app]
"""


def test_post_start_hooks_are_execd_after_the_start_with_their_settings(tmp_path: Path) -> None:
    engine = MemEngine()
    engine.exec_results["second"] = ExecResult(0, "hello\n", "warn\n")
    out: list[tuple[str, str]] = []
    run(project(tmp_path, EXEC, engine, output=out).up(UpOptions()))
    assert [s for s in engine.log if s[1].startswith("p-app-1")] == [
        ("create", "p-app-1"), ("start", "p-app-1"),
        ("exec", "p-app-1:/data"), ("exec", "p-app-1:second"),
    ]
    assert engine.execs[0] == {"name": "p-app-1", "argv": ["chown", "-R", "1000", "/data"], "user": "root",
                               "env": {"X": "1"}, "workdir": "/data", "privileged": True}
    assert engine.execs[1] == {"name": "p-app-1", "argv": ["echo", "second"], "user": None, "env": {},
                               "workdir": None, "privileged": False}
    assert out == [("p-app-1 ->", "hello"), ("p-app-1 ->", "warn")]


def test_a_failing_post_start_hook_fails_the_start_and_the_dependents(tmp_path: Path) -> None:
    engine = MemEngine()
    engine.exec_results["/data"] = ExecResult(127, "", "sh: chown: not found\n")
    with pytest.raises(ComposerError) as err:
        run(project(tmp_path, EXEC, engine).up(UpOptions()))
    assert str(err.value) == ("service app: post_start[0] hook in container p-app-1 exited with "
                              "code 127: sh: chown: not found")
    assert engine.running() == ["app"]  # as Compose: started, the hook failed, it keeps running
    assert ("exec", "p-app-1:second") not in engine.log
    assert ("start", "p-web-1") not in engine.log  # created before app started, never started


def test_pre_stop_runs_before_stop_down_and_restart_but_not_before_a_recreate(tmp_path: Path) -> None:
    engine = MemEngine()
    run(project(tmp_path, EXEC, engine).up(UpOptions()))

    def since(mark: int) -> list[tuple[str, str]]:
        return [s for s in engine.log[mark:] if s[1].startswith("p-app-1") and s[0] != "create"]

    mark = len(engine.log)
    run(project(tmp_path, EXEC, engine).stop(["app"]))
    assert since(mark) == [("exec", "p-app-1:flush"), ("stop", "p-app-1")]
    mark = len(engine.log)
    run(project(tmp_path, EXEC, engine).start(["app"]))
    assert since(mark) == [("start", "p-app-1"), ("exec", "p-app-1:/data"), ("exec", "p-app-1:second")]
    mark = len(engine.log)
    run(project(tmp_path, EXEC, engine).restart(["app"]))
    assert since(mark) == [("exec", "p-app-1:flush"), ("stop", "p-app-1"), ("start", "p-app-1"),
                           ("exec", "p-app-1:/data"), ("exec", "p-app-1:second")]
    mark = len(engine.log)
    run(project(tmp_path, EXEC, engine).up(UpOptions(force_recreate=True, services=["app"])))
    assert ("exec", "p-app-1:flush") not in engine.log[mark:]  # Compose stops a replaced one plainly
    mark = len(engine.log)
    run(project(tmp_path, EXEC, engine).down())
    assert since(mark) == [("exec", "p-app-1:flush"), ("stop", "p-app-1"), ("remove", "p-app-1")]


def test_a_failing_pre_stop_hook_fails_down_and_leaves_that_container_running(tmp_path: Path) -> None:
    engine = MemEngine()
    run(project(tmp_path, EXEC, engine).up(UpOptions()))
    engine.exec_results["flush"] = ExecResult(1, "", "flush: disk full\n")
    with pytest.raises(ComposerError) as err:
        run(project(tmp_path, EXEC, engine).down())
    assert str(err.value) == ("service app: pre_stop[0] hook in container p-app-1 exited with "
                              "code 1: flush: disk full")
    assert engine.running() == ["app"]  # as Compose: the stop did not happen
    assert "p-web-1" not in {c.name for c in engine.containers.values()}  # the rest went
    with pytest.raises(ComposerError, match="pre_stop"):
        run(project(tmp_path, EXEC, engine).stop())
    assert engine.running() == ["app"]
