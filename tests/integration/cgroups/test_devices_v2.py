"""The v2 device filter on the real kernel: assembled, loaded with bpf(2), attached to a
cgroup2 cgroup, and asked by real mknod(2)/open(2) calls of a process inside it.

On this hybrid host the cgroup2 mount at /sys/fs/cgroup/unified has no controllers, but
device programs need none: the kernel runs the programs of the task's cgroup2 cgroup
whatever the v1 hierarchies say. On a pure v2 host the same tests use /sys/fs/cgroup.
Nothing here writes to a block device: opens are for reading, or of unbound loop devices.
"""
from __future__ import annotations

import ctypes
import errno
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.cgroups import DirCgroup, V2Manager, bpf, devprog
from runtime.cgroups.errors import CgroupError
from runtime.devrules import policy, rules
from runtime.hostdevices import resolve
from runtime.types import ContainerSpec, DeviceMapping
from tests.loopdev import loop_devices

pytestmark = pytest.mark.usefixtures(loop_devices.__name__)

PURE_V2 = Path("/sys/fs/cgroup/cgroup.controllers").exists()
ROOT = Path("/sys/fs/cgroup") if PURE_V2 else Path("/sys/fs/cgroup/unified")

# Runs in the probed process: waits for "go" (sent once it is in the cgroup), then tries
# each operation and prints "ok" or the errno name for each.
PROBE = r"""
import errno, json, os, pty, stat, sys
ops = json.loads(sys.argv[1])
sys.stdin.readline()
out = []
for op in ops:
    try:
        if op[0] == "mknod":
            kind = stat.S_IFBLK if op[2] == "b" else stat.S_IFCHR
            os.mknod(op[1], kind | 0o600, os.makedev(op[3], op[4]))
        elif op[0] == "open":
            flags = {"r": os.O_RDONLY, "w": os.O_WRONLY, "rw": os.O_RDWR}[op[2]]
            os.close(os.open(op[1], flags))
        elif op[0] == "openpty":
            for fd in pty.openpty():  # /dev/ptmx, then /dev/pts/N
                os.close(fd)
        out.append("ok")
    except OSError as e:
        out.append(errno.errorcode.get(e.errno, str(e.errno)))
print(json.dumps(out))
"""


def probe(cg: DirCgroup | None, ops: list[tuple[object, ...]]) -> list[str]:
    """Run `ops` in a process inside `cg` (None: outside any test cgroup, as a control)."""
    p = subprocess.Popen([sys.executable, "-c", PROBE, json.dumps(ops)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        if cg is not None:
            cg.add_pid(p.pid)
        out, _ = p.communicate(b"go\n", timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0
    return list(json.loads(out))


@pytest.fixture
def manager() -> Iterator[V2Manager]:
    parent = f"composer-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    mgr = V2Manager(ROOT, parent)
    yield mgr
    mgr.remove_parent()
    assert not (ROOT / parent).exists(), "cgroup left behind"


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[Path]:
    """A folder for the nodes the probes make (on / here: device nodes work there)."""
    yield tmp_path
    for f in tmp_path.iterdir():
        f.unlink()


def loop(n: int) -> tuple[int, int]:
    st = os.stat(f"/dev/loop{n}")
    return os.major(st.st_rdev), os.minor(st.st_rdev)


def test_default_rules_refuse_a_block_device_and_allow_the_standard_nodes(
        manager: V2Manager, nodes: Path) -> None:
    cg = manager.create("c1")
    cg.restrict_devices()
    blk = str(nodes / "blk")
    kmsg = str(nodes / "kmsg")
    ops: list[tuple[object, ...]] = [
        ("mknod", blk, "b", *loop(0)), ("open", blk, "r"),  # mknod yes (b *:* m), open no
        ("mknod", kmsg, "c", 1, 11), ("open", kmsg, "r"),  # /dev/kmsg's numbers
        ("open", "/dev/null", "rw"), ("open", "/dev/zero", "r"), ("open", "/dev/full", "w"),
        ("open", "/dev/urandom", "r"), ("open", "/dev/random", "r"), ("openpty",),
    ]
    assert probe(cg, ops) == ["ok", "EPERM", "ok", "EPERM", "ok", "ok", "ok", "ok", "ok", "ok"]
    for f in (blk, kmsg):
        os.unlink(f)
    assert probe(None, ops) == ["ok"] * len(ops)  # control: the refusals are the filter's


def test_a_listed_device_is_allowed_with_its_access_only(manager: V2Manager, nodes: Path) -> None:
    _, extra = resolve(ContainerSpec(name="c2", image="busybox",
                                     devices=(DeviceMapping("/dev/loop0", permissions="r"),)))
    cg = manager.create("c2")
    cg.restrict_devices(extra)
    listed, other = str(nodes / "listed"), str(nodes / "other")
    assert probe(cg, [
        ("mknod", listed, "b", *loop(0)), ("open", listed, "r"), ("open", listed, "w"),
        ("mknod", other, "b", *loop(1)), ("open", other, "r"), ("open", "/dev/loop0", "r"),
    ]) == ["ok", "ok", "EPERM", "ok", "EPERM", "ok"]


def test_device_cgroup_rules_extend_the_list_and_a_allows_everything(
        manager: V2Manager, nodes: Path) -> None:
    wild = manager.create("c3")
    wild.restrict_devices(rules(["b 7:* rw"]))
    everything = manager.create("c4")
    everything.restrict_devices(rules(["a *:* rwm"]))
    ops: list[tuple[object, ...]] = [("open", "/dev/loop1", "rw"), ("open", "/dev/loop-control", "r")]
    assert probe(wild, ops) == ["ok", "EPERM"]
    assert probe(everything, ops) == ["ok", "ok"]


def test_without_m_mknod_is_refused(manager: V2Manager, nodes: Path) -> None:
    cg = manager.create("c5")
    code = devprog.encode(devprog.assemble(policy(rules(["c 1:3 rw"]))))
    bpf.attach_device_filter(cg.path("devices"), code)
    assert probe(cg, [("mknod", str(nodes / "null"), "c", 1, 3), ("open", "/dev/null", "rw"),
                      ("open", "/dev/zero", "r")]) == ["EPERM", "ok", "EPERM"]


class _GetById(ctypes.Structure):  # BPF_PROG_GET_FD_BY_ID
    _fields_ = [("prog_id", ctypes.c_uint32), ("next_id", ctypes.c_uint32),
                ("open_flags", ctypes.c_uint32)]


def _program_exists(prog_id: int) -> bool:
    try:
        os.close(bpf._bpf(13, _GetById(prog_id=prog_id)))
        return True
    except OSError as e:
        assert e.errno == errno.ENOENT
        return False


def test_a_new_filter_replaces_the_old_one_and_leaves_no_fd(manager: V2Manager) -> None:
    cg = manager.create("c6")
    fds = len(os.listdir("/proc/self/fd"))
    cg.restrict_devices()
    [first] = bpf.attached_device_programs(cg.path("devices"))
    cg.restrict_devices(rules(["b 7:0 r"]))
    [second] = bpf.attached_device_programs(cg.path("devices"))
    assert second != first
    assert len(os.listdir("/proc/self/fd")) == fds  # the attachment holds the program
    deadline = time.monotonic() + 5
    while _program_exists(first):  # replaced: freed by the kernel
        assert time.monotonic() < deadline, "the replaced program is still loaded"
        time.sleep(0.05)
    assert _program_exists(second)
    cg.remove()
    while _program_exists(second):  # the cgroup is gone: so is its program
        assert time.monotonic() < deadline + 5, "the program outlived its cgroup"
        time.sleep(0.05)


def test_refusals_are_one_clear_line(manager: V2Manager, tmp_path: Path) -> None:
    code = devprog.encode(devprog.assemble(policy(rules(["c 1:3 rw"]))))
    with pytest.raises(bpf.BPFError, match=f"cannot attach a device filter to {tmp_path}: "
                                           "it is not a cgroup v2 directory"):
        bpf.attach_device_filter(tmp_path, code)
    bad = devprog.encode([devprog.Insn(devprog.LDX_W, 2, 1, 12), devprog.Insn(devprog.EXIT)])
    with pytest.raises(bpf.BPFError) as e:
        bpf.load_device_program(bad)
    assert str(e.value).startswith("the kernel's verifier rejected the device filter: ")
    assert "off=12" in str(e.value) and "\n" not in str(e.value)
    cg = manager.create("c7")
    cg.remove()  # a cgroup removed under us: the engine gets a CgroupError, not an OSError
    with pytest.raises(CgroupError, match="cgroup c7: cannot restrict device access on cgroup v2: "
                                          "cannot open cgroup"):
        cg.restrict_devices()
