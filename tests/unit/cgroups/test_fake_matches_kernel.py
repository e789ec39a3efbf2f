"""The fake v2 tree answers the shared table as the kernel does (tests/cgroupfs_cases.py;
the host tier runs the same table against the VM's real cgroup v2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.cgroups.cgroup import _rmtree
from tests.cgroupfs_cases import CASES, Runner, Step
from tests.unit.cgroups.fakefs import FakeCgroupFS


@pytest.mark.parametrize("name", list(CASES))
def test_case(tmp_path: Path, name: str) -> None:
    fs = FakeCgroupFS(tmp_path / "cg", "v2")
    fs.write(fs.root / "cgroup.subtree_control", "+cpuset +cpu +io +memory +pids")
    base = fs.root / "composer-kt"
    fs.mkdir(base)
    fs.write(base / "cgroup.subtree_control", "+cpuset +cpu +io +memory +pids")
    top = base / "case"
    fs.mkdir(top)
    runner = Runner(fs, top)
    try:
        runner.run(CASES[name])
    finally:
        runner.kill()
        _rmtree(fs, top, "case", 1.0)


def test_a_wrong_expectation_fails(tmp_path: Path) -> None:
    """The runner compares every step: a table row the fake does not satisfy is a failure."""
    fs = FakeCgroupFS(tmp_path / "cg", "v2")
    fs.mkdir(fs.root / "top")
    with pytest.raises(AssertionError, match="EINVAL"):
        Runner(fs, fs.root / "top").run([Step("write", "cgroup.subtree_control", "bad", "ok")])
