"""What the CLI promises whatever the verb: exit codes as docker compose v2 (1 for a user
or usage error), no traceback into a closed pipe, the same one line from `config` and `up`
for a broken dependency graph, unknown services named, `-p NAME` from the labels alone, and
a warning for an optional dependency on an undefined service. The engine is in memory."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from composer import labels as L
from composer.cli import common, main
from composer.labelstack import stack_from_labels
from runtime.api import ContainerInfo, NetworkInfo, VolumeInfo
from runtime.types import ContainerSpec, NetworkAttachment, NetworkSpec, VolumeSpec
from tests.unit.memengine import MemEngine

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> MemEngine:
    mem = MemEngine()

    async def connect() -> MemEngine:
        return mem

    monkeypatch.setattr(common, "engine", connect)
    return mem


def cli(folder: Path, *argv: str) -> int:
    return main(["--project-directory", str(folder), *argv])


def test_a_usage_error_exits_1_as_compose(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["up", "--no-such-flag"])
    assert stop.value.code == 1
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["nosuchverb"])
    assert stop.value.code == 1
    with pytest.raises(SystemExit) as stop:
        main(["up", "--pull", "sometimes"])
    assert stop.value.code == 1


@pytest.mark.parametrize("text", [
    "services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [a]}\n",
    "services:\n  a: {image: x, depends_on: [nosuch]}\n",
])
def test_config_and_up_fail_alike_on_a_broken_graph(
        tmp_path: Path, engine: MemEngine, capsys: pytest.CaptureFixture[str], text: str) -> None:
    (tmp_path / "compose.yaml").write_text(text)
    assert cli(tmp_path, "config", "-q") == 1
    config_err = capsys.readouterr().err
    assert cli(tmp_path, "up", "-d") == 1
    up_err = capsys.readouterr().err
    assert config_err == up_err
    assert config_err.startswith("error: compose.yaml: ") and config_err.count("\n") == 1
    assert ("dependency cycle: a -> b -> a" in config_err) or ('undefined service "nosuch"' in config_err)


def test_optional_dependency_on_an_undefined_service_warns(
        tmp_path: Path, engine: MemEngine, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "compose.yaml").write_text(
        "services:\n  web: {image: x, depends_on: {nosuch: {condition: service_started, required: false}}}\n")
    warning = ('compose.yaml: services.web.depends_on.nosuch: service "nosuch" is not defined '
               "(required: false): web starts without it")
    assert cli(tmp_path, "config", "-q") == 0
    assert f"warning: {warning}" in capsys.readouterr().err
    assert cli(tmp_path, "up", "-d") == 0
    assert f"WARN[0000] {warning}" in capsys.readouterr().err
    assert engine.running() == ["web"]


@pytest.mark.parametrize("verb", ["logs", "stop", "restart", "start", "kill", "rm", "pause",
                                  "unpause", "top", "images", "ps", "exec", "port"])
def test_an_unknown_service_is_an_error_naming_it(
        tmp_path: Path, engine: MemEngine, capsys: pytest.CaptureFixture[str], verb: str) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  web: {image: x}\n  db: {image: x}\n")
    extra = {"exec": ["true"], "port": ["80"]}.get(verb, [])
    assert cli(tmp_path, verb, "nosuch", *extra) == 1
    assert capsys.readouterr().err == "error: no such service: nosuch (known: db, web)\n"


def test_up_scale_of_an_unknown_service_is_an_error(
        tmp_path: Path, engine: MemEngine, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  web: {image: x}\n")
    assert cli(tmp_path, "up", "-d", "--scale", "nosuch=2") == 1
    assert "no such service: nosuch" in capsys.readouterr().err
    assert engine.containers == {}
    assert cli(tmp_path, "up", "-d", "--scale", "web=3") == 0
    assert engine.running() == ["web", "web", "web"]


@pytest.mark.parametrize(("argv", "message"), [
    (["--force-recreate", "--no-recreate"], "--force-recreate and --no-recreate"),
    (["--always-recreate-deps", "--no-recreate"], "--always-recreate-deps and --no-recreate"),
    (["-V", "--no-recreate"], "--renew-anon-volumes and --no-recreate"),
    (["-d", "--abort-on-container-exit"], "--detach can't be combined"),
    (["--wait-timeout", "3"], "--wait-timeout needs --wait"),
    (["--abort-on-container-exit", "--abort-on-container-failure"], "can't be combined"),
])
def test_up_flag_combinations_compose_refuses(
        tmp_path: Path, engine: MemEngine, capsys: pytest.CaptureFixture[str],
        argv: list[str], message: str) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  web: {image: x}\n")
    assert cli(tmp_path, "up", *argv) == 1
    assert message in capsys.readouterr().err


def test_p_name_without_a_file_works_from_the_labels(
        tmp_path: Path, engine: MemEngine, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "compose.yaml").write_text(
        "services:\n  db: {image: x}\n  web: {image: x, depends_on: {db: {condition: service_started, restart: true}}}\n")
    assert cli(folder, "-p", "demo", "up", "-d") == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert main(["-p", "demo", "ps", "--format", "{{.Service}}"]) == 0
    assert capsys.readouterr().out.split() == ["db", "web"]
    engine.log.clear()
    assert main(["-p", "demo", "restart", "db"]) == 0  # web follows: restart: true, from the label
    assert [name for verb, name in engine.log if verb == "start"] == ["demo-db-1", "demo-web-1"]
    assert main(["-p", "demo", "stop", "nosuch"]) == 1
    assert "no such service: nosuch (known: db, web)" in capsys.readouterr().err
    assert main(["-p", "demo", "down"]) == 0
    assert engine.containers == {} and engine.networks == set()
    assert main(["-p", "demo", "down"]) == 0
    assert 'No resource found to remove for project "demo"' in capsys.readouterr().err
    # without -p and without a file, still the file error
    assert main(["ps"]) == 1
    assert "no stack file found" in capsys.readouterr().err


def test_stack_from_labels() -> None:
    def ctr(service: str, number: int, deps: str = "", oneoff: bool = False) -> ContainerInfo:
        labels = L.container_labels("demo", service, number, "h", oneoff=oneoff,
                                    depends_on=L.parse_depends_on(deps), working_dir="/srv/demo")
        spec = ContainerSpec(name=f"demo-{service}-{number}", image=f"{service}img", labels=labels,
                             networks=(NetworkAttachment("demo_back"),))
        return ContainerInfo(id=spec.name, name=spec.name, image=spec.image, spec=spec)

    net = NetworkInfo("demo_back", NetworkSpec("demo_back", labels={L.PROJECT: "demo", L.NETWORK: "back"}))
    vol = VolumeInfo("demo_data", VolumeSpec("demo_data", labels={L.PROJECT: "demo", L.VOLUME: "data"}))
    other = NetworkInfo("x_default", NetworkSpec("x_default", labels={L.PROJECT: "x"}))
    stack = stack_from_labels("demo", [ctr("web", 2, "db:service_healthy:true"), ctr("web", 1),
                                       ctr("db", 1), ctr("tool", 1, oneoff=True)], [net, other], [vol])
    assert sorted(stack.services) == ["db", "tool", "web"]
    assert stack.project_directory == "/srv/demo"
    assert stack.services["web"].image == "webimg"
    assert stack.networks["back"].name == "demo_back" and list(stack.networks) == ["back"]
    assert stack.volumes["data"].name == "demo_data"
    assert [n.name for n in stack.services["db"].networks] == ["back"]
    # the lowest number speaks for the service; its depends_on label gives the order
    assert stack.services["web"].depends_on == ()
    stack = stack_from_labels("demo", [ctr("web", 1, "db:service_healthy:true"), ctr("db", 1)])
    (dep,) = stack.services["web"].depends_on
    assert (dep.service, dep.condition, dep.restart, dep.required) == ("db", "service_healthy", True, False)


def test_a_closed_pipe_is_not_a_traceback(tmp_path: Path) -> None:
    services = "".join(f"  s{i}: {{image: x, command: echo {'y' * 200}}}\n" for i in range(400))
    (tmp_path / "compose.yaml").write_text("services:\n" + services)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    for head in ("head -0", "head -1"):
        p = subprocess.run(
            ["bash", "-c", f"set -o pipefail; {sys.executable} -m composer.cli config | {head}"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert "Traceback" not in p.stderr and "BrokenPipeError" not in p.stderr, p.stderr
        assert p.stderr == ""
        assert p.returncode == 141  # as a Go program (docker compose) killed by SIGPIPE
