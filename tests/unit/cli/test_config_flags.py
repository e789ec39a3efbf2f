"""`config --images/--networks/--hash/--environment/--variables/-o`, and the refused
--no-interpolate, through the CLI (no engine needed)."""
from __future__ import annotations

from pathlib import Path

import pytest

from composer.cli import main
from composer.convert import config_hash
from composer.spec import LoadOptions, load_stack

STACK = """
services:
  web: {image: "nginx:${TAG:-1.25}", environment: {A: "${NEED:?set it}"}, networks: [front]}
  app: {build: ., networks: [back]}
networks: {front: {}, back: {}}
"""


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "compose.yaml").write_text(STACK)
    monkeypatch.setenv("NEED", "1")
    monkeypatch.setenv("ZZ_FROM_TEST", "yes")
    return tmp_path


def out(capsys: pytest.CaptureFixture[str], folder: Path, *argv: str) -> str:
    assert main(["--project-directory", str(folder), "-p", "p", "config", *argv]) == 0
    return capsys.readouterr().out


def test_lists(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert out(capsys, folder, "--images").split() == ["p-app", "nginx:1.25"]
    assert sorted(out(capsys, folder, "--networks").split()) == ["back", "front"]
    assert "ZZ_FROM_TEST=yes\n" in out(capsys, folder, "--environment")


def test_hash_is_the_label_up_compares(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack = load_stack(LoadOptions(working_dir=str(folder), project_name="p"))
    want = {n: config_hash(s) for n, s in stack.services.items()}
    assert out(capsys, folder, "--hash", "*") == f"app {want['app']}\nweb {want['web']}\n"
    assert out(capsys, folder, "--hash", "web") == f"web {want['web']}\n"
    assert main(["--project-directory", str(folder), "config", "--hash", "nope"]) == 1
    assert "no such service: nope" in capsys.readouterr().err


def test_variables_need_no_value_and_o_writes_a_file(
        folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEED")  # required, yet --variables is how one learns that
    lines = out(capsys, folder, "--variables").splitlines()
    assert lines[0].split() == ["NAME", "REQUIRED", "DEFAULT", "VALUE", "ALTERNATE", "VALUE"]
    assert [ln.split() for ln in lines[1:]] == [["NEED", "true"], ["TAG", "false", "1.25"]]
    target = folder / "out.json"
    assert out(capsys, folder, "--variables", "--format", "json", "-o", str(target)) == ""
    assert '"name": "NEED"' in target.read_text()


def test_no_interpolate_is_refused_with_one_line(
        folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--project-directory", str(folder), "config", "--no-interpolate"]) == 1
    err = capsys.readouterr().err
    assert "--no-interpolate is not supported yet" in err and err.count("\n") == 1
