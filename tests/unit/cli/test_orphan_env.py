"""COMPOSE_IGNORE_ORPHANS / COMPOSE_REMOVE_ORPHANS as docker compose reads them, through the
CLI on an in-memory engine."""
from __future__ import annotations

from pathlib import Path

import pytest

from composer.cli import common, main
from tests.unit.memengine import MemEngine


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> MemEngine:
    mem = MemEngine()

    async def connect() -> MemEngine:
        return mem

    monkeypatch.setattr(common, "engine", connect)
    return mem


def names(engine: MemEngine) -> list[str]:
    return sorted(c.name for c in engine.containers.values())


def test_orphan_variables(tmp_path: Path, engine: MemEngine, monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    stack = tmp_path / "compose.yaml"
    stack.write_text("services:\n  old: {image: x}\n  web: {image: x}\n")
    cli = ["--project-directory", str(tmp_path), "-p", "p"]
    assert main([*cli, "up", "-d"]) == 0
    stack.write_text("services:\n  web: {image: x}\n")
    capsys.readouterr()

    monkeypatch.setenv("COMPOSE_IGNORE_ORPHANS", "true")
    assert main([*cli, "up", "-d"]) == 0
    assert "orphan" not in capsys.readouterr().err and "p-old-1" in names(engine)
    assert main([*cli, "up", "-d", "--remove-orphans"]) == 1
    assert "COMPOSE_IGNORE_ORPHANS and --remove-orphans" in capsys.readouterr().err

    monkeypatch.delenv("COMPOSE_IGNORE_ORPHANS")
    assert main([*cli, "up", "-d"]) == 0
    assert "found orphan containers (p-old-1)" in capsys.readouterr().err

    monkeypatch.setenv("COMPOSE_REMOVE_ORPHANS", "1")
    assert main([*cli, "up", "-d"]) == 0
    assert names(engine) == ["p-web-1"]
