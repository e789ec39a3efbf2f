"""The shared table (tests/cgroupfs_cases.py) against the VM's real cgroup v2: the unit tier
runs the same rows against the fake, so the two agree row by row."""
from __future__ import annotations

from pathlib import Path

import pytest

from runtime.cgroups import CgroupFS
from runtime.cgroups.cgroup import _rmtree
from tests.cgroupfs_cases import CASES, Runner


@pytest.mark.parametrize("name", list(CASES))
def test_case(scope: Path, name: str) -> None:
    fs = CgroupFS()
    top = scope / "case"
    fs.mkdir(top)
    runner = Runner(fs, top)
    try:
        runner.run(CASES[name])
    finally:
        runner.kill()
        _rmtree(fs, top, "case", 5.0)
