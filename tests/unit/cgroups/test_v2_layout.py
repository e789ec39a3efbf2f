"""Where the v2 driver puts cgroups and how it enables controllers: down the whole path,
never beside processes, in a scope systemd delegates (a fake ScopeBus here; the host tier
uses the real one), and what a host that cannot give controllers gets."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.cgroups import CgroupError, SystemdError, V2Manager, open_manager
from runtime.cgroups.cgroup import _rmtree
from runtime.cgroups.v2 import SUPERVISOR
from runtime.errors import InvalidArgument
from runtime.types import Resources
from tests.unit.cgroups.fakefs import FakeCgroupFS

ALL = "cpuset cpu io memory pids"


class FakeSystemd:
    """What systemd does for a Delegate=yes scope: enable every controller from the root to
    the scope, put the PIDs in it, end it (killing what is left) on StopUnit."""

    def __init__(self, fs: FakeCgroupFS) -> None:
        self.fs = fs
        self.calls: list[str] = []
        self.slice = fs.root / "system.slice"
        fs.mkdir(self.slice)

    def _dir(self, unit: str) -> Path:
        return self.slice / unit

    def start_scope(self, unit: str, pids: list[int], description: str) -> None:
        self.calls.append(f"start {unit}")
        for d in (self.fs.root, self.slice):
            self.fs.write(d / "cgroup.subtree_control", " ".join(f"+{c}" for c in ALL.split()))
        self.fs.mkdir(self._dir(unit))
        for pid in pids:
            self.fs.write(self._dir(unit) / "cgroup.procs", str(pid))

    def attach(self, unit: str, subcgroup: str, pids: list[int]) -> None:
        self.calls.append(f"attach {unit}{subcgroup}")
        d = self._dir(unit) / subcgroup.lstrip("/")
        if not d.is_dir():
            raise SystemdError("Failed to attach processes to control group: No such file")
        for pid in pids:
            self.fs.write(d / "cgroup.procs", str(pid))

    def active_state(self, unit: str) -> str | None:
        return "active" if self._dir(unit).is_dir() else None

    def stop(self, unit: str) -> None:
        self.calls.append(f"stop {unit}")
        d = self._dir(unit)
        if d.is_dir():
            self.fs.write(d / "cgroup.kill", "1")
            _rmtree(self.fs, d, unit, 2.0)


@pytest.fixture
def anchor() -> Iterator[subprocess.Popen[bytes]]:
    p = subprocess.Popen(["sleep", "60"])
    yield p
    p.kill()
    p.wait()


@pytest.fixture
def sd_setup(v2fs: FakeCgroupFS) -> tuple[V2Manager, FakeSystemd]:
    sd = FakeSystemd(v2fs)
    return V2Manager(v2fs.root, "composer", v2fs, sd), sd


def read(fs: FakeCgroupFS, path: Path) -> str:
    return fs.get(path).strip()


def test_controllers_are_enabled_down_a_nested_path(tmp_path: Path) -> None:
    fs = FakeCgroupFS(tmp_path / "cg", "v2")
    mgr = open_manager(fs.root, "composer", fs, systemd=None)
    mgr.base = fs.root / "outer" / "composer"  # e.g. a cgroup namespace's deeper parent
    cg = mgr.create("c1")
    for level in (fs.root, fs.root / "outer", fs.root / "outer" / "composer"):
        assert read(fs, level / "cgroup.subtree_control") == ALL
    assert read(fs, cg.path("memory") / "cgroup.controllers") == ALL


def test_our_processes_leave_the_base_before_it_gets_controllers(
        v2: V2Manager, v2fs: FakeCgroupFS, anchor: subprocess.Popen[bytes]) -> None:
    v2fs.mkdir(v2.base)
    v2fs.write(v2.base / "cgroup.procs", str(anchor.pid))  # e.g. a daemon started in it
    cg = v2.create("c1")
    assert read(v2fs, v2.base / SUPERVISOR / "cgroup.procs") == str(anchor.pid)
    assert read(v2fs, v2.base / "cgroup.procs") == ""
    assert read(v2fs, v2.base / "cgroup.subtree_control") == ALL
    cg.apply(Resources(memory=64 << 20))
    assert v2.list() == ["c1"]  # the leaf is not a container
    with pytest.raises(InvalidArgument, match="reserved"):
        v2.create(SUPERVISOR)


def test_a_host_that_offers_no_controller_gets_one_line_and_no_limits(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    fs = FakeCgroupFS(tmp_path / "cg", "v2", controllers="hugetlb rdma misc")
    mgr = V2Manager(fs.root, "composer", fs)
    with caplog.at_level(logging.WARNING):
        cg = mgr.create("c1")
        mgr.create("c2")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1  # said once, not per container
    assert "no cpu, cpuset, io, memory, pids controller" in lines[0]
    assert "the kernel does not offer it" in lines[0] and "without those limits" in lines[0]
    with pytest.raises(CgroupError, match="the memory controller is not available"):
        cg.apply(Resources(memory=64 << 20))
    cg.kill_all()  # core files still work: freeze, kill, events
    cg.freeze()
    cg.thaw()


def test_enabling_that_fails_above_us_names_the_level_and_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, anchor) -> None:
    """A level we do not own holds processes (say a cgroup namespace's root): nothing is
    enabled there (even threaded cpu/pids would make it a thread root, whose domain children
    can hold no process), containers still start, limits are refused."""
    fs = FakeCgroupFS(tmp_path / "cg", "v2")
    fs.write(fs.root / "cgroup.subtree_control", "+cpuset +cpu +io +memory +pids")
    fs.mkdir(fs.root / "ns")
    fs.write(fs.root / "ns" / "cgroup.procs", str(anchor.pid))
    mgr = V2Manager(fs.root, "composer", fs)
    mgr.base = fs.root / "ns" / "composer"
    with caplog.at_level(logging.WARNING):
        cg = mgr.create("c1")
    msg = caplog.records[0].getMessage()
    assert "no cpu, cpuset, io, memory, pids controller" in msg
    assert "ns holds processes (no internal processes); move them into a child" in msg
    assert read(fs, fs.root / "ns" / "cgroup.subtree_control") == ""
    p = subprocess.Popen(["sleep", "60"])
    try:
        cg.add_pid(p.pid)  # the leaf still takes processes
    finally:
        p.kill()
        p.wait()
    with pytest.raises(CgroupError, match="the pids controller is not available"):
        cg.apply(Resources(pids_limit=5))


def test_a_failed_create_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    fs = FakeCgroupFS(tmp_path / "cg", "v2")
    mgr = V2Manager(fs.root, "composer", fs)
    real = fs.mkdir

    def mkdir(path: Path) -> None:
        if path.name == "c1":
            raise OSError(28, "No space left on device")  # e.g. cgroup.max.descendants
        real(path)

    monkeypatch.setattr(fs, "mkdir", mkdir)
    with pytest.raises(CgroupError, match="cannot create cgroup directory .*c1"):
        mgr.create("c1")
    assert not (fs.root / "composer").exists()


def test_under_systemd_the_scope_is_asked_for_and_anchored(
        sd_setup: tuple[V2Manager, FakeSystemd], v2fs: FakeCgroupFS, anchor) -> None:
    mgr, sd = sd_setup
    assert mgr.base == v2fs.root / "system.slice" / "composer.scope"
    with pytest.raises(CgroupError, match="delegate"):
        mgr.create("c0")  # no scope yet, and nothing to anchor one with
    mgr.delegate([anchor.pid])
    assert sd.calls == ["start composer.scope"]
    assert read(v2fs, mgr.base / SUPERVISOR / "cgroup.procs") == str(anchor.pid)
    cg = mgr.create("c1")
    assert cg.path("memory") == mgr.base / "c1"
    assert read(v2fs, mgr.base / "cgroup.subtree_control") == ALL
    cg.apply(Resources(memory=64 << 20, pids_limit=9))
    # a restarted engine finds the scope running: its new fork server joins the leaf
    again = V2Manager(v2fs.root, "composer", v2fs, sd)
    other = subprocess.Popen(["sleep", "60"])
    try:
        again.delegate([other.pid])
        assert sd.calls[-1] == "attach composer.scope/supervisor"
        assert str(other.pid) in read(v2fs, mgr.base / SUPERVISOR / "cgroup.procs")
        assert again.open("c1").stats().memory_limit == 64 << 20
    finally:
        other.kill()
        other.wait()
    mgr.open("c1").remove()
    mgr.remove_parent()
    assert sd.calls[-1] == "stop composer.scope"
    assert not mgr.base.exists()


def test_a_scope_stopped_behind_our_back_is_asked_for_again(
        sd_setup: tuple[V2Manager, FakeSystemd], anchor) -> None:
    mgr, sd = sd_setup
    mgr.delegate([anchor.pid])
    sd.stop("composer.scope")  # `systemctl stop composer.scope` (kills the anchor too)
    anchor.wait()
    fresh = subprocess.Popen(["sleep", "60"])
    try:
        mgr._anchors = [fresh.pid]
        mgr.create("c1")
        assert sd.calls.count("start composer.scope") == 2
    finally:
        fresh.kill()
        fresh.wait()
        mgr.remove_parent()


def test_auto_keeps_todays_layout_without_systemd(v2fs: FakeCgroupFS) -> None:
    mgr = open_manager(v2fs.root, "composer", v2fs)  # a fake tree never asks D-Bus
    assert isinstance(mgr, V2Manager) and mgr.systemd is None
    assert mgr.base == v2fs.root / "composer"
    mgr.delegate([1])  # no-op
    assert not mgr.base.exists()


def test_systemd_unreachable_is_one_warning_and_todays_layout(
        tmp_path: Path, monkeypatch, caplog: pytest.LogCaptureFixture) -> None:
    import runtime.cgroups as cgroups

    def unreachable(self, unit: str) -> None:
        raise SystemdError("cannot reach systemd on the system bus: [Errno 2] No such file")

    monkeypatch.setattr(cgroups, "booted", lambda: True)
    monkeypatch.setattr(cgroups.SystemdBus, "active_state", unreachable)
    monkeypatch.setattr(cgroups, "detect", lambda root, fs: "v2")
    (tmp_path / "cgroup.controllers").write_text(ALL)
    with caplog.at_level(logging.WARNING):
        mgr = open_manager(tmp_path, "composer")
    assert isinstance(mgr, V2Manager) and mgr.systemd is None
    assert "cannot ask it for a delegated cgroup" in caplog.records[0].getMessage()




def test_a_scope_ending_while_we_join_it_is_asked_for_again(
        sd_setup: tuple[V2Manager, FakeSystemd], anchor, monkeypatch) -> None:
    """The previous daemon's scope emptied just now: systemd says active, then the attach
    fails because it is going away; delegate() asks again and starts a fresh scope."""
    mgr, sd = sd_setup
    sd.fs.mkdir(sd.slice / "composer.scope")  # still there, about to go
    real_attach = sd.attach

    def attach_fails_once(unit: str, sub: str, pids: list[int]) -> None:
        monkeypatch.setattr(sd, "attach", real_attach)
        _rmtree(sd.fs, sd.slice / unit, unit, 1.0)  # systemd removed it meanwhile
        raise SystemdError("Unit composer.scope is not active.")

    monkeypatch.setattr(sd, "attach", attach_fails_once)
    mgr.delegate([anchor.pid])
    assert sd.calls == ["start composer.scope"]
    assert read(sd.fs, mgr.base / SUPERVISOR / "cgroup.procs") == str(anchor.pid)
    mgr.remove_parent()
