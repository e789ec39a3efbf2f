from __future__ import annotations

import pytest

from composer.errors import SpecError
from composer.spec.units import format_duration, parse_bytes, parse_duration
from composer.spec.where import Where

W = Where("compose.yaml", "services.web.healthcheck.interval")


@pytest.mark.parametrize(("text", "seconds"), [
    ("1m30s", 90.0), ("1.5s", 1.5), ("100ms", 0.1), ("2h", 7200.0), ("0", 0.0), ("10us", 1e-5),
    ("1h2m3s", 3723.0), ("500ns", 5e-7), ("0s", 0.0),
])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, W) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "10", "1x", "s", "1m 30s", "-1s", "1.2.3s"])
def test_bad_durations_name_the_key(bad: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_duration(bad, W)
    assert str(err.value).startswith("compose.yaml: services.web.healthcheck.interval: invalid duration")


def test_duration_must_be_text() -> None:
    with pytest.raises(SpecError, match="expected a duration"):
        parse_duration(30, W)


@pytest.mark.parametrize(("seconds", "text"), [(90.0, "1m30s"), (0.1, "100ms"), (1.5, "1.5s"), (3600, "1h"), (0, "0s")])
def test_format_duration_round_trips(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text, W) == pytest.approx(seconds)


@pytest.mark.parametrize(("value", "size"), [
    ("512m", 512 << 20), ("1g", 1 << 30), ("1.5GB", int(1.5 * (1 << 30))), (1024, 1024),
    ("100k", 102400), ("64M", 64 << 20), ("10b", 10), ("7", 7), ("2gb", 2 << 30), ("1GiB", 1 << 30),
])
def test_bytes(value: object, size: int) -> None:
    assert parse_bytes(value, W) == size


@pytest.mark.parametrize("bad", ["", "12x", "m", "1.5.5g", "1bg", True, None])
def test_bad_bytes(bad: object) -> None:
    with pytest.raises(SpecError):
        parse_bytes(bad, W)
