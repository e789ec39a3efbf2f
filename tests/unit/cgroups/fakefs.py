"""A fake cgroupfs on a plain temp dir: the kernel's side effects and refusals, nothing more.

The drivers run unchanged against it through the `CgroupFS` seam. v2 is modelled in
fakev2.py (controller files follow subtree_control, no internal processes, the kernel's
value parsing, computed cgroup.events), and tests/cgroupfs_cases.py holds the table of
operations that is run against this fake and against the real kernel in the host tier.
v1: mkdir populates the interface files, rmdir drops them (and refuses while processes
remain), cgroup.procs lists live processes and appends on write, freezing stops the listed
processes, integer files reject non-integers, and memory.limit <= memsw.limit is kept.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
from pathlib import Path

from runtime.cgroups.fs import CgroupFS
from tests.unit.cgroups.fakev2 import ALL, V2Kernel

UNLIMITED = "9223372036854771712"
COMMON = {"cgroup.procs": "", "tasks": "", "notify_on_release": "0"}

V1_FILES: dict[str, dict[str, str]] = {
    "memory": {
        "memory.limit_in_bytes": UNLIMITED,
        "memory.memsw.limit_in_bytes": UNLIMITED,
        "memory.soft_limit_in_bytes": UNLIMITED,
        "memory.usage_in_bytes": "0",
        "memory.max_usage_in_bytes": "0",
        "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
    },
    "cpu": {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "-1", "cpu.shares": "1024"},
    "cpuacct": {"cpuacct.usage": "0"},
    "cpuset": {
        "cpuset.cpus": "",
        "cpuset.mems": "",
        "cpuset.effective_cpus": "",
        "cpuset.effective_mems": "",
    },
    "pids": {"pids.max": "max", "pids.current": "0"},
    "blkio": {"blkio.bfq.weight": "100"},
    "freezer": {"freezer.state": "THAWED"},
    "devices": {"devices.list": "a *:* rwm\n"},
    "systemd": {},
}
V1_ROOT = {
    "cpuset": {
        "cpuset.cpus": "0-3",
        "cpuset.mems": "0",
        "cpuset.effective_cpus": "0-3",
        "cpuset.effective_mems": "0",
    }
}

INT_FILES = {
    "memory.limit_in_bytes",
    "memory.memsw.limit_in_bytes",
    "memory.soft_limit_in_bytes",
    "cpu.cfs_period_us",
    "cpu.cfs_quota_us",
    "cpu.shares",
    "blkio.bfq.weight",
    "blkio.weight",
}


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _fail(code: int, path: Path) -> OSError:
    return OSError(code, os.strerror(code), str(path))


class FakeCgroupFS(CgroupFS):
    def __init__(
        self,
        root: Path,
        version: str,
        hierarchies: tuple[str, ...] = tuple(V1_FILES),
        controllers: str = ALL,
    ) -> None:
        """`controllers`: what a v2 root offers in cgroup.controllers."""
        self.root = root
        self.version = version
        self.v2: V2Kernel | None = None
        self.unmounted: set[str] = set()  # v1 mount points left as plain directories
        root.mkdir(parents=True, exist_ok=True)
        if version == "v2":
            self.v2 = V2Kernel(root, controllers)
        else:
            for h in hierarchies:
                (root / h).mkdir()
                files = {**COMMON}
                for c in h.split(","):
                    files.update(V1_FILES.get(c, {}))
                    files.update(V1_ROOT.get(c, {}))
                self._populate(root / h, files)
            (root / "unified").mkdir()  # a hybrid host's empty cgroup2
            self._populate(root / "unified", {"cgroup.controllers": "", "cgroup.procs": ""})

    # helpers for tests ----------------------------------------------------------------------
    @staticmethod
    def _populate(d: Path, files: dict[str, str]) -> None:
        for name, text in files.items():
            (d / name).write_text(text)

    def set(self, path: Path, text: str) -> None:
        """Play the kernel: put a value in a read-only file (usage counters, events)."""
        path.write_text(text)

    def get(self, path: Path) -> str:
        """What a read shows (computed files included)."""
        return self.read(path)

    def unmount(self, hierarchy: str, keep_mount_point: bool = True) -> None:
        """Play `umount <root>/<hierarchy>`: its cgroups vanish from view; the mount point
        stays as a plain directory (where mkdir makes plain directories), or is removed."""
        shutil.rmtree(self.root / hierarchy)
        if keep_mount_point:
            (self.root / hierarchy).mkdir()
            self.unmounted.add(hierarchy)

    def mount(self, hierarchy: str) -> None:
        """Play `mount -t cgroup -o <hierarchy> ...` on <root>/<hierarchy> (made if missing)."""
        self.unmounted.discard(hierarchy)
        (self.root / hierarchy).mkdir(exist_ok=True)
        files = {**COMMON}
        for c in hierarchy.split(","):
            files.update(V1_FILES.get(c, {}))
            files.update(V1_ROOT.get(c, {}))
        self._populate(self.root / hierarchy, files)

    # the kernel's side effects --------------------------------------------------------------
    def mkdir(self, path: Path) -> None:
        if self.v2 is not None:
            self.v2.mkdir(path)
            return
        os.mkdir(path)
        hierarchy = path.relative_to(self.root).parts[0]
        if hierarchy in self.unmounted:
            return  # a plain directory on the file system under the old mount point
        files = {**COMMON}
        for c in hierarchy.split(","):
            files.update(V1_FILES.get(c, {}))
        self._populate(path, files)

    def rmdir(self, path: Path) -> None:
        if self.v2 is not None:
            self.v2.rmdir(path)
            return
        if not path.is_dir():
            raise FileNotFoundError(errno.ENOENT, "no such directory", str(path))
        if path.relative_to(self.root).parts[0] in self.unmounted:
            os.rmdir(path)  # a plain directory
            return
        if self.read(path / "cgroup.procs").split():
            raise _fail(errno.EBUSY, path)
        if any(p.is_dir() for p in path.iterdir()):
            raise _fail(errno.ENOTEMPTY, path)
        for p in path.iterdir():
            p.unlink()
        os.rmdir(path)

    def read(self, path: Path) -> str:
        if self.v2 is not None:
            return self.v2.read(path, super().read)
        text = super().read(path)
        if path.name == "cgroup.procs":
            live = [p for p in text.split() if _alive(int(p))]
            return "".join(f"{p}\n" for p in live)
        return text

    def write(self, path: Path, value: str) -> None:
        if self.v2 is not None:
            self.v2.write(path, value)
            return
        if not path.exists():
            raise FileNotFoundError(errno.ENOENT, "no such file", str(path))
        name = path.name
        if name in INT_FILES and not value.strip().lstrip("-").isdigit():
            raise _fail(errno.EINVAL, path)
        if name == "cgroup.procs":
            pid = int(value)
            cpus = path.parent / "cpuset.cpus"
            if cpus.exists() and not cpus.read_text().strip():
                raise _fail(errno.ENOSPC, path)  # v1: an unpopulated cpuset takes no tasks
            if not _alive(pid):
                raise _fail(errno.ESRCH, path)
            for other in self.root.rglob("cgroup.procs"):  # a process is in one cgroup per tree
                if other != path and self._same_tree(other, path):
                    kept = [p for p in other.read_text().split() if p != str(pid)]
                    other.write_text("".join(f"{p}\n" for p in kept))
            pids = self.read(path).split()
            if str(pid) not in pids:
                pids.append(str(pid))
            path.write_text("".join(f"{p}\n" for p in pids))
            return
        if name == "memory.limit_in_bytes":
            memsw = path.parent / "memory.memsw.limit_in_bytes"
            if memsw.exists() and int(value) > int(memsw.read_text()):
                raise _fail(errno.EINVAL, path)
        if name == "memory.memsw.limit_in_bytes":
            limit = int((path.parent / "memory.limit_in_bytes").read_text())
            v = int(UNLIMITED) if value.strip() == "-1" else int(value)
            if v < limit:
                raise _fail(errno.EINVAL, path)
            value = str(v)
        if name == "memory.limit_in_bytes" and value.strip() == "-1":
            value = UNLIMITED
        if name in ("cpuset.cpus", "cpuset.mems") and value:
            if self._out_of_range(name, value):
                raise _fail(errno.EINVAL, path)
            effective = path.parent / name.replace("cpuset.", "cpuset.effective_")
            if effective.exists():  # v1 mirrors the setting into effective_*
                effective.write_text(value)
        if name == "freezer.state":
            frozen = value.strip() == "FROZEN"
            self._signal(path.parent, signal.SIGSTOP if frozen else signal.SIGCONT)
        path.write_text(value)

    def _same_tree(self, a: Path, b: Path) -> bool:
        return a.relative_to(self.root).parts[0] == b.relative_to(self.root).parts[0]

    def _signal(self, d: Path, sig: int) -> None:
        for p in self.read(d / "cgroup.procs").split():
            try:
                os.kill(int(p), sig)
            except ProcessLookupError:
                pass

    @staticmethod
    def _out_of_range(name: str, value: str) -> bool:
        from runtime.cgroups.cpuset import parse_list

        return not parse_list(value) <= set(range(4) if name == "cpuset.cpus" else range(1))
