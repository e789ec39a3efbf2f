"""--progress / COMPOSE_PROGRESS, --ansi / COMPOSE_ANSI and COMPOSE_STATUS_STDOUT through the
CLI on an in-memory engine: what up's progress looks like in each mode."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from composer.cli import common, main, output
from tests.unit.memengine import MemEngine


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    mem = MemEngine()

    async def connect() -> MemEngine:
        return mem

    monkeypatch.setattr(common, "engine", connect)
    for name in ("COMPOSE_PROGRESS", "COMPOSE_ANSI", "COMPOSE_STATUS_STDOUT"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "compose.yaml").write_text("services:\n  web: {image: x}\n")
    return tmp_path


def up(folder: Path, *flags: str) -> int:
    return main(["--project-directory", str(folder), "-p", "p", *flags, "up", "-d"])


def test_json_progress_is_compose_json_writer(folder: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert up(folder, "--progress", "json") == 0
    msgs = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert {"id": "Container p-web-1", "text": "Started"} in msgs
    assert all(set(m) <= {"id", "text", "tail"} for m in msgs)


def test_quiet_plain_and_status_stdout(folder: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPOSE_PROGRESS", "quiet")
    assert up(folder) == 0
    assert capsys.readouterr() == ("", "")
    assert up(folder, "--progress", "plain") == 0  # the flag over the variable
    assert " Container p-web-1  Running" in capsys.readouterr().err
    monkeypatch.setenv("COMPOSE_STATUS_STDOUT", "1")
    assert up(folder, "--progress", "plain") == 0
    out, err = capsys.readouterr()
    assert " Container p-web-1  Running" in out and err == ""


@pytest.mark.parametrize(("env", "flags", "message"), [
    ({}, ["--ansi", "never", "--progress", "tty"], "--progress tty needs ANSI"),
    ({"COMPOSE_PROGRESS": "loud"}, [], "COMPOSE_PROGRESS='loud'"),
    ({"COMPOSE_ANSI": "sometimes"}, [], "COMPOSE_ANSI='sometimes'"),
])
def test_bad_combinations_are_one_line(folder: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
                                       flags: list[str], message: str) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert up(folder, *flags) == 1
    assert message in capsys.readouterr().err


def test_ansi_decides_colours(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    for env, tty, pipe in (("auto", True, False), ("always", True, True), ("never", False, False)):
        monkeypatch.setenv("COMPOSE_ANSI", env)
        output.configure(None, None)
        assert (output.colours(Tty()), output.colours(io.StringIO())) == (tty, pipe)
    output.configure("auto", "auto")


def test_an_attached_up_goes_on_in_lines_after_the_live_display(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """On a terminal the live display ends at `Attaching to`; what comes later -- a Ctrl-C's
    Stopping/Stopped -- still shows, as lines, instead of going to the closed display."""
    from types import SimpleNamespace

    from composer.cli.attached import AttachedUp
    from composer.cli.progress import LiveProgress

    monkeypatch.setattr(output.SETTINGS, "progress", "auto")
    monkeypatch.setattr(output.SETTINGS, "dry_run", False)
    term = io.StringIO()
    live = LiveProgress(term, force=True)
    live("Container p-web-1", "Started")
    project = SimpleNamespace(progress=live, stack=SimpleNamespace(services={}))
    session = AttachedUp(project, set(), object(), services=(), timeout=None)  # type: ignore[arg-type]
    session._announce()
    assert live.closed and project.progress is not live
    project.progress("Container p-web-1", "Stopping")
    project.progress("Container p-web-1", "Stopped")
    assert term.getvalue().endswith(" Container p-web-1  Stopping\n Container p-web-1  Stopped\n")
    assert capsys.readouterr().out == "Attaching to \n"


def test_the_live_display_counts_a_running_rows_time_up(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A stop that takes its 10 s grace period shows its time going up between events, as
    docker compose's display does, not the 0.0s of its last event."""
    from rich.console import Console

    from composer.cli import progress as P

    now = [100.0]
    monkeypatch.setattr(P.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(output.SETTINGS, "dry_run", False)
    live = P.LiveProgress(io.StringIO(), force=True)
    try:
        live("Container p-web-1", "Stopping")
        live("Container p-db-1", "Stopped")
        now[0] = 107.25
        screen = Console(file=io.StringIO(), width=80, record=True)
        screen.print(live.live.get_renderable())
        text = screen.export_text()
    finally:
        live.close()
    assert "Container p-web-1 Stopping 7.2s" in " ".join(text.split()), text
    assert "Container p-db-1 Stopped 0.0s" in " ".join(text.split()), text
