"""The v1 driver on a fake per-controller tree (same code as production, via the fs seam)."""

from __future__ import annotations

import errno
import os
import signal
import time
from pathlib import Path

import pytest

from runtime.cgroups import CgroupError, CgroupLimitError, CgroupNotFound, V1Manager
from runtime.errors import InvalidArgument, NotFound
from runtime.types import Resources
from tests.unit.cgroups.fakefs import UNLIMITED, FakeCgroupFS

MiB = 1024 * 1024
HIERARCHIES = (
    "blkio",
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "freezer",
    "memory",
    "pids",
    "systemd",
)


def f(fs: FakeCgroupFS, hierarchy: str, name: str, filename: str) -> str:
    return fs.get(fs.root / hierarchy / "composer" / name / filename).strip()


def test_hierarchies_found_and_unified_skipped(v1: V1Manager) -> None:
    assert sorted(v1.hierarchies) == sorted(HIERARCHIES)
    assert all(p.name != "unified" for p in v1.mounts)


def test_combined_hierarchy_serves_both_controllers(tmp_path: Path) -> None:
    fs = FakeCgroupFS(tmp_path / "cg", "v1", hierarchies=("cpu,cpuacct", "memory", "pids"))
    mgr = V1Manager(fs.root, "composer", fs)
    assert mgr.hierarchies["cpu"] == mgr.hierarchies["cpuacct"] == fs.root / "cpu,cpuacct"
    cg = mgr.create("c1")
    cg.apply(Resources(cpu_quota=50_000, cpu_shares=512))
    assert fs.get(fs.root / "cpu,cpuacct/composer/c1/cpu.cfs_quota_us") == "50000"
    fs.set(fs.root / "cpu,cpuacct/composer/c1/cpuacct.usage", "777\n")
    assert cg.stats().cpu_usage_ns == 777


def test_create_makes_every_hierarchy_and_inherits_cpuset(
    v1: V1Manager, v1fs: FakeCgroupFS
) -> None:
    cg = v1.create("c1")
    for h in HIERARCHIES:
        assert (v1fs.root / h / "composer" / "c1").is_dir(), h
    assert not (v1fs.root / "unified" / "composer").exists()
    assert f(v1fs, "cpuset", "c1", "cpuset.cpus") == "0-3"
    assert v1fs.get(v1fs.root / "cpuset/composer/cpuset.mems").strip() == "0"
    assert cg.path("memory") == v1fs.root / "memory/composer/c1"
    assert cg.path("cpuacct") == v1fs.root / "cpuacct/composer/c1"
    assert v1.list() == ["c1"]
    assert v1.open("c1").name == "c1"
    v1.create("c1")  # reuse is fine
    assert v1.list() == ["c1"]


def test_open_missing_and_bad_names(v1: V1Manager) -> None:
    with pytest.raises(CgroupNotFound) as e:
        v1.open("nope")
    assert isinstance(e.value, NotFound) and "nope" in str(e.value)
    with pytest.raises(InvalidArgument):
        v1.create("../escape")
    with pytest.raises(InvalidArgument):
        V1Manager(Path("/sys/fs/cgroup"), "a/b")


def test_memory_limit_sets_memsw_twice_memory_by_default(v1: V1Manager, v1fs: FakeCgroupFS) -> None:
    cg = v1.create("c1")
    cg.apply(Resources(memory=64 * MiB))
    assert f(v1fs, "memory", "c1", "memory.limit_in_bytes") == str(64 * MiB)
    assert f(v1fs, "memory", "c1", "memory.memsw.limit_in_bytes") == str(128 * MiB)
    # lowering needs limit first (the fake kernel, like the real one, keeps limit <= memsw)
    cg.apply(Resources(memory=16 * MiB, memory_swap=16 * MiB))
    assert f(v1fs, "memory", "c1", "memory.limit_in_bytes") == str(16 * MiB)
    assert f(v1fs, "memory", "c1", "memory.memsw.limit_in_bytes") == str(16 * MiB)
    # raising needs memsw first
    cg.apply(Resources(memory=256 * MiB, memory_swap=512 * MiB))
    assert f(v1fs, "memory", "c1", "memory.limit_in_bytes") == str(256 * MiB)
    assert f(v1fs, "memory", "c1", "memory.memsw.limit_in_bytes") == str(512 * MiB)
    cg.apply(Resources(memory=32 * MiB, memory_swap=-1, memory_reservation=16 * MiB))
    assert f(v1fs, "memory", "c1", "memory.memsw.limit_in_bytes") == UNLIMITED
    assert f(v1fs, "memory", "c1", "memory.soft_limit_in_bytes") == str(16 * MiB)


def test_memory_without_swap_accounting(v1: V1Manager, v1fs: FakeCgroupFS) -> None:
    cg = v1.create("c1")
    os.unlink(cg.path("memory") / "memory.memsw.limit_in_bytes")
    cg.apply(Resources(memory=64 * MiB))
    assert f(v1fs, "memory", "c1", "memory.limit_in_bytes") == str(64 * MiB)


def test_oom_kill_disable(v1: V1Manager, v1fs: FakeCgroupFS) -> None:
    cg = v1.create("c1")
    cg.apply(Resources(oom_kill_disable=True))
    assert f(v1fs, "memory", "c1", "memory.oom_control") == "1"


def test_cpu_pids_cpuset_blkio(v1: V1Manager, v1fs: FakeCgroupFS) -> None:
    cg = v1.create("c1")
    cg.apply(
        Resources(
            cpu_quota=50_000,
            cpu_period=200_000,
            cpu_shares=512,
            pids_limit=42,
            cpuset_cpus="1-2",
            cpuset_mems="0",
            blkio_weight=300,
        )
    )
    assert f(v1fs, "cpu", "c1", "cpu.cfs_period_us") == "200000"
    assert f(v1fs, "cpu", "c1", "cpu.cfs_quota_us") == "50000"
    assert f(v1fs, "cpu", "c1", "cpu.shares") == "512"
    assert f(v1fs, "pids", "c1", "pids.max") == "42"
    assert f(v1fs, "cpuset", "c1", "cpuset.cpus") == "1-2"
    assert f(v1fs, "cpuset", "c1", "cpuset.mems") == "0"
    assert f(v1fs, "blkio", "c1", "blkio.bfq.weight") == "300"
    cg.apply(Resources(pids_limit=0))
    assert f(v1fs, "pids", "c1", "pids.max") == "max"


def test_blkio_prefers_cfq_weight_and_errors_without_any(v1: V1Manager, v1fs: FakeCgroupFS) -> None:
    cg = v1.create("c1")
    (cg.path("blkio") / "blkio.weight").write_text("500")
    cg.apply(Resources(blkio_weight=700))
    assert f(v1fs, "blkio", "c1", "blkio.weight") == "700"
    assert f(v1fs, "blkio", "c1", "blkio.bfq.weight") == "100"
    for name in ("blkio.weight", "blkio.bfq.weight"):
        os.unlink(cg.path("blkio") / name)
    cg.apply(Resources())  # not asked for: fine
    with pytest.raises(CgroupError, match="blkio_weight=700") as e:
        cg.apply(Resources(blkio_weight=700))
    assert e.value.limit == "blkio_weight"


@pytest.mark.parametrize(
    ("res", "limit"),
    [
        (Resources(memory=1024), "memory"),
        (Resources(memory=64 * MiB, memory_swap=32 * MiB), "memory_swap"),
        (Resources(memory_swap=64 * MiB), "memory_swap"),
        (Resources(memory=64 * MiB, memory_reservation=128 * MiB), "memory_reservation"),
        (Resources(cpu_quota=500), "cpus"),
        (Resources(cpu_quota=50_000, cpu_period=10), "cpu_period"),
        (Resources(cpu_shares=1), "cpu_shares"),
        (Resources(cpuset_cpus="0-7"), "cpuset_cpus"),
        (Resources(cpuset_cpus="a-b"), "cpuset_cpus"),
        (Resources(cpuset_mems="3"), "cpuset_mems"),
        (Resources(blkio_weight=5), "blkio_weight"),
    ],
)
def test_bad_values_name_limit_and_value(
    v1: V1Manager, v1fs: FakeCgroupFS, res: Resources, limit: str
) -> None:
    cg = v1.create("c1")
    with pytest.raises(CgroupLimitError) as e:
        cg.apply(res)
    assert e.value.limit == limit
    assert limit in str(e.value) and "c1" in str(e.value)
    assert isinstance(e.value, InvalidArgument) and e.value.status == 400
    assert f(v1fs, "memory", "c1", "memory.limit_in_bytes") == UNLIMITED


def test_kernel_refusal_is_a_limit_error(
    v1: V1Manager, v1fs: FakeCgroupFS, monkeypatch: pytest.MonkeyPatch
) -> None:
    cg = v1.create("c1")
    real_write = v1fs.write

    def busy(path: Path, value: str) -> None:
        if path.name == "memory.limit_in_bytes":
            raise OSError(errno.EBUSY, "Device or resource busy", str(path))
        real_write(path, value)

    monkeypatch.setattr(v1fs, "write", busy)
    with pytest.raises(CgroupLimitError, match=r"refused memory=67108864") as e:
        cg.apply(Resources(memory=64 * MiB, memory_swap=64 * MiB))
    assert e.value.value == 64 * MiB


def test_stats_and_oom(v1: V1Manager, v1fs: FakeCgroupFS) -> None:
    cg = v1.create("c1")
    assert cg.stats().memory_limit == 0  # unlimited
    v1fs.set(cg.path("memory") / "memory.usage_in_bytes", "1000\n")
    v1fs.set(cg.path("memory") / "memory.max_usage_in_bytes", "5000\n")
    v1fs.set(cg.path("memory") / "memory.limit_in_bytes", f"{64 * MiB}\n")
    v1fs.set(cg.path("cpuacct") / "cpuacct.usage", "123456789\n")
    v1fs.set(cg.path("pids") / "pids.current", "3\n")
    s = cg.stats()
    assert (s.memory_usage, s.memory_peak, s.memory_limit, s.cpu_usage_ns, s.pids) == (
        1000,
        5000,
        64 * MiB,
        123456789,
        3,
    )
    assert not cg.oom_killed()
    v1fs.set(
        cg.path("memory") / "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n"
    )
    assert cg.oom_killed()
    # memory.events, when a kernel offers it on v1, wins
    v1fs.set(cg.path("memory") / "memory.events", "oom 1\noom_kill 0\n")
    assert not cg.oom_killed()


def test_add_pid_everywhere_and_pids(v1: V1Manager, v1fs: FakeCgroupFS, spawn) -> None:
    cg = v1.create("c1")
    p = spawn()
    cg.add_pid(p.pid)
    for h in HIERARCHIES:
        assert f(v1fs, h, "c1", "cgroup.procs") == str(p.pid), h
    assert cg.pids() == [p.pid]
    p.kill()
    p.wait()
    assert cg.pids() == []
    with pytest.raises(CgroupError, match=f"process {p.pid}.*gone"):
        cg.add_pid(p.pid)


def test_freeze_thaw_stops_the_process(v1: V1Manager, v1fs: FakeCgroupFS, spawn) -> None:
    cg = v1.create("c1")
    p = spawn()
    cg.add_pid(p.pid)
    cg.freeze()
    assert f(v1fs, "freezer", "c1", "freezer.state") == "FROZEN"
    time.sleep(0.05)
    assert _state(p.pid) == "T"
    cg.thaw()
    assert f(v1fs, "freezer", "c1", "freezer.state") == "THAWED"
    time.sleep(0.05)
    assert _state(p.pid) == "S"


def test_kill_all_then_remove_idempotent(v1: V1Manager, v1fs: FakeCgroupFS, spawn) -> None:
    cg = v1.create("c1")
    procs = [spawn("sh", "-c", "trap '' TERM; exec sleep 60"), spawn()]
    for p in procs:
        cg.add_pid(p.pid)
    with pytest.raises(CgroupError, match="kill_all"):
        cg.remove(timeout=0.1)
    cg.kill_all(signal.SIGTERM)  # the trapping one survives a TERM
    time.sleep(0.1)
    assert cg.pids() == [procs[0].pid]
    cg.kill_all()
    assert cg.pids() == []
    assert procs[0].wait(1) == -signal.SIGKILL
    cg.remove()
    cg.remove()
    cg.kill_all()  # teardown after teardown: no error
    assert not cg.exists()
    for h in HIERARCHIES:
        assert not (v1fs.root / h / "composer" / "c1").exists()
    assert v1.list() == []


def test_remove_parent_cleans_everything(v1: V1Manager, v1fs: FakeCgroupFS, spawn) -> None:
    a = v1.create("a")
    v1.create("b")
    a.add_pid(spawn().pid)
    v1.remove_parent()
    v1.remove_parent()
    for h in HIERARCHIES:
        assert not (v1fs.root / h / "composer").exists()


def test_create_rolls_back_on_failure(
    v1: V1Manager, v1fs: FakeCgroupFS, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_mkdir = v1fs.mkdir

    def fail_on_pids(path: Path) -> None:
        if "pids" in path.parts and path.name == "c1":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real_mkdir(path)

    monkeypatch.setattr(v1fs, "mkdir", fail_on_pids)
    with pytest.raises(CgroupError, match="cannot create cgroup directory"):
        v1.create("c1")
    for h in HIERARCHIES:
        assert not (v1fs.root / h / "composer" / "c1").exists(), h


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_kill_all_of_an_empty_cgroup_writes_nothing(
        version: str, request: pytest.FixtureRequest, spawn, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every exit releases the cgroup of a container whose init is gone: no freeze, kill or
    thaw for nobody (the freezer's round trip was most of a release); a process still in
    it is killed as before."""
    mgr, fs = request.getfixturevalue(version), request.getfixturevalue(f"{version}fs")
    cg = mgr.create("c1")
    writes: list[str] = []
    inner = fs.write

    def spy(path: Path, value: str) -> None:
        writes.append(path.name)
        inner(path, value)

    monkeypatch.setattr(fs, "write", spy)
    cg.kill_all()
    assert writes == []
    p = spawn()
    inner(cg.path("freezer") / "cgroup.procs", str(p.pid))
    cg.kill_all()
    assert writes and cg.pids() == []
    assert p.wait(1) == -signal.SIGKILL
    cg.remove()


# A hierarchy unmounted (or mounted) after the manager listed them (composerd's start): the
# next create or join re-scans once and works on what is mounted now; nothing else re-scans.
@pytest.mark.parametrize("keep_mount_point", [True, False])
def test_create_after_a_hierarchy_was_unmounted_rescans_once(
    v1: V1Manager, v1fs: FakeCgroupFS, keep_mount_point: bool, caplog: pytest.LogCaptureFixture
) -> None:
    for i in range(5):
        v1.create(f"c{i}")
    v1fs.mount("hugetlb")  # mounted later: nothing fails, so nothing re-scans
    v1.create("c5")
    v1.open("c5").remove()
    assert v1.scans == 1 and "hugetlb" not in v1.hierarchies
    for i in range(5):
        v1.open(f"c{i}").remove()
    v1fs.unmount("pids", keep_mount_point=keep_mount_point)
    cg = v1.create("late")  # a plain dir where pids was mounted, or ENOENT
    assert v1.scans == 2
    assert "pids" not in v1.hierarchies and v1.hierarchies["hugetlb"] == v1fs.root / "hugetlb"
    assert cg.directories() == [m / "composer" / "late" for m in v1.mounts]
    assert all((d / "cgroup.procs").exists() for d in cg.directories())
    assert not (v1fs.root / "pids" / "composer").exists()  # the plain dirs were taken back
    assert "gone ['" + str(v1fs.root / "pids") + "'], new ['" in caplog.text
    v1.create("later")
    assert v1.scans == 2


def test_join_after_a_hierarchy_was_unmounted_renews_the_cgroup(
    tmp_path: Path, spawn
) -> None:
    fs = FakeCgroupFS(tmp_path / "cg", "v1", hierarchies=("cpu,cpuacct", "devices", "pids"))
    mgr = V1Manager(fs.root, "composer", fs)
    cg = mgr.create("c1")
    cg.apply(Resources(pids_limit=10))
    # between the container's cgroup and its process joining it: pids unmounted and
    # mounted again (a new, empty hierarchy at the same place), cpu,cpuacct unmounted,
    # memory mounted
    fs.unmount("pids")
    fs.mount("pids")
    fs.unmount("cpu,cpuacct", keep_mount_point=False)
    fs.mount("memory")
    p = spawn()
    cg.add_pid(p.pid)
    assert mgr.scans == 2 and sorted(mgr.hierarchies) == ["devices", "memory", "pids"]
    assert cg.directories() == [fs.root / h / "composer" / "c1"
                                for h in ("devices", "memory", "pids")]
    assert cg.pids() == [p.pid]
    for h in ("devices", "memory", "pids"):
        assert f(fs, h, "c1", "cgroup.procs") == str(p.pid), h
    assert f(fs, "pids", "c1", "pids.max") == "10"  # written again in the new directory


def test_a_hierarchy_still_failing_after_the_rescan_is_an_error(
    v1: V1Manager, v1fs: FakeCgroupFS, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_mkdir = v1fs.mkdir

    def enoent_in_pids(path: Path) -> None:
        if "pids" in path.parts and path.name == "c1":
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(path))
        real_mkdir(path)

    monkeypatch.setattr(v1fs, "mkdir", enoent_in_pids)
    with pytest.raises(CgroupError, match="cannot create cgroup directory .*pids/composer/c1"):
        v1.create("c1")
    assert v1.scans == 2  # once, not in a loop
    assert v1.list() == []  # rolled back both times


def test_add_pid_without_a_renew_reports_the_missing_file(
    v1: V1Manager, v1fs: FakeCgroupFS, spawn
) -> None:
    cg = v1.create("c1")
    v1fs.unmount("pids")
    v1fs.unmount("memory")
    cg = type(cg)(cg.target, cg.directories())  # as the v2 driver makes them: no renew
    p = spawn()
    with pytest.raises(CgroupError, match="cannot add process .* to .*/memory/composer/c1"):
        cg.add_pid(p.pid)
    assert v1.scans == 1
