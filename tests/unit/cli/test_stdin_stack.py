"""`-f -`: the stack file on standard input, as docker compose reads it (the project is the
working folder's; it merges with other -f files)."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from composer.cli import common, main, stackargs
from tests.unit.memengine import MemEngine


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MemEngine:
    mem = MemEngine()

    async def connect() -> MemEngine:
        return mem

    monkeypatch.setattr(common, "engine", connect)
    monkeypatch.setattr(stackargs, "_STDIN", [])
    monkeypatch.chdir(tmp_path)
    return mem


def feed(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def test_up_from_stdin_merged_with_a_file(tmp_path: Path, engine: MemEngine,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "over.yaml").write_text("services:\n  web: {command: sleep 9}\n")
    feed(monkeypatch, "services:\n  web: {image: 'img:${T:-1}', command: sleep 1}\n")
    assert main(["-f", "-", "-f", "over.yaml", "up", "-d"]) == 0
    (c,) = engine.containers.values()
    assert c.name == f"{tmp_path.name}-web-1"  # the working folder names the project
    assert c.spec is not None and c.spec.image == "img:1"
    assert c.spec.command == ("sleep", "9")


def test_errors_name_stdin_and_need_a_pipe(tmp_path: Path, engine: MemEngine,
                                           monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    feed(monkeypatch, "services: [\n")
    assert main(["-f", "-", "config"]) == 1
    assert capsys.readouterr().err.startswith("error: -: line 2 column 1: invalid YAML")
    monkeypatch.setattr(stackargs, "_STDIN", [])

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Terminal(""))
    assert main(["-f", "-", "config"]) == 1
    assert "pipe the stack file into composer" in capsys.readouterr().err
    assert main(["-f", "-", "-f", "-", "config"]) == 1
