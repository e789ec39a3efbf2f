"""The v2 driver on a fake unified tree (same code as production, via the fs seam)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from runtime.cgroups import CgroupError, CgroupLimitError, CgroupNotFound, V2Manager
from runtime.types import Resources
from tests.unit.cgroups.fakefs import FakeCgroupFS

MiB = 1024 * 1024


def f(fs: FakeCgroupFS, name: str, filename: str) -> str:
    return fs.get(fs.root / "composer" / name / filename).strip()


def test_create_enables_controllers_in_root_and_parent(v2: V2Manager, v2fs: FakeCgroupFS) -> None:
    cg = v2.create("c1")
    want = "cpuset cpu io memory pids"  # the kernel lists them in its own order
    assert v2fs.get(v2fs.root / "cgroup.subtree_control") == want
    assert v2fs.get(v2fs.root / "composer" / "cgroup.subtree_control") == want
    assert f(v2fs, "c1", "cgroup.controllers") == want
    for controller in ("memory", "cpu", "pids", "io", "cpuset", "freezer"):
        assert cg.path(controller) == v2fs.root / "composer" / "c1"
    assert v2.list() == ["c1"]
    v2.create("c2")  # second create: controllers already on, nothing rewritten
    assert v2.list() == ["c1", "c2"]
    with pytest.raises(CgroupNotFound):
        v2.open("c3")


def test_not_a_v2_root(tmp_path: Path) -> None:
    with pytest.raises(CgroupError, match="not a cgroup v2 hierarchy"):
        V2Manager(tmp_path)


def test_memory_files(v2: V2Manager, v2fs: FakeCgroupFS) -> None:
    cg = v2.create("c1")
    cg.apply(Resources(memory=64 * MiB))
    assert f(v2fs, "c1", "memory.max") == str(64 * MiB)
    assert f(v2fs, "c1", "memory.swap.max") == str(64 * MiB)  # docker: as much swap as memory
    cg.apply(Resources(memory=64 * MiB, memory_swap=64 * MiB, memory_reservation=32 * MiB))
    assert f(v2fs, "c1", "memory.swap.max") == "0"
    assert f(v2fs, "c1", "memory.low") == str(32 * MiB)
    cg.apply(Resources(memory=64 * MiB, memory_swap=100 * MiB))
    assert f(v2fs, "c1", "memory.swap.max") == str(36 * MiB)
    cg.apply(Resources(memory=64 * MiB, memory_swap=-1))
    assert f(v2fs, "c1", "memory.swap.max") == "max"
    os.unlink(cg.path("memory") / "memory.swap.max")  # no swap accounting: limit still applied
    cg.apply(Resources(memory=32 * MiB))
    assert f(v2fs, "c1", "memory.max") == str(32 * MiB)


def test_cpu_pids_cpuset_io_files(v2: V2Manager, v2fs: FakeCgroupFS) -> None:
    cg = v2.create("c1")
    cg.apply(
        Resources(
            cpu_quota=150_000,
            cpu_shares=1024,
            pids_limit=10,
            cpuset_cpus="0,2",
            cpuset_mems="0",
            blkio_weight=500,
        )
    )
    assert f(v2fs, "c1", "cpu.max") == "150000 100000"
    assert f(v2fs, "c1", "cpu.weight") == "39"
    assert f(v2fs, "c1", "pids.max") == "10"
    assert f(v2fs, "c1", "cpuset.cpus") == "0,2"
    assert f(v2fs, "c1", "cpuset.mems") == "0"
    assert f(v2fs, "c1", "io.weight") == "default 4950"
    (cg.path("io") / "io.bfq.weight").write_text("default 100")  # BFQ: raw value, like runc
    cg.apply(Resources(blkio_weight=500, cpu_quota=-1, pids_limit=-1))
    assert f(v2fs, "c1", "io.bfq.weight") == "default 500"
    assert f(v2fs, "c1", "cpu.max") == "max 100000"
    assert f(v2fs, "c1", "pids.max") == "max"


def test_out_of_range_cpuset_and_missing_controller(v2: V2Manager, v2fs: FakeCgroupFS) -> None:
    cg = v2.create("c1")
    with pytest.raises(CgroupLimitError, match=r"cpuset_cpus=0-9.*offers only 0-3"):
        cg.apply(Resources(cpuset_cpus="0-9"))
    os.unlink(cg.path("memory") / "memory.max")  # memory not delegated
    with pytest.raises(CgroupError, match=r"memory=67108864.*memory.max") as e:
        cg.apply(Resources(memory=64 * MiB))
    assert e.value.limit == "memory"


def test_stats_and_oom(v2: V2Manager, v2fs: FakeCgroupFS) -> None:
    cg = v2.create("c1")
    d = cg.path("memory")
    v2fs.set(d / "memory.current", "2048\n")
    v2fs.set(d / "memory.peak", "4096\n")
    v2fs.set(d / "cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n")
    v2fs.set(d / "pids.current", "2\n")
    s = cg.stats()
    assert (s.memory_usage, s.memory_peak, s.memory_limit, s.cpu_usage_ns, s.pids) == (
        2048,
        4096,
        0,
        1_500_000,
        2,
    )
    cg.apply(Resources(memory=64 * MiB))
    os.unlink(d / "memory.peak")  # kernels before 5.19
    assert cg.stats().memory_limit == 64 * MiB and cg.stats().memory_peak == 0
    assert not cg.oom_killed()
    v2fs.set(d / "memory.events", "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\n")
    assert cg.oom_killed()


def test_add_pid_freeze_thaw(v2: V2Manager, v2fs: FakeCgroupFS, spawn) -> None:
    cg = v2.create("c1")
    p = spawn()
    cg.add_pid(p.pid)
    assert cg.pids() == [p.pid]
    assert "populated 1" in f(v2fs, "c1", "cgroup.events")
    cg.freeze()
    assert f(v2fs, "c1", "cgroup.freeze") == "1"
    assert "frozen 1" in f(v2fs, "c1", "cgroup.events")
    cg.thaw()
    assert f(v2fs, "c1", "cgroup.freeze") == "0"
    assert "frozen 0" in f(v2fs, "c1", "cgroup.events")
    p.kill()
    p.wait()
    assert f(v2fs, "c1", "cgroup.events") == "populated 0\nfrozen 0"


@pytest.mark.parametrize("with_cgroup_kill", [True, False])
def test_kill_all_and_remove(
    v2: V2Manager, v2fs: FakeCgroupFS, spawn, with_cgroup_kill: bool
) -> None:
    cg = v2.create("c1")
    if not with_cgroup_kill:  # kernels before 5.14: freeze, kill each, thaw
        os.unlink(cg.path("freezer") / "cgroup.kill")
    procs = [spawn("sh", "-c", "trap '' TERM; exec sleep 60") for _ in range(3)]
    for p in procs:
        cg.add_pid(p.pid)
    cg.kill_all()
    assert cg.pids() == []
    assert all(p.wait(1) == -signal.SIGKILL for p in procs)
    cg.remove()
    cg.remove()
    assert not (v2fs.root / "composer" / "c1").exists()
    v2.remove_parent()
    assert not (v2fs.root / "composer").exists()


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0]
