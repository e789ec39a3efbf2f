"""The CLI's pieces for output and logs: --since/--until values, the prefixed line printer,
and which services an attached `up` shows (docker compose's rules)."""
from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import pytest

from composer.cli.attached import attach_targets, attached
from composer.cli.logprint import LogPrinter, short_name
from composer.cli.timespec import parse_time
from composer.errors import ComposerError
from composer.operations import Project
from composer.spec import LoadOptions, load_stack

NOW = 1_700_000_000.0


@pytest.mark.parametrize("text,want", [
    ("10m", NOW - 600), ("1h30m", NOW - 5400), ("1.5s", NOW - 1.5), ("250ms", NOW - 0.25),
    ("2023-11-14T22:13:20Z", NOW), ("2023-11-14T23:13:20+01:00", NOW),
    ("2023-11-14T22:13:20.5Z", NOW + 0.5), ("2023-11-14T22:13:20.123456789Z", NOW + 0.123456),
    ("1700000000", NOW), ("1700000000.25", NOW + 0.25),
])
def test_since_until_values(text: str, want: float) -> None:
    assert parse_time(text, "--since", now=NOW) == pytest.approx(want, abs=1e-6)


def test_times_without_a_zone_are_local_and_bad_values_one_line() -> None:
    local = time.mktime(time.strptime("2024-01-02 03:04:05", "%Y-%m-%d %H:%M:%S"))
    assert parse_time("2024-01-02T03:04:05", "--until") == local
    assert parse_time("2024-01-02", "--until") == time.mktime(
        time.strptime("2024-01-02", "%Y-%m-%d"))
    with pytest.raises(ComposerError, match="--since 'yesterday'"):
        parse_time("yesterday", "--since")


def printer(**kw: object) -> tuple[LogPrinter, io.BytesIO, io.BytesIO]:
    out, err = io.BytesIO(), io.BytesIO()
    return LogPrinter(out=out, err=err, **kw), out, err  # type: ignore[arg-type]


def test_lines_are_whole_prefixed_and_on_their_stream() -> None:
    p, out, err = printer(colour=False)
    p.register("a", "web-1")
    p.register("b", "database-1")  # a longer name re-pads every prefix
    p.output("a", "stdout", b"hel")
    p.output("b", "stderr", b"oops\n")
    p.output("a", "stdout", b"lo\nwor")  # pieces of a line come out as one line
    p.output("a", "stdout", b"\xff\xfe\n")  # bytes, not text
    p.status("a", "exited with code 0")  # an open line is ended first
    p.flush()
    assert out.getvalue() == (b"web-1       | hello\n" b"web-1       | wor\xff\xfe\n"
                              b"web-1 exited with code 0\n")
    assert err.getvalue() == b"database-1  | oops\n"


def test_no_prefix_timestamps_and_colour() -> None:
    p, out, _ = printer(colour=False, prefix=False, timestamps=True)
    p.register("a", "web-1")
    p.output("a", "stdout", b"x\n", t=NOW)
    p.flush()
    assert out.getvalue() == b"2023-11-14T22:13:20.000000000Z x\n"
    p, out, _ = printer(colour=True)
    p.register("a", "web-1")
    p.output("a", "stdout", b"x\n")
    p.flush()
    assert out.getvalue() == b"\x1b[36mweb-1  | \x1b[0mx\n"
    assert short_name("proj-web-1", "proj") == "web-1" and short_name("custom", "proj") == "custom"


CHAIN = """\
services:
  a: {image: busybox}
  b: {image: busybox, depends_on: [a]}
  c: {image: busybox, depends_on: [b]}
  quiet: {image: busybox, attach: false}
"""


def args(*argv: str) -> argparse.Namespace:
    from composer.cli import build_parser
    return build_parser().parse_args(["up", *argv])


def targets(tmp_path: Path, *argv: str) -> set[str]:
    f = tmp_path / "compose.yaml"
    f.write_text(CHAIN)
    stack = load_stack(LoadOptions(files=[str(f)], project_name="t", environ={}))
    project = Project(stack, engine=None)  # type: ignore[arg-type]
    a = args(*argv)
    assert attached(a)
    return attach_targets(project, a)


def test_which_services_an_attached_up_shows(tmp_path: Path) -> None:
    assert targets(tmp_path, "c") == {"c"}  # only what is named, as docker compose
    assert targets(tmp_path, "--attach-dependencies", "c") == {"a", "b", "c"}
    assert targets(tmp_path, "--attach-dependencies", "--no-attach", "b", "c") == {"a", "c"}
    assert targets(tmp_path, "--attach", "a", "c") == {"a"}
    assert targets(tmp_path) == {"a", "b", "c"}  # attach: false is left out
    assert targets(tmp_path, "--attach", "quiet") == {"quiet"}  # unless named
    with pytest.raises(ComposerError, match="cannot attach to services not included in up: a"):
        targets(tmp_path, "--attach", "a", "quiet")
    with pytest.raises(ComposerError, match="cannot combine --attach and --attach-dependencies"):
        attached(args("--attach", "a", "--attach-dependencies"))
    with pytest.raises(ComposerError, match="--detach cannot be combined"):
        attached(args("-d", "--abort-on-container-exit"))
    assert not attached(args("-d")) and not attached(args("--wait"))
