"""cgroup v1 driver: one directory per hierarchy, <root>/<hierarchy>/<parent>/<name>.

Hierarchies are found by listing <root>: every directory holding cgroup.procs is one, named
by its controllers ("cpu,cpuacct" serves both; "systemd" is the named systemd hierarchy);
a cgroup2 mount (the "unified" dir of a hybrid host) is skipped. A container cgroup exists
in every hierarchy so that no controller (and no process listing) misses it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

from runtime.cgroups import cpuset
from runtime.cgroups.base import DEFAULT_PARENT, DEFAULT_ROOT, Target, Version
from runtime.cgroups.cgroup import DirCgroup, _rmtree
from runtime.cgroups.errors import CgroupError, CgroupNotFound
from runtime.cgroups.fs import CgroupFS
from runtime.paths import safe_name


class V1Manager:
    version: Version = "v1"

    def __init__(
        self,
        root: str | Path = DEFAULT_ROOT,
        parent: str = DEFAULT_PARENT,
        fs: CgroupFS | None = None,
    ) -> None:
        self.root = Path(root)
        self.parent = safe_name(parent, "cgroup parent")
        self.fs = fs or CgroupFS()
        self.hierarchies: dict[str, Path] = {}  # controller -> hierarchy mount
        for d in self.fs.subdirs(self.root):
            mount = self.root / d
            if self.fs.exists(mount / "cgroup.controllers") or not self.fs.exists(
                mount / "cgroup.procs"
            ):
                continue  # a cgroup2 mount (hybrid host), or not a hierarchy at all
            for controller in d.split(","):
                self.hierarchies.setdefault(controller, mount)
        if not self.hierarchies:
            raise CgroupError(f"no cgroup v1 hierarchy under {self.root}")
        self.mounts = sorted(set(self.hierarchies.values()))

    def __repr__(self) -> str:
        return f"<V1Manager {self.root} parent={self.parent}>"

    def _cgroup(self, name: str) -> DirCgroup:
        safe_name(name, "cgroup name")
        dirs = {c: m / self.parent / name for c, m in self.hierarchies.items()}
        return DirCgroup(
            Target("v1", name, dirs, self.fs), [m / self.parent / name for m in self.mounts]
        )

    def _ensure_dir(self, d: Path, created: list[Path]) -> None:
        try:
            self.fs.mkdir(d)
            created.append(d)
        except FileExistsError:
            pass
        except OSError as e:
            raise CgroupError(f"cannot create cgroup directory {d}: {e.strerror or e}") from e
        if self.fs.exists(d / "cpuset.cpus"):
            try:
                cpuset.inherit(self.fs, d)
            except OSError as e:
                raise CgroupError(f"cannot populate {d}/cpuset.cpus from its parent: {e}") from e

    def create(self, name: str) -> DirCgroup:
        """Make (or reuse) <parent>/<name> in every hierarchy; on failure nothing new is left."""
        cg = self._cgroup(name)
        created: list[Path] = []
        try:
            for mount in self.mounts:
                self._ensure_dir(mount / self.parent, created)
                self._ensure_dir(mount / self.parent / name, created)
        except BaseException:
            for d in reversed(created):
                with contextlib.suppress(CgroupError):  # keep the original error
                    _rmtree(self.fs, d, name, 0.0)
            raise
        return cg

    def open(self, name: str) -> DirCgroup:
        cg = self._cgroup(name)
        if not cg.exists():
            raise CgroupNotFound(f"no cgroup {name} under {self.parent}", subject=name)
        return cg

    def list(self) -> list[str]:
        names: set[str] = set()
        for mount in self.mounts:
            names.update(self.fs.subdirs(mount / self.parent))
        return sorted(names)

    def delegate(self, pids: Sequence[int], timeout: float = 10.0) -> None:
        """v1 has no delegation: the engine's processes stay where they are."""

    def remove_parent(self, timeout: float = 5.0) -> None:
        """Kill and remove every cgroup under the parent, then the parent itself (idempotent)."""
        for name in self.list():
            cg = self._cgroup(name)
            cg.kill_all(timeout=timeout)
            cg.remove(timeout)
        for mount in self.mounts:
            _rmtree(self.fs, mount / self.parent, self.parent, timeout)
