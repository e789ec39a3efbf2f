"""The real v2 driver in a scope systemd delegated to it: limits written and read back from
the kernel, OOM seen in memory.events, freeze through cgroup.freeze, kill through cgroup.kill,
a pids limit against a fork bomb."""
from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

from runtime.cgroups import V2Manager
from runtime.cgroups.v2 import SUPERVISOR
from runtime.types import Resources

MiB = 1024 * 1024
PY = sys.executable


def read(cg_dir: Path, name: str) -> str:
    return (cg_dir / name).read_text().strip()


def test_the_scope_is_delegated_and_our_processes_sit_in_its_leaf(manager: V2Manager) -> None:
    cg = manager.create("c1")
    d = cg.path("memory")
    assert d == Path("/sys/fs/cgroup/system.slice") / f"{manager.parent}.scope" / "c1"
    assert read(d, "cgroup.controllers") == "cpuset cpu io memory pids"
    assert read(d.parent, "cgroup.procs") == ""  # no internal processes
    assert read(d.parent / SUPERVISOR, "cgroup.procs") != ""
    assert manager.list() == ["c1"]


def test_limits_read_back_from_the_kernel(manager: V2Manager) -> None:
    cg = manager.create("limits")
    cg.apply(Resources(memory=64 * MiB, memory_swap=96 * MiB, memory_reservation=16 * MiB,
                       cpu_quota=50_000, cpu_period=100_000, cpu_shares=512, pids_limit=33,
                       cpuset_cpus="0", cpuset_mems="0", blkio_weight=500))
    d = cg.path("memory")
    assert read(d, "memory.max") == str(64 * MiB)
    assert read(d, "memory.swap.max") == str(32 * MiB)
    assert read(d, "memory.low") == str(16 * MiB)
    assert read(d, "cpu.max") == "50000 100000"
    assert read(d, "cpu.weight") == "20"
    assert read(d, "pids.max") == "33"
    assert read(d, "cpuset.cpus") == "0" and read(d, "cpuset.cpus.effective") == "0"
    assert read(d, "cpuset.mems") == "0"
    assert read(d, "io.weight").splitlines()[0] == "default 4950"
    assert cg.stats().memory_limit == 64 * MiB
    cg.apply(Resources(memory=128 * MiB, memory_swap=-1, cpu_quota=-1, pids_limit=-1))
    assert read(d, "memory.max") == str(128 * MiB)
    assert read(d, "memory.swap.max") == "max"
    assert read(d, "cpu.max") == "max 100000"
    assert read(d, "pids.max") == "max"


def test_oom_kill_is_seen_in_memory_events(manager: V2Manager, spawn) -> None:
    cg = manager.create("oom")
    cg.apply(Resources(memory=32 * MiB, memory_swap=32 * MiB))
    p = spawn(cg, PY, "-c", "x = b'a' * (200 * 1024 * 1024)")
    assert p.wait(60) == -signal.SIGKILL
    assert cg.oom_killed()
    events = dict(line.split() for line in read(cg.path("memory"), "memory.events").splitlines())
    assert int(events["oom_kill"]) >= 1
    fits = manager.create("fits")
    fits.apply(Resources(memory=64 * MiB))
    assert spawn(fits, PY, "-c", "x = b'a' * (8 * 1024 * 1024)").wait(60) == 0
    assert not fits.oom_killed()


def test_freeze_and_thaw_through_cgroup_freeze(manager: V2Manager, spawn) -> None:
    cg = manager.create("freeze")
    spawn(cg, PY, "-c", "while True: pass")
    time.sleep(0.5)
    cg.freeze()
    d = cg.path("freezer")
    assert read(d, "cgroup.freeze") == "1" and "frozen 1" in read(d, "cgroup.events")
    a = cg.stats().cpu_usage_ns
    time.sleep(0.5)
    b = cg.stats().cpu_usage_ns
    assert b - a < 20_000_000  # < 20 ms of CPU while frozen
    cg.thaw()
    assert "frozen 0" in read(d, "cgroup.events")
    time.sleep(0.5)
    assert cg.stats().cpu_usage_ns - b > 50_000_000


TREE = """
import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
for _ in range(3):
    if os.fork() == 0:
        if os.fork() == 0:
            os.setsid()
            time.sleep(120)
        os._exit(0)
    os.wait()
print("ready", flush=True)
time.sleep(120)
"""


def test_kill_all_uses_cgroup_kill(manager: V2Manager, spawn) -> None:
    cg = manager.create("tree")
    assert cg.target.has("freezer", "cgroup.kill")
    p = spawn(cg, PY, "-c", TREE, stdout=-1)
    assert p.stdout is not None and p.stdout.readline().strip() == b"ready"
    assert len(cg.pids()) == 4
    cg.kill_all(signal.SIGTERM)
    time.sleep(0.2)
    assert len(cg.pids()) == 4
    cg.kill_all()
    assert cg.pids() == []
    assert "populated 0" in read(cg.path("freezer"), "cgroup.events")
    assert p.wait(5) == -signal.SIGKILL
    cg.remove()
    assert not cg.exists()


FORK_BOMB = """
import os, time
n = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        n += 1
except OSError as e:
    print(n, e.errno, flush=True)
time.sleep(60)
"""


def test_pids_limit_stops_a_fork_bomb(manager: V2Manager, spawn) -> None:
    cg = manager.create("forkbomb")
    cg.apply(Resources(pids_limit=16))
    p = spawn(cg, PY, "-c", FORK_BOMB, stdout=-1)
    assert p.stdout is not None
    forked, err = map(int, p.stdout.readline().split())
    assert err == 11 and 0 < forked < 16  # EAGAIN
    assert cg.stats().pids <= 16
    events = read(cg.path("pids"), "pids.events")
    assert int(events.split()[1]) >= 1  # "max N": forks refused at the limit
    cg.kill_all()
    assert cg.pids() == []
