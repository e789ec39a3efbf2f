"""Detection and the pure conversions."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.cgroups import CgroupError, V1Manager, V2Manager, detect, open_manager
from runtime.cgroups.cpu import shares_to_weight
from runtime.cgroups.cpuset import parse_list
from runtime.cgroups.io import blkio_to_io_weight
from runtime.cgroups.memory import swap_total
from runtime.types import Resources
from tests.unit.cgroups.fakefs import FakeCgroupFS


def test_detect(tmp_path: Path) -> None:
    v1 = FakeCgroupFS(tmp_path / "a", "v1")  # hybrid: has an empty cgroup2 at unified/
    v2 = FakeCgroupFS(tmp_path / "b", "v2")
    assert detect(v1.root, v1) == "v1"
    assert detect(v2.root, v2) == "v2"
    assert isinstance(open_manager(v1.root, "composer-x", v1), V1Manager)
    assert isinstance(open_manager(v2.root, "composer-x", v2), V2Manager)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CgroupError, match="no cgroup hierarchy"):
        detect(tmp_path / "empty")


@pytest.mark.parametrize(("shares", "weight"), [(2, 1), (1024, 39), (512, 20), (262144, 10000)])
def test_shares_to_weight(shares: int, weight: int) -> None:
    assert shares_to_weight(shares) == weight


@pytest.mark.parametrize(("blkio", "io"), [(10, 1), (500, 4950), (1000, 10000)])
def test_blkio_to_io_weight(blkio: int, io: int) -> None:
    assert blkio_to_io_weight(blkio) == io


def test_parse_list() -> None:
    assert parse_list("0-2,4") == {0, 1, 2, 4}
    assert parse_list("3") == {3}
    assert parse_list("") == set()
    for bad in ("x", "2-1", "-1", "1-"):
        with pytest.raises(ValueError):
            parse_list(bad)


def test_swap_total_follows_docker() -> None:
    assert swap_total(Resources()) is None
    assert swap_total(Resources(memory=100 << 20)) == 200 << 20
    assert swap_total(Resources(memory=100 << 20, memory_swap=-1)) == -1
    assert swap_total(Resources(memory=100 << 20, memory_swap=150 << 20)) == 150 << 20
