"""--dry-run through the CLI on an in-memory engine that fails the test on any change: every
mutating verb prints what it would do (Compose's `DRY-RUN MODE - ` lines) and changes
nothing; read-only verbs answer from the engine as usual."""
from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from composer import dryrun
from composer.cli import main
from composer.dryrun import DryRunEngine
from composer.operations import Project, UpOptions
from composer.spec import LoadOptions, load_stack
from runtime.api import EngineAPI
from tests.unit.memengine import MemEngine

# What only reads. Everything else of the Engine API changes something and must never reach
# the real engine under --dry-run.
READS = frozenset({
    "inspect_container", "list_containers", "wait_container", "logs", "top", "stats",
    "stat_path", "get_archive", "export_container", "attach_container", "list_networks",
    "list_volumes", "list_images", "inspect_image", "events",
})
API = frozenset(n for n, _ in inspect.getmembers(EngineAPI, inspect.isfunction)
                if not n.startswith("_"))
MUTATIONS = API - READS

STACK = """
services:
  db:
    image: dbimg
    command: sleep 600
    healthcheck: {test: ["CMD", "true"]}
  web:
    image: webimg
    command: sleep 600
    depends_on: {db: {condition: service_healthy}}
    networks: [front]
    volumes: [data:/data]
networks:
  front: {}
volumes:
  data: {}
"""


class Guard:
    """The real engine behind the dry run: reads pass, any change fails the test."""

    def __init__(self, inner: MemEngine) -> None:
        self.inner = inner
        self.reads: list[str] = []

    async def close(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        if name in MUTATIONS:
            raise AssertionError(f"dry run called the engine's {name}")
        self.reads.append(name)
        return getattr(self.inner, name)


def test_every_engine_call_is_classified_and_pretended() -> None:
    # a new Engine API call must be sorted here, and the dry-run engine must answer it
    assert READS <= API
    missing = sorted(n for n in API if not callable(getattr(DryRunEngine, n, None)))
    assert missing == []


@pytest.fixture(autouse=True)
def _no_dry_run_after() -> Iterator[None]:
    """--dry-run is a setting of the process (composer.cli.output.SETTINGS): the tests after
    these must not inherit it."""
    from composer.cli import output

    yield
    output.SETTINGS.dry_run = False


@pytest.fixture
def mem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MemEngine:
    engine = MemEngine({"dbimg": "sha256:d1", "webimg": "sha256:w1"})
    engine.health["db"] = "healthy"

    async def dry() -> DryRunEngine:
        return DryRunEngine(Guard(engine))

    monkeypatch.setattr(dryrun, "connect", dry)
    for name in ("COMPOSE_PROGRESS", "COMPOSE_ANSI", "COMPOSE_STATUS_STDOUT"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "compose.yaml").write_text(STACK)
    monkeypatch.chdir(tmp_path)
    return engine


def snapshot(engine: MemEngine) -> tuple[Any, ...]:
    return (dict(engine.containers), set(engine.networks), dict(engine.volumes),
            dict(engine.images or {}), list(engine.log), list(engine.pulled), list(engine.built))


def cli(folder: Path, *argv: str) -> int:
    return main(["--project-directory", str(folder), "-p", "p", "--dry-run", *argv])


def really_up(folder: Path, engine: MemEngine) -> None:
    stack = load_stack(LoadOptions(environ={}, working_dir=str(folder), project_name="p"))
    asyncio.run(Project(stack, engine).up(UpOptions()))  # type: ignore[arg-type]


def test_up_on_nothing_shows_the_whole_plan_and_creates_nothing(
        tmp_path: Path, mem: MemEngine, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(mem)
    assert cli(tmp_path, "up", "-d") == 0
    err = capsys.readouterr().err.splitlines()
    assert snapshot(mem) == before
    for line in ("DRY-RUN MODE -  Network p_front  Created",
                 'DRY-RUN MODE -  Volume "p_data"  Created',
                 "DRY-RUN MODE -  Container p-db-1  Created",
                 "DRY-RUN MODE -  Container p-db-1  Healthy",  # the dependency "waited" for
                 "DRY-RUN MODE -  Container p-web-1  Started"):
        assert line in err
    assert all(line.startswith("DRY-RUN MODE - ") for line in err)
    # as the real run would (and Compose): every container created before any starts, web
    # started once db is healthy
    at = {line.removeprefix("DRY-RUN MODE -  "): i for i, line in enumerate(err)}
    assert at["Container p-web-1  Created"] < at["Container p-db-1  Starting"]
    assert at["Container p-db-1  Healthy"] < at["Container p-web-1  Starting"]


def test_attached_up_ends_after_the_plan(tmp_path: Path, mem: MemEngine,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(tmp_path, "up") == 0
    out, err = capsys.readouterr()
    assert "interactive run is not supported in dry-run mode" in out
    assert "DRY-RUN MODE -  Container p-web-1  Started" in err
    assert mem.containers == {}


@pytest.mark.parametrize(("argv", "expect"), [
    (["down", "-v"], ["Container p-web-1  Removed", "Network p_front  Removed",
                      'Volume p_data  Removed']),
    (["stop"], ["Container p-web-1  Stopped", "Container p-db-1  Stopped"]),
    (["restart", "web"], ["Container p-web-1  Restarting"]),
    (["kill"], ["Container p-web-1  Killed"]),
    (["pause", "web"], ["Container p-web-1  Paused"]),
    (["rm", "-sf", "web"], ["Container p-web-1  Removed"]),
    (["up", "-d", "--force-recreate", "web"], ["Container p-web-1  Recreated"]),
    (["scale", "web=2"], ["Container p-web-2  Started"]),
    (["pull"], ["Image webimg  Pulled"]),
    (["exec", "-T", "web", "ls", "/"], ["Container p-web-1  Executing ls /"]),
    # on a terminal (-t): shown, then the command ends there, successfully
    (["exec", "-t", "web", "sh"], ["Container p-web-1  Executing sh"]),
    (["commit", "web", "snap:1"], ["Container p-web-1  Committing to snap:1"]),
    (["run", "--rm", "-T", "web", "echo", "hi"], ["Running echo hi", "Removing"]),
    (["cp", "compose.yaml", "web:/tmp/"], ["Container p-web-1  Copied"]),
])
def test_changing_verbs_on_a_running_stack_change_nothing(
        tmp_path: Path, mem: MemEngine, capsys: pytest.CaptureFixture[str],
        argv: list[str], expect: list[str]) -> None:
    really_up(tmp_path, mem)
    before = snapshot(mem)
    capsys.readouterr()
    assert cli(tmp_path, *argv) == 0
    err = capsys.readouterr().err
    assert snapshot(mem) == before
    for part in expect:
        assert any(line.startswith("DRY-RUN MODE - ") and part in line
                   for line in err.splitlines()), (part, err)


def test_a_dry_run_of_exec_never_reaches_a_running_composerd(
        tmp_path: Path, mem: MemEngine, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """With -p NAME the quick path serves exec from the containers' labels: under --dry-run
    it would have run the command in the real container. The slow path pretends instead."""
    from composer.cli import quick

    def real_daemon() -> None:
        raise AssertionError("a dry run reached the running composerd")

    monkeypatch.setattr(quick, "quick_client", real_daemon)
    really_up(tmp_path, mem)
    capsys.readouterr()
    for argv in (["-p", "p"], ["--project-directory", str(tmp_path), "-p", "p"]):
        assert main([*argv, "--dry-run", "exec", "-T", "web", "ls", "/"]) == 0
        assert "Container p-web-1  Executing ls /" in capsys.readouterr().err


def test_read_only_verbs_answer_from_the_engine(tmp_path: Path, mem: MemEngine,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    really_up(tmp_path, mem)
    capsys.readouterr()
    assert cli(tmp_path, "ps", "--format", "{{.Name}} {{.State}}") == 0
    assert capsys.readouterr().out.split() == ["p-db-1", "running", "p-web-1", "running"]


def test_the_overlay_sees_its_own_changes() -> None:
    real = MemEngine()
    eng = DryRunEngine(Guard(real))

    async def go() -> None:
        from runtime.types import ContainerSpec

        info = await eng.create_container(ContainerSpec(name="a", image="x"))
        assert [c.name for c in await eng.list_containers(all=True)] == ["a"]
        assert (await eng.start_container(info.id)).state == "running"
        await eng.remove_container("a", force=True)
        assert await eng.list_containers(all=True) == []

    asyncio.run(go())
    assert [m.call for m in eng.mutations] == [
        "create_container", "start_container", "remove_container"]
    assert real.containers == {}


def test_no_daemon_reads_as_nothing_and_starts_none() -> None:
    eng = DryRunEngine(None)

    async def go() -> None:
        assert await eng.list_containers(all=True) == []
        assert await eng.list_networks() == []
        with pytest.raises(LookupError):
            await eng.inspect_image("busybox")
        async for _ in eng.pull_image("busybox"):
            pass
        assert (await eng.inspect_image("busybox")).tags == ("busybox",)

    asyncio.run(go())


def test_json_progress_marks_each_object(tmp_path: Path, mem: MemEngine,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["--project-directory", str(tmp_path), "-p", "p", "--progress", "json",
                 "--dry-run", "up", "-d"]) == 0
    msgs = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert {"id": "Container p-web-1", "text": "Started", "dry_run": True} in msgs
    assert all(m.get("dry_run") is True for m in msgs)
    assert mem.containers == {}
