"""`--since/--until` values (composer.cli.timespec) as Docker reads them."""
from __future__ import annotations

import time
from datetime import datetime

import pytest

from composer.cli.timespec import parse_time
from composer.errors import ComposerError

NOW = 1_700_000_000.0


@pytest.mark.parametrize(("text", "want"), [
    ("10m", NOW - 600), ("1h30m", NOW - 5400), ("2.5s", NOW - 2.5), ("500ms", NOW - 0.5),
    ("-1h", NOW + 3600),  # a negative duration is in the future (--until -1h)
])
def test_durations_count_back_from_now(text: str, want: float) -> None:
    assert parse_time(text, "--since", now=NOW) == pytest.approx(want)


@pytest.mark.parametrize(("text", "want"), [
    ("1704164645", 1704164645.0), ("1704164645.25", 1704164645.25), ("0", 0.0),
    ("2024-01-02T03:04:05Z", 1704164645.0),
    ("2024-01-02T05:04:05+02:00", 1704164645.0),
    ("2024-01-02T03:04:05.123456789Z", 1704164645.123456),
])
def test_absolute_times(text: str, want: float) -> None:
    assert parse_time(text, "--since", now=NOW) == pytest.approx(want)


def test_a_time_without_zone_is_local_time() -> None:
    want = time.mktime(datetime(2024, 1, 2, 3, 4).timetuple())
    assert parse_time("2024-01-02T03:04", "--until") == pytest.approx(want)
    assert parse_time("2024-01-02", "--until") == pytest.approx(
        time.mktime(datetime(2024, 1, 2).timetuple()))


@pytest.mark.parametrize("text", ["yesterday", "10x", "2024-13-40", ""])
def test_anything_else_is_one_line_naming_the_flag(text: str) -> None:
    with pytest.raises(ComposerError, match="^--since "):
        parse_time(text, "--since")
