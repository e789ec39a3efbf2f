"""cgroup v2 driver: one unified tree, <root>/<parent>/<name>.

The parent gets "+cpu +memory +pids +io +cpuset" (those the root offers) in its
cgroup.subtree_control, and so does the root, so every container cgroup has those files.
"""

from __future__ import annotations

from pathlib import Path

from runtime.cgroups.base import DEFAULT_PARENT, DEFAULT_ROOT, Target, Version
from runtime.cgroups.cgroup import DirCgroup, _rmtree
from runtime.cgroups.errors import CgroupError, CgroupNotFound
from runtime.cgroups.fs import CgroupFS
from runtime.paths import safe_name

CONTROLLERS = ("cpu", "memory", "pids", "io", "cpuset")
# Keys a controller module asks for; in v2 they all live in the one directory ("devices":
# where the BPF device filter is attached).
KEYS = ("memory", "cpu", "cpuset", "pids", "io", "freezer", "devices")


class V2Manager:
    version: Version = "v2"

    def __init__(
        self,
        root: str | Path = DEFAULT_ROOT,
        parent: str = DEFAULT_PARENT,
        fs: CgroupFS | None = None,
    ) -> None:
        self.root = Path(root)
        self.parent = safe_name(parent, "cgroup parent")
        self.fs = fs or CgroupFS()
        if not self.fs.exists(self.root / "cgroup.controllers"):
            raise CgroupError(f"{self.root} is not a cgroup v2 hierarchy (no cgroup.controllers)")

    def __repr__(self) -> str:
        return f"<V2Manager {self.root} parent={self.parent}>"

    def _cgroup(self, name: str) -> DirCgroup:
        safe_name(name, "cgroup name")
        d = self.root / self.parent / name
        return DirCgroup(Target("v2", name, {k: d for k in KEYS}, self.fs), [d])

    def _enable(self, d: Path, wanted: list[str]) -> None:
        control = d / "cgroup.subtree_control"
        try:
            have = set(self.fs.read(control).split())
            missing = [c for c in wanted if c not in have]
            if missing:
                self.fs.write(control, " ".join(f"+{c}" for c in missing))
        except OSError as e:
            raise CgroupError(
                f"cannot enable controllers {wanted} in {control}: {e.strerror or e} "
                "(a cgroup with processes of its own cannot delegate controllers)"
            ) from e

    def create(self, name: str) -> DirCgroup:
        """Make (or reuse) <root>/<parent>/<name> with cpu, memory, pids, io, cpuset enabled."""
        cg = self._cgroup(name)
        offered = self.fs.read(self.root / "cgroup.controllers").split()
        wanted = [c for c in CONTROLLERS if c in offered]
        parent = self.root / self.parent
        self._enable(self.root, wanted)
        for d in (parent, parent / name):
            try:
                self.fs.mkdir(d)
            except FileExistsError:
                pass
            except OSError as e:
                raise CgroupError(f"cannot create cgroup directory {d}: {e.strerror or e}") from e
            if d == parent:
                self._enable(parent, wanted)
        return cg

    def open(self, name: str) -> DirCgroup:
        cg = self._cgroup(name)
        if not cg.exists():
            raise CgroupNotFound(f"no cgroup {name} under {self.parent}", subject=name)
        return cg

    def list(self) -> list[str]:
        return self.fs.subdirs(self.root / self.parent)

    def remove_parent(self, timeout: float = 5.0) -> None:
        for name in self.list():
            cg = self._cgroup(name)
            cg.kill_all(timeout=timeout)
            cg.remove(timeout)
        _rmtree(self.fs, self.root / self.parent, self.parent, timeout)
