"""What both drivers share: the manager/cgroup protocols, stats, detection and `Target`.

`Target` is what a controller module sees of a cgroup: the driver version, the directory
that holds each controller's files (v1: one per hierarchy; v2: the same directory for all),
and the file seam. Controller modules read and write through it so that every failed write
becomes a `CgroupError` naming the limit, the value and the file.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from runtime.cgroups.errors import CgroupError, CgroupLimitError
from runtime.cgroups.fs import CgroupFS
from runtime.devrules import DeviceRule
from runtime.types import Resources

Version = Literal["v1", "v2"]
DEFAULT_ROOT = Path("/sys/fs/cgroup")
DEFAULT_PARENT = "composer"

# Writing a bad value to cgroupfs fails with one of these: the value is at fault, not the host.
_VALUE_ERRNOS = {errno.EINVAL, errno.ERANGE, errno.EBUSY, errno.ENOSPC, errno.EDOM}


@dataclass(frozen=True)
class CgroupStats:
    memory_usage: int = 0  # bytes charged now
    memory_peak: int = 0  # high-water mark in bytes; 0 when the kernel does not keep one
    memory_limit: int = 0  # bytes; 0 = unlimited
    cpu_usage_ns: int = 0  # total CPU time of every task, user + system
    pids: int = 0  # tasks (threads included) counted by the pids controller
    io_read_bytes: int = 0  # block I/O of its tasks, every device
    io_write_bytes: int = 0


@dataclass(frozen=True)
class Target:
    version: Version
    name: str
    dirs: Mapping[str, Path]  # controller -> directory holding its files
    fs: CgroupFS

    def has_controller(self, controller: str) -> bool:
        return controller in self.dirs

    def file(self, controller: str, filename: str) -> Path:
        try:
            return self.dirs[controller] / filename
        except KeyError:
            raise CgroupError(
                f"cgroup {self.name}: the {controller} controller is not available on this host",
                subject=self.name,
            ) from None

    def has(self, controller: str, filename: str) -> bool:
        return controller in self.dirs and self.fs.exists(self.dirs[controller] / filename)

    def read(self, controller: str, filename: str) -> str:
        path = self.file(controller, filename)
        try:
            return self.fs.read(path).strip()
        except OSError as e:
            raise CgroupError(
                f"cgroup {self.name}: cannot read {path}: {e.strerror or e}", subject=self.name
            ) from e

    def read_int(self, controller: str, filename: str) -> int:
        text = self.read(controller, filename)
        try:
            return int(text.split()[0]) if text else 0
        except ValueError:
            raise CgroupError(
                f"cgroup {self.name}: {self.file(controller, filename)} holds {text!r}, not a number",
                subject=self.name,
            ) from None

    def read_keyed(self, controller: str, filename: str) -> dict[str, int]:
        """Parse a flat keyed file ("key value" per line: memory.events, cpu.stat, oom_control)."""
        out: dict[str, int] = {}
        for line in self.read(controller, filename).splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].lstrip("-").isdigit():
                out[parts[0]] = int(parts[1])
        return out

    def write(
        self, controller: str, filename: str, value: str, *, limit: str, shown: object
    ) -> None:
        """Write `value`; a refusal becomes an error naming `limit` and the user's value `shown`."""
        path = self.file(controller, filename)
        try:
            self.fs.write(path, value)
        except OSError as e:
            why = e.strerror or str(e)
            if e.errno in _VALUE_ERRNOS:
                raise CgroupLimitError(
                    f"cgroup {self.name}: the kernel refused {limit}={shown} "
                    f"(writing {value!r} to {path}: {why}); use a value the host supports",
                    subject=self.name,
                    limit=limit,
                    value=shown,
                ) from e
            raise CgroupError(
                f"cgroup {self.name}: cannot set {limit}={shown}: writing {path} failed: {why}",
                subject=self.name,
                limit=limit,
                value=shown,
            ) from e


def bad_limit(name: str, limit: str, value: object, why: str) -> CgroupLimitError:
    return CgroupLimitError(
        f"cgroup {name}: invalid {limit}={value}: {why}", subject=name, limit=limit, value=value
    )


class Cgroup(Protocol):
    """One container's cgroup, in every hierarchy (v1) or the unified tree (v2)."""

    name: str
    version: Version

    def path(self, controller: str) -> Path: ...
    def directories(self) -> list[Path]: ...
    def apply(self, resources: Resources) -> None: ...
    def restrict_devices(self, extra: Sequence[DeviceRule] = ...) -> None: ...
    def add_pid(self, pid: int) -> None: ...
    def pids(self) -> list[int]: ...
    def stats(self) -> CgroupStats: ...
    def oom_killed(self) -> bool: ...
    def freeze(self) -> None: ...
    def thaw(self) -> None: ...
    def kill_all(self, sig: int = ..., timeout: float = ...) -> None: ...
    def remove(self, timeout: float = ...) -> None: ...
    def exists(self) -> bool: ...


class CgroupManager(Protocol):
    """Creates and finds container cgroups under the engine parent (`composer` by default)."""

    version: Version
    root: Path
    parent: str

    def create(self, name: str) -> Cgroup: ...
    def open(self, name: str) -> Cgroup: ...
    def list(self) -> list[str]: ...
    def remove_parent(self, timeout: float = ...) -> None: ...
    def delegate(self, pids: Sequence[int], timeout: float = ...) -> None:
        """Place the engine's long-lived helpers where the containers' cgroups may be made
        (v2 under systemd: the delegated scope); a no-op elsewhere."""


def detect(root: str | Path = DEFAULT_ROOT, fs: CgroupFS | None = None) -> Version:
    """ "v2" when `root` itself is the unified hierarchy, else "v1" (a hybrid host counts as v1:
    its cgroup2 at <root>/unified carries no controllers)."""
    fs = fs or CgroupFS()
    root = Path(root)
    if fs.exists(root / "cgroup.controllers"):
        return "v2"
    if any(fs.exists(root / d / "cgroup.procs") for d in fs.subdirs(root) if d != "unified"):
        return "v1"
    raise CgroupError(f"no cgroup hierarchy found at {root}: mount cgroup v1 or v2 there")
