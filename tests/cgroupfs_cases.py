"""One table of cgroup v2 operations and what the kernel answers, for the fake and the kernel.

tests/unit/cgroups/test_fake_matches_kernel.py runs every case against the fake tree
(fakefs.FakeCgroupFS); tests/host/cgroups/test_kernel_cases.py runs the same cases against
the real cgroup v2 tree of the VM (inside a scope systemd delegated to the test). When the
kernel and the fake disagree, one of the two tiers fails on the same row.

Each case starts in a fresh cgroup `top` whose cgroup.controllers offers cpuset, cpu, io,
memory and pids and whose subtree_control is empty; paths are relative to it ("" is top).
A step's `expect` is "ok", an errno name ("EBUSY"), the text a read returns, "yes"/"no"
for `exists`, or "populated N frozen M" for `events` (polled: the kernel is asynchronous).
"""

from __future__ import annotations

import errno
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from runtime.cgroups.fs import CgroupFS


@dataclass(frozen=True)
class Step:
    op: str  # mkdir, rmdir, write, read, exists, spawn, kill, events
    path: str = ""
    value: str = ""
    expect: str = "ok"


def W(path: str, value: str, expect: str = "ok") -> Step:  # noqa: N802 - table shorthand
    return Step("write", path, value, expect)


def R(path: str, expect: str) -> Step:  # noqa: N802
    return Step("read", path, "", expect)


def E(path: str, expect: str) -> Step:  # noqa: N802
    return Step("exists", path, "", expect)


def values(file: str, enable: str, rows: list[tuple[str, str]]) -> list[Step]:
    """Write each value to a/<file>; "ok:<text>" means accepted and read back as <text>."""
    steps = [W("cgroup.subtree_control", f"+{enable}"), Step("mkdir", "a")]
    for value, outcome in rows:
        if outcome.startswith("ok:"):
            steps += [W(f"a/{file}", value), R(f"a/{file}", outcome[3:])]
        else:
            steps.append(W(f"a/{file}", value, outcome))
    return steps


CASES: dict[str, list[Step]] = {
    "controller files follow the parent's subtree_control": [
        Step("mkdir", "a"),
        E("a/memory.max", "no"),
        E("a/cgroup.freeze", "yes"),
        R("a/cgroup.controllers", ""),
        W("a/memory.max", "1M", "ENOENT"),
        W("cgroup.subtree_control", "+memory +pids"),
        E("a/memory.max", "yes"),
        E("a/pids.max", "yes"),
        E("a/cpu.max", "no"),
        R("a/cgroup.controllers", "memory pids"),
        W("a/memory.max", "1M"),
        W("cgroup.subtree_control", "-memory"),
        E("a/memory.max", "no"),
        W("cgroup.subtree_control", "+memory"),
        R("a/memory.max", "max"),  # a fresh controller state: the old limit is gone
        R("cgroup.subtree_control", "memory pids"),
    ],
    "subtree_control tokens and what each level is offered": [
        W("cgroup.subtree_control", "+nosuch", "EINVAL"),
        W("cgroup.subtree_control", "memory", "EINVAL"),
        Step("mkdir", "a"),
        W("a/cgroup.subtree_control", "+memory", "ENOENT"),
        W("cgroup.subtree_control", "+memory +cpu"),
        R("cgroup.subtree_control", "cpu memory"),
        W("a/cgroup.subtree_control", "+memory"),
        W("cgroup.subtree_control", "-memory", "EBUSY"),
        W("cgroup.subtree_control", "-cpu"),
        R("cgroup.subtree_control", "memory"),
    ],
    "no internal processes": [
        W("cgroup.subtree_control", "+memory"),
        Step("mkdir", "a"),
        Step("spawn", "", expect="EBUSY"),
        Step("spawn", "a"),
        W("a/cgroup.subtree_control", "+memory", "EBUSY"),
        Step("mkdir", "a/b"),
        W("a/cgroup.subtree_control", "+memory", "EBUSY"),
        Step("kill"),
        W("a/cgroup.subtree_control", "+memory"),
        Step("spawn", "a", expect="EBUSY"),
        Step("spawn", "a/b"),
    ],
    "threaded controllers may sit beside processes": [
        W("cgroup.subtree_control", "+pids +cpu +memory"),
        Step("mkdir", "a"),
        Step("spawn", "a"),
        W("a/cgroup.subtree_control", "+pids"),
        Step("spawn", "a"),
        W("a/cgroup.subtree_control", "+memory", "ENOTSUP"),  # a is now a thread root
        R("a/cgroup.subtree_control", "pids"),
        Step("mkdir", "a/b"),
        Step("spawn", "a/b", expect="ENOTSUP"),  # a domain below a thread root
    ],
    "rmdir and mkdir": [
        Step("mkdir", "a"),
        Step("mkdir", "a", expect="EEXIST"),
        Step("mkdir", "x/y", expect="ENOENT"),
        Step("mkdir", "a/b"),
        Step("rmdir", "a", expect="EBUSY"),
        Step("spawn", "a/b"),
        Step("rmdir", "a/b", expect="EBUSY"),
        Step("kill"),
        Step("rmdir", "a/b"),
        Step("rmdir", "a"),
        Step("rmdir", "a", expect="ENOENT"),
    ],
    "cgroup.events and cgroup.freeze": [
        Step("mkdir", "a"),
        Step("mkdir", "a/b"),
        Step("events", "a", expect="populated 0 frozen 0"),
        Step("spawn", "a/b"),
        Step("events", "a", expect="populated 1 frozen 0"),
        W("a/cgroup.freeze", "2", "ERANGE"),
        W("a/cgroup.freeze", "x", "EINVAL"),
        W("a/cgroup.freeze", "1"),
        Step("events", "a", expect="populated 1 frozen 1"),
        Step("events", "a/b", expect="populated 1 frozen 1"),  # frozen through the parent
        R("a/b/cgroup.freeze", "0"),
        W("a/cgroup.freeze", "0"),
        Step("events", "a/b", expect="populated 1 frozen 0"),
        Step("kill"),
        Step("events", "a", expect="populated 0 frozen 0"),
        W("cgroup.events", "populated 0", "EINVAL"),
    ],
    "cgroup.kill": [
        Step("mkdir", "a"),
        Step("mkdir", "a/b"),
        Step("spawn", "a"),
        Step("spawn", "a/b"),
        W("a/cgroup.kill", "2", "ERANGE"),
        W("a/cgroup.kill", "x", "EINVAL"),
        Step("events", "a", expect="populated 1 frozen 0"),
        W("a/cgroup.kill", "1"),
        Step("events", "a", expect="populated 0 frozen 0"),
    ],
    "cgroup.procs values": [
        Step("mkdir", "a"),
        W("a/cgroup.procs", "abc", "EINVAL"),
        W("a/cgroup.procs", "-5", "EINVAL"),
        W("a/cgroup.procs", "999999999", "ESRCH"),
    ],
    "read-only files": [  # root passes the permission check; kernfs has no write op: EINVAL
        W("cgroup.subtree_control", "+memory +pids +cpuset"),
        Step("mkdir", "a"),
        W("a/memory.current", "0", "EINVAL"),
        W("a/memory.events", "oom 1", "EINVAL"),
        W("a/pids.current", "0", "EINVAL"),
        W("a/cgroup.controllers", "memory", "EINVAL"),
        W("a/cpuset.cpus.effective", "0", "EINVAL"),
    ],
    "memory.max": values("memory.max", "memory", [
        ("max", "ok:max"),
        ("64M", "ok:67108864"),
        ("64m", "ok:67108864"),
        ("1G", "ok:1073741824"),
        ("4097", "ok:4096"),  # kept in pages
        ("100", "ok:0"),
        (" 8M\n", "ok:8388608"),
        ("0x1000", "ok:4096"),
        ("9223372036854775807", "ok:max"),
        ("-1", "EINVAL"),
        ("64MB", "EINVAL"),
        ("1.5G", "EINVAL"),
        ("abc", "EINVAL"),
        ("max\n", "ok:max"),
    ]),
    "memory.low and memory.swap.max": [
        W("cgroup.subtree_control", "+memory"),
        Step("mkdir", "a"),
        W("a/memory.low", "1M"),
        R("a/memory.low", "1048576"),
        W("a/memory.low", "max"),
        R("a/memory.low", "max"),
        W("a/memory.low", "-5", "EINVAL"),
        W("a/memory.swap.max", "0"),
        R("a/memory.swap.max", "0"),
        W("a/memory.swap.max", "32M"),
        R("a/memory.swap.max", "33554432"),
        W("a/memory.swap.max", "lots", "EINVAL"),
    ],
    "pids.max": values("pids.max", "pids", [
        ("max", "ok:max"),
        ("10", "ok:10"),
        ("0", "ok:0"),
        (" 20 \n", "ok:20"),
        ("0x10", "ok:16"),
        ("4194304", "ok:4194304"),
        ("4194305", "EINVAL"),
        ("-1", "EINVAL"),
        ("abc", "EINVAL"),
        ("99999999999999999999", "ERANGE"),
    ]),
    "cpu.max": values("cpu.max", "cpu", [
        ("50000 100000", "ok:50000 100000"),
        ("max", "ok:max 100000"),
        ("20000", "ok:20000 100000"),
        ("max 200000", "ok:max 200000"),
        ("150000 200000\n", "ok:150000 200000"),
        ("999 100000", "EINVAL"),
        ("1000 999", "EINVAL"),
        ("1000 1000001", "EINVAL"),
        ("-5 100000", "EINVAL"),
        ("abc", "EINVAL"),
    ]),
    "cpu.weight": values("cpu.weight", "cpu", [
        ("100", "ok:100"),
        ("1", "ok:1"),
        ("10000\n", "ok:10000"),
        ("0", "ERANGE"),
        ("10001", "ERANGE"),
        ("-1", "EINVAL"),
        ("abc", "EINVAL"),
        (" 5", "EINVAL"),
    ]),
    "io.weight": values("io.weight", "io", [
        ("default 200", "ok:default 200"),
        ("300", "ok:default 300"),
        ("0", "EINVAL"),
        ("10001", "EINVAL"),
        ("abc", "EINVAL"),
    ]),
    "cpuset": [
        W("cgroup.subtree_control", "+cpuset"),
        Step("mkdir", "a"),
        W("a/cpuset.cpus", "0"),
        R("a/cpuset.cpus", "0"),
        R("a/cpuset.cpus.effective", "0"),
        W("a/cpuset.cpus", "0-255", "ERANGE"),
        W("a/cpuset.cpus", "x", "EINVAL"),
        W("a/cpuset.cpus", "1-0", "EINVAL"),
        W("a/cpuset.mems", "0"),
        R("a/cpuset.mems", "0"),
    ],
}


@dataclass
class Runner:
    """Runs a case's steps under `top` through a CgroupFS (the fake, or the real files)."""

    fs: CgroupFS
    top: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def run(self, steps: list[Step]) -> None:
        for i, step in enumerate(steps):
            got = self._do(step)
            assert got == step.expect, f"step {i} {step}: got {got!r}"

    def _do(self, s: Step) -> str:
        path = self.top / s.path if s.path else self.top
        try:
            if s.op == "mkdir":
                self.fs.mkdir(path)
            elif s.op == "rmdir":
                self.fs.rmdir(path)
            elif s.op == "write":
                self.fs.write(path, s.value)
            elif s.op == "read":
                return self.fs.read(path).strip()
            elif s.op == "exists":
                return "yes" if self.fs.exists(path) else "no"
            elif s.op == "spawn":
                p = subprocess.Popen(["sleep", "120"])
                self.procs.append(p)
                self.fs.write(path / "cgroup.procs", str(p.pid))
            elif s.op == "kill":
                self.kill()
            elif s.op == "events":
                return self._events(path, s.expect)
            else:
                raise ValueError(s.op)
        except OSError as e:
            return errno.errorcode.get(e.errno or 0, str(e))
        return "ok"

    def _events(self, path: Path, want: str, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            got = " ".join(self.fs.read(path / "cgroup.events").split())
            if got == want or time.monotonic() > deadline:
                return got
            time.sleep(0.01)

    def kill(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
            p.wait()
        self.procs.clear()
