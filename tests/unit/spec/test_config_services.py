"""`composer config SERVICE...`: the named services, their dependencies and what they use."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from composer.cli import main

from .test_include import _validator

Write = Callable[[str, str], Path]

STACK = """
services:
  proxy:
    image: nginx
    depends_on: [web]
    networks: [front]
  web:
    image: app
    links: [cache]
    depends_on: {db: {condition: service_healthy}}
    networks: [front, back]
    secrets: [key]
  db:
    image: postgres
    healthcheck: {test: pg_isready}
    volumes: ["dbdata:/var/lib/postgresql/data", "./init:/init"]
    networks: [back]
    configs: [dbconf]
  cache: {image: redis, volumes: ["cachedata:/data"]}
  worker: {image: app, volumes: ["shared:/s"], secrets: [other]}
  debug: {image: busybox, profiles: [tools], depends_on: [cache]}
networks: {front: {}, back: {}, unused: {}}
volumes: {dbdata: {}, cachedata: {}, shared: {}}
secrets: {key: {file: ./key.txt}, other: {file: ./other.txt}}
configs: {dbconf: {file: ./db.conf}}
"""


def config(project: Path, capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["--project-directory", str(project), "config", "--format", "json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_named_service_with_its_dependencies_and_resources(write: Write, project: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    write("compose.yaml", STACK)
    out = config(project, capsys, "web")
    # web, what it depends on (depends_on and links, transitively); not its dependents
    assert sorted(out["services"]) == ["cache", "db", "web"]
    assert sorted(out["networks"]) == ["back", "default", "front"]  # cache is on the default one
    assert sorted(out["volumes"]) == ["cachedata", "dbdata"]
    assert sorted(out["secrets"]) == ["key"] and sorted(out["configs"]) == ["dbconf"]
    assert out["name"] == "myproject"
    errors = list(_validator().iter_errors(out))
    assert not errors, errors[0].message


def test_several_names_and_unused_sections_left_out(write: Write, project: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    write("compose.yaml", STACK)
    out = config(project, capsys, "cache", "worker")
    assert sorted(out["services"]) == ["cache", "worker"]
    assert sorted(out["networks"]) == ["default"]
    assert sorted(out["volumes"]) == ["cachedata", "shared"]
    assert sorted(out["secrets"]) == ["other"]
    assert "configs" not in out
    everything = config(project, capsys)  # no name: the whole stack, as before
    assert sorted(everything["services"]) == ["cache", "db", "proxy", "web", "worker"]
    assert "unused" in everything["networks"]


def test_a_named_service_of_an_inactive_profile_is_printed(write: Write, project: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    write("compose.yaml", STACK)
    out = config(project, capsys, "debug")
    assert sorted(out["services"]) == ["cache", "debug"]
    assert out["services"]["debug"]["profiles"] == ["tools"]


def test_yaml_output_and_listing_flags_follow_the_selection(write: Write, project: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    write("compose.yaml", STACK)
    assert main(["--project-directory", str(project), "config", "db"]) == 0
    assert sorted(yaml.safe_load(capsys.readouterr().out)["services"]) == ["db"]
    assert main(["--project-directory", str(project), "config", "--services", "web"]) == 0
    assert sorted(capsys.readouterr().out.split()) == ["cache", "db", "web"]
    assert main(["--project-directory", str(project), "config", "--volumes", "db"]) == 0
    assert capsys.readouterr().out.split() == ["dbdata"]


def test_unknown_service_is_one_line_listing_known_ones(write: Write, project: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    write("compose.yaml", STACK)
    assert main(["--project-directory", str(project), "config", "web", "nope"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().splitlines() == [
        "error: no such service: nope (known: cache, db, debug, proxy, web, worker)"
    ]


def test_included_services_can_be_named(write: Write, project: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    write("sub/compose.yaml", "services: {db: {image: postgres, volumes: ['d:/d']}}\nvolumes: {d: {}}\n")
    write("compose.yaml", "include: [sub/compose.yaml]\nservices: {web: {image: x, depends_on: [db]}, other: {image: y}}\n")
    out = config(project, capsys, "web")
    assert sorted(out["services"]) == ["db", "web"]
    assert sorted(out["volumes"]) == ["d"]
