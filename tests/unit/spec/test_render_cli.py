"""`composer config`: the Compose `config` shape, and what it prints loads back to the same model."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from composer.cli import main
from composer.spec import LoadOptions, load_stack
from composer.spec.render import render_stack

from .conftest import Loader
from .test_service import FULL

SMALL = """
services:
  web:
    image: nginx
    command: echo "$$HOME"
    ports: ["8080:80/udp", "127.0.0.1:6005-6015:81"]
    volumes: ["./html:/usr/share/nginx/html:ro", "data:/data"]
    environment: [A=1]
    depends_on: [db]
    healthcheck: {test: curl x, interval: 90s}
  db: {image: postgres, profiles: [dbp]}
volumes: {data: {}}
"""


def test_render_shape(load: Loader, project: Path) -> None:
    out = render_stack(load(SMALL, profiles=["dbp"]))
    web = out["services"]["web"]
    assert out["name"] == "myproject"
    assert web["command"] == ["echo", "$$HOME"]
    assert web["ports"] == [
        {"mode": "ingress", "target": 80, "published": "8080", "protocol": "udp"},
        # a host range for one container port stays one entry, as docker compose prints it
        {"mode": "ingress", "target": 81, "published": "6005-6015", "protocol": "tcp", "host_ip": "127.0.0.1"},
    ]
    assert web["volumes"] == [
        {"type": "bind", "source": str(project / "html"), "target": "/usr/share/nginx/html",
         "read_only": True, "bind": {"create_host_path": True}},
        {"type": "volume", "source": "data", "target": "/data", "volume": {}},
    ]
    assert web["environment"] == {"A": "1"}
    assert web["depends_on"] == {"db": {"condition": "service_started", "required": True, "restart": False}}
    assert web["healthcheck"] == {"test": ["CMD-SHELL", "curl x"], "interval": "1m30s"}
    assert out["networks"] == {"default": {"name": "myproject_default"}}
    assert out["volumes"] == {"data": {"name": "myproject_data"}}


@pytest.mark.parametrize("text", [SMALL, FULL])
def test_render_round_trips(load: Loader, write: object, project: Path, text: str) -> None:
    (project / "web.env").write_text("X=1\n")
    first = load(text, profiles=["*"])
    rendered = yaml.safe_dump(render_stack(first))
    write("again.yaml", rendered)  # type: ignore[operator]
    second = load_stack(LoadOptions(files=[str(project / "again.yaml")], environ={}, profiles=["*"],
                                    project_directory=str(project)))
    assert second.services == first.services
    assert second.networks.keys() == first.networks.keys()
    assert render_stack(second) == render_stack(first)
    errors = list(_validator().iter_errors(yaml.safe_load(rendered)))
    assert not errors, f"config output is schema-invalid: {errors[0].message} at {list(errors[0].absolute_path)}"


def _validator() -> jsonschema.Draft202012Validator:
    schema = Path(__file__).resolve().parent / "data" / "compose-spec.json"  # vendored (tests/unit/spec/data)
    return jsonschema.Draft202012Validator(json.loads(schema.read_text()))


def run_cli(project: Path, *args: str) -> int:
    return main(["--project-directory", str(project), *args])


# web may start without db (whose profile is off by default): `config` accepts it. With a
# required dependency on a disabled service `config` fails, as `up` does (and Compose's).
SMALL_OPTIONAL = SMALL.replace("depends_on: [db]", "depends_on: {db: {condition: service_started, required: false}}")


def test_cli_config_fails_on_a_required_disabled_dependency(
        write: object, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write("compose.yaml", SMALL)  # type: ignore[operator]
    assert run_cli(project, "config", "-q") == 1
    assert capsys.readouterr().err == (
        'error: compose.yaml: services.web.depends_on: service "web" depends on "db", which is '
        "disabled by its profiles (dbp): enable one with --profile, or set required: false\n")
    assert run_cli(project, "--profile", "dbp", "config", "-q") == 0


def test_cli_config_yaml_and_json(load: Loader, write: object, project: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    write("compose.yaml", SMALL_OPTIONAL)  # type: ignore[operator]
    assert run_cli(project, "config") == 0
    data = yaml.safe_load(capsys.readouterr().out)
    assert sorted(data["services"]) == ["web"]
    assert run_cli(project, "--profile", "dbp", "config", "--format", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert sorted(data["services"]) == ["db", "web"]


@pytest.mark.parametrize(("flag", "lines"), [
    ("--services", ["web"]), ("--volumes", ["data"]), ("--profiles", ["dbp"]), ("-q", []),
])
def test_cli_listing_flags(write: object, project: Path, capsys: pytest.CaptureFixture[str],
                           flag: str, lines: list[str]) -> None:
    write("compose.yaml", SMALL_OPTIONAL)  # type: ignore[operator]
    assert run_cli(project, "config", flag) == 0
    assert capsys.readouterr().out.splitlines() == lines


def test_cli_warnings_go_to_stderr(write: object, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write("compose.yaml", "version: '3'\nservices: {a: {image: 'x${UNSET_VAR_FOR_TEST}'}}")  # type: ignore[operator]
    assert run_cli(project, "config", "-q") == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "warning: compose.yaml: version is obsolete and ignored" in captured.err
    assert "UNSET_VAR_FOR_TEST variable is not set" in captured.err
