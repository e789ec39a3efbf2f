"""`run` and `exec` flags through the CLI on an in-memory engine: what the one-off container
gets (ports, mounts, labels, capabilities, aliases, image) and what exec asks the engine."""
from __future__ import annotations

from pathlib import Path

import pytest

from composer.cli import common, main
from runtime.types import ContainerSpec
from tests.unit.memengine import MemEngine

STACK = """
services:
  web:
    image: webimg
    command: sleep 600
    ports: ["8080:80"]
    volumes: [data:/data]
    cap_add: [SYS_TIME]
    networks: {default: {aliases: [www]}}
  app:
    build: .
    command: sleep 600
volumes:
  data:
"""


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> MemEngine:
    mem = MemEngine({"webimg": "sha256:w"})

    async def connect() -> MemEngine:
        return mem

    monkeypatch.setattr(common, "engine", connect)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "compose.yaml").write_text(STACK)
    return mem


def cli(folder: Path, *argv: str) -> int:
    return main(["--project-directory", str(folder), "-p", "p", *argv])


def one_off(engine: MemEngine) -> ContainerSpec:
    (c,) = [c for c in engine.containers.values() if "-run-" in c.name]
    assert c.spec is not None
    return c.spec


def test_a_plain_one_off_publishes_nothing_and_has_no_service_aliases(
        tmp_path: Path, engine: MemEngine) -> None:
    assert cli(tmp_path, "run", "-d", "web") == 0
    spec = one_off(engine)
    assert spec.ports == ()
    assert [n.aliases for n in spec.networks] == [()]
    assert spec.cap_add == ("SYS_TIME",)


def test_run_flags_reach_the_container(tmp_path: Path, engine: MemEngine) -> None:
    assert cli(tmp_path, "run", "-d", "-P", "-p", "127.0.0.1:9000:90/udp", "-v", "./src:/src:ro",
               "-v", "data:/other", "-l", "team=ops", "--cap-add", "NET_ADMIN",
               "--cap-drop", "MKNOD", "--use-aliases", "-T", "web", "true") == 0
    spec = one_off(engine)
    assert [(p.container_port, p.protocol, p.host_ip, p.host_port) for p in spec.ports] == [
        (80, "tcp", "", 8080), (90, "udp", "127.0.0.1", 9000)]
    mounts = {m.target: m for m in spec.mounts}
    assert mounts["/src"].source == str(tmp_path / "src") and mounts["/src"].read_only
    assert mounts["/src"].type == "bind"
    assert mounts["/other"].source == "p_data" and mounts["/data"].source == "p_data"
    assert spec.labels["team"] == "ops"
    assert spec.cap_add == ("SYS_TIME", "NET_ADMIN") and spec.cap_drop == ("MKNOD",)
    assert [n.aliases for n in spec.networks] == [("web", "www")]


@pytest.mark.parametrize(("argv", "message"), [
    (["-v", "nosuch:/x"], "volume 'nosuch' is not declared"),
    (["-p", "99999:80"], "--publish[0]"),
    (["-l", "com.docker.compose.project=other"], "composer's own"),
    (["-l", "=x"], "use KEY=VALUE"),
    (["--cap-add", "NOPE"], "--cap-add: unknown capability 'NOPE'"),
])
def test_bad_run_flags_are_one_line(tmp_path: Path, engine: MemEngine, argv: list[str],
                                    message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(tmp_path, "run", "-d", *argv, "web") == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not engine.containers


def test_run_build_and_pull(tmp_path: Path, engine: MemEngine) -> None:
    assert cli(tmp_path, "run", "-d", "--pull", "always", "web") == 0
    assert engine.pulled == ["webimg"]
    assert cli(tmp_path, "run", "-d", "app") == 0  # missing: built once
    assert cli(tmp_path, "run", "-d", "app") == 0
    assert engine.built == ["p-app"]
    assert cli(tmp_path, "run", "-d", "--build", "app") == 0  # --build: built again
    assert engine.built == ["p-app", "p-app"]


def test_exec_privileged_index_and_no_tty(tmp_path: Path, engine: MemEngine,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(tmp_path, "up", "-d", "--scale", "web=2", "web") == 0
    assert cli(tmp_path, "exec", "--no-tty", "--privileged", "--index", "2", "web", "id") == 0
    assert engine.execs[-1]["name"] == "p-web-2" and engine.execs[-1]["privileged"] is True
    assert cli(tmp_path, "exec", "-T", "web", "id") == 0
    assert engine.execs[-1]["name"] == "p-web-1" and engine.execs[-1]["privileged"] is False
    capsys.readouterr()
    assert cli(tmp_path, "exec", "-T", "--index", "3", "web", "id") == 1
    assert "container #3" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(tmp_path, "exec", "--index", "0", "web", "id")
