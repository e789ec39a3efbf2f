"""Services named on the command line run whatever their profiles (as docker compose):
the CLI wiring (`up debug`, `run debug ...`), then `up` / `down` on an in-memory engine, where
containers of services whose profile is not active are neither started nor orphans."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from composer import labels as L
from composer.cli import build_parser, common
from composer.operations import Project, UpOptions
from composer.spec import LoadOptions, Stack, load_stack
from runtime.types import ContainerSpec
from tests.unit.memengine import MemEngine

STACK = """
services:
  web: {image: x}
  debug: {image: x, profiles: [tools], depends_on: [helper]}
  helper: {image: x, profiles: [tools]}
  db: {image: x, profiles: [data]}
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "compose.yaml").write_text(STACK)
    return tmp_path


def loaded(folder: Path, *argv: str) -> Stack:
    """The stack `with_project` hands to a verb for `composer -p proj ARGV`."""
    # with -f: a stack file is read for every verb (with -p alone, verbs such as `stop`
    # work from the container labels, as docker compose)
    args = build_parser().parse_args(["-p", "proj", "-f", str(folder / "compose.yaml"),
                                      "--project-directory", str(folder), *argv])
    seen: list[Stack] = []

    class NoEngine:
        async def close(self) -> None:
            pass

    async def fake_engine() -> NoEngine:
        return NoEngine()

    async def verb(project: Project) -> int:
        seen.append(project.stack)
        return 0

    mp = pytest.MonkeyPatch()
    mp.setattr(common, "engine", fake_engine)
    try:
        asyncio.run(common.with_project(args, verb, lock=False))
    finally:
        mp.undo()
    return seen[0]


@pytest.mark.parametrize(("argv", "enabled"), [
    (["up", "-d"], ["web"]),
    (["up", "-d", "debug"], ["debug", "helper", "web"]),
    (["run", "--rm", "debug", "sh", "-c", "true"], ["debug", "helper", "web"]),
    (["--profile", "data", "up", "helper"], ["db", "debug", "helper", "web"]),
    (["stop", "db"], ["db", "web"]),
    (["up", "nope"], ["web"]),  # unknown: left to the verb's own error
])
def test_cli_enables_the_profiles_of_named_services(folder: Path, argv: list[str], enabled: list[str]) -> None:
    assert sorted(loaded(folder, *argv).services) == enabled


def test_targeted_services_reads_both_argument_shapes() -> None:
    parser = build_parser()
    assert common.targeted_services(parser.parse_args(["up", "a", "b"])) == ["a", "b"]
    assert common.targeted_services(parser.parse_args(["run", "a", "ls", "b"])) == ["a"]
    assert common.targeted_services(parser.parse_args(["ps", "--services"])) == []
    assert common.targeted_services(parser.parse_args(["down"])) == []


def project(folder: Path, engine: MemEngine, events: list[tuple[str, str]], *targets: str,
            profiles: tuple[str, ...] = ()) -> Project:
    st = load_stack(LoadOptions(environ={}, working_dir=str(folder), project_name="proj", profiles=profiles))
    return Project(st.with_services_enabled(targets), engine,  # type: ignore[arg-type]
                   progress=lambda obj, status: events.append((obj, status)))


def test_up_a_profiled_service_then_up_and_down_leave_it_alone(folder: Path) -> None:
    engine, events = MemEngine(), []  # type: ignore[var-annotated]

    async def scenario() -> None:
        # `up -d debug`: debug and its dependency in the same profile, nothing else
        await project(folder, engine, events, "debug").up(UpOptions(services=["debug"]))
        assert engine.running() == ["debug", "helper"]
        # plain `up -d` (even --remove-orphans): web starts; debug/helper are not orphans
        events.clear()
        await project(folder, engine, events).up(UpOptions(remove_orphans=True))
        assert engine.running() == ["debug", "helper", "web"]
        assert not [e for e in events if e[0] == "Warning"], events
        # `up -d web` alone: the other running services are not orphans either
        events.clear()
        await project(folder, engine, events, "web").up(UpOptions(services=["web"]))
        assert not [e for e in events if e[0] == "Warning"], events
        # plain `down`: like docker compose, containers of inactive profiles stay, and the
        # network they use is reported in use instead of failing the command
        events.clear()
        await project(folder, engine, events).down()
        assert engine.running() == ["debug", "helper"]
        assert ("Network proj_default", "Resource is still in use") in events
        assert not [e for e in events if e[0] == "Warning"], events
        # `--profile tools down` removes them
        events.clear()
        await project(folder, engine, events, profiles=("tools",)).down()
        assert engine.containers == {} and engine.networks == set()
        assert ("Network proj_default", "Removed") in events

    asyncio.run(scenario())


def test_project_for_unrelated_service_keeps_unknown_containers_orphans(folder: Path) -> None:
    """A container whose service is in no stack at all is still an orphan (with a warning)."""
    engine, events = MemEngine(), []  # type: ignore[var-annotated]

    async def scenario() -> None:
        spec = ContainerSpec(name="proj-gone-1", image="x",
                             labels=L.container_labels("proj", "gone", 1, "h"))
        info = await engine.create_container(spec)
        await engine.start_container(info.id)
        await project(folder, engine, events).up(UpOptions())
        assert any(e[0] == "Warning" and "proj-gone-1" in e[1] for e in events), events

    asyncio.run(scenario())
