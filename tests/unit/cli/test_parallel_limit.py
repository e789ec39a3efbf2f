"""--parallel / COMPOSE_PARALLEL_LIMIT reach the scheduler of up and down."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from composer import operations
from composer.cli import common, main
from tests.unit.memengine import MemEngine


@pytest.fixture
def seen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    mem = MemEngine()

    async def connect() -> MemEngine:
        return mem

    monkeypatch.setattr(common, "engine", connect)
    monkeypatch.delenv("COMPOSE_PARALLEL_LIMIT", raising=False)
    calls: list[tuple[str, int]] = []
    real_up, real_down = operations.run_up, operations.run_down

    async def up(*a: Any, **kw: Any) -> Any:
        calls.append(("up", kw["parallelism"]))
        return await real_up(*a, **kw)

    async def down(*a: Any, **kw: Any) -> Any:
        calls.append(("down", kw["parallelism"]))
        return await real_down(*a, **kw)

    monkeypatch.setattr(operations, "run_up", up)
    monkeypatch.setattr(operations, "run_down", down)
    (tmp_path / "compose.yaml").write_text("services:\n  a: {image: x}\n  b: {image: x}\n")
    monkeypatch.chdir(tmp_path)
    return calls


def test_flag_variable_and_default(seen: list[tuple[str, int]],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["up", "-d"]) == 0
    assert main(["--parallel", "1", "down"]) == 0
    monkeypatch.setenv("COMPOSE_PARALLEL_LIMIT", "3")
    assert main(["up", "-d"]) == 0
    assert main(["--parallel", "-1", "up", "-d"]) == 0
    monkeypatch.setenv("COMPOSE_PARALLEL_LIMIT", "8")
    assert main(["down"]) == 0
    # `up` runs the scheduler twice, its create phase then its start phase: both get the limit
    assert seen == [("up", common.UNLIMITED)] * 2 + [("down", 1)] + [("up", 3)] * 2 + [
        ("up", common.UNLIMITED)] * 2 + [("down", 8)]


@pytest.mark.parametrize("value", ["0", "lots"])
def test_bad_values_are_one_line(seen: list[tuple[str, int]], value: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--parallel", value, "up", "-d"]) == 1
    assert f"--parallel={value}: use a number" in capsys.readouterr().err
    assert seen == []
