"""`build --build-arg/--pull/-q/--print`, `pull --policy/--ignore-*`, `down --rmi` on an
in-memory engine: what is built, pulled and removed, and what is reported."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from composer.buildplan import bake_config, merged_args, parse_build_args
from composer.errors import ComposerError
from composer.operations import Project, UpOptions
from composer.spec import LoadOptions, load_stack
from tests.unit.memengine import MemEngine

STACK = """
services:
  app:
    build:
      context: .
      args: {A: from-file, B: null, C: "x${'{'}y"}
      labels: {org.example: yes}
      tags: [extra:1]
  db: {image: dbimg, pull_policy: missing}
  cache: {image: cacheimg, build: ., pull_policy: always}
  web: {image: webimg, depends_on: [db]}
"""


def project(tmp_path: Path, engine: MemEngine, environ: dict[str, str] | None = None,
            events: list[tuple[str, str]] | None = None) -> Project:
    (tmp_path / "compose.yaml").write_text(STACK.replace("${'{'}", "$${"))
    stack = load_stack(LoadOptions(environ=environ or {}, working_dir=str(tmp_path),
                                   project_name="p"))
    sink = events if events is not None else []
    return Project(stack, engine, progress=lambda o, s: sink.append((o, s)))  # type: ignore[arg-type]


def test_build_args_from_the_command_line_win_and_a_bare_key_reads_the_environment(
        tmp_path: Path) -> None:
    engine = MemEngine({})
    p = project(tmp_path, engine, environ={"B": "from-env", "D": "d-env"})
    cli = parse_build_args(["A=cli", "D", "E"])
    asyncio.run(p.build(["app"], build_args=cli, pull=True, quiet=True))
    req = engine.requests[0]
    # E has no value anywhere: left out (the Dockerfile's default applies)
    assert req.build_args == {"A": "cli", "B": "from-env", "C": "x${y", "D": "d-env"}
    assert req.pull is True


def test_quiet_build_reports_nothing(tmp_path: Path) -> None:
    events: list[tuple[str, str]] = []
    asyncio.run(project(tmp_path, MemEngine({}), events=events).build(["app"], quiet=True))
    assert events == []
    asyncio.run(project(tmp_path, MemEngine({}), events=events).build(["app"]))
    assert ("Image p-app", "Built") in events


@pytest.mark.parametrize("bad", ["=x", "A B=1", ""])
def test_a_malformed_build_arg_is_one_line(bad: str) -> None:
    with pytest.raises(ComposerError, match="--build-arg"):
        parse_build_args([bad])


def test_print_is_compose_bake_file(tmp_path: Path) -> None:
    p = project(tmp_path, MemEngine({}))
    bake = bake_config(p.stack, ["app"], p.image_ref, {"A": "cli"}, pull=True)
    assert bake["group"] == {"default": {"targets": ["app"]}}
    assert set(bake["target"]) == {"app", "cache"}  # every buildable service is a target
    app = bake["target"]["app"]
    assert app["context"] == str(tmp_path)
    assert app["dockerfile"] == f"{tmp_path}/Dockerfile"
    assert app["args"] == {"A": "cli", "C": "x$${y"}  # ${ escaped, B (no value) left out
    assert app["tags"] == ["extra:1", "p-app"]
    assert app["labels"]["org.example"] == "yes"
    assert app["labels"]["com.docker.compose.service"] == "app"
    assert app["pull"] is True and "no-cache" not in app
    assert merged_args(p.stack, "cache", {}) == {}


def test_pull_follows_each_policy_and_the_policy_flag(tmp_path: Path) -> None:
    engine = MemEngine({"dbimg": "sha256:d"})
    events: list[tuple[str, str]] = []
    p = project(tmp_path, engine, events=events)
    asyncio.run(p.pull_images())
    # db is present (missing: skipped); app has no image: nothing to pull
    assert sorted(engine.pulled) == ["cacheimg", "webimg"]
    assert ("Image dbimg", "Skipped - Image is already present locally") in events
    engine.pulled.clear()
    asyncio.run(p.pull_images(policy="always", ignore_buildable=True))
    assert sorted(engine.pulled) == ["dbimg", "webimg"]  # cache can be built: skipped
    engine.pulled.clear()
    asyncio.run(p.pull_images(["web"]))
    assert engine.pulled == ["webimg"]


def test_pull_failures_end_it_unless_ignored_and_buildable_ones_only_warn(
        tmp_path: Path) -> None:
    engine = MemEngine({})
    engine.pull_fails = True
    events: list[tuple[str, str]] = []
    p = project(tmp_path, engine, events=events)
    with pytest.raises(ComposerError, match="service db"):
        asyncio.run(p.pull_images(["db"]))
    asyncio.run(p.pull_images(["cache"]))  # buildable: a warning naming the fix
    assert any(o == "Warning" and "composer build cache" in s for o, s in events)
    events.clear()
    asyncio.run(p.pull_images(["db", "web"], ignore_failures=True))
    assert [o for o, _ in events].count("Warning") == 2


def test_down_rmi_local_removes_only_built_images_and_all_every_one(tmp_path: Path) -> None:
    engine = MemEngine({"dbimg": "sha256:d", "webimg": "sha256:w", "cacheimg": "sha256:c",
                        "p-app": "sha256:a"})
    p = project(tmp_path, engine)
    asyncio.run(p.up(UpOptions(services=["web", "app"])))
    asyncio.run(p.down(rmi="local"))
    assert sorted(engine.images or {}) == ["cacheimg", "dbimg", "webimg"]
    asyncio.run(p.down(rmi="all"))
    assert engine.images == {}
    asyncio.run(p.down(rmi="all"))  # nothing left: not an error


def test_an_image_in_use_is_kept_with_a_warning(tmp_path: Path) -> None:
    engine = MemEngine({"dbimg": "sha256:d", "webimg": "sha256:w"})
    events: list[tuple[str, str]] = []
    p = project(tmp_path, engine, events=events)
    asyncio.run(p.up(UpOptions(services=["db"])))
    asyncio.run(p.remove_images("all"))
    assert "dbimg" in (engine.images or {})
    assert any(o == "Warning" and "dbimg" in s for o, s in events)
