"""cgroup v1 driver: one directory per hierarchy, <root>/<hierarchy>/<parent>/<name>.

Hierarchies are found by listing <root>: every directory holding cgroup.procs is one, named
by its controllers ("cpu,cpuacct" serves both; "systemd" is the named systemd hierarchy);
a cgroup2 mount (the "unified" dir of a hybrid host) is skipped. A container cgroup exists
in every hierarchy so that no controller (and no process listing) misses it.

The list is read once, when the manager is made (composerd's start), and again only when
it proves wrong: a hierarchy unmounted since (mkdir answers ENOENT, or makes a plain
directory without cgroup.procs where the mount was; a cgroup.procs is missing when a
process joins) makes `create` or `add_pid` re-scan <root> once and do its work again on
what is mounted now. A hierarchy mounted since is taken up at that re-scan.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path

from runtime.cgroups import cpuset
from runtime.cgroups.base import DEFAULT_PARENT, DEFAULT_ROOT, Target, Version
from runtime.cgroups.cgroup import DirCgroup, _rmtree
from runtime.cgroups.errors import CgroupError, CgroupNotFound
from runtime.cgroups.fs import CgroupFS
from runtime.paths import safe_name

log = logging.getLogger(__name__)


class HierarchyGone(CgroupError):
    """A hierarchy of the manager's list is no longer mounted where it was."""


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
        # (controller -> hierarchy mount, the mounts sorted): one attribute, so that a
        # thread reading it while another re-scans gets the old pair or the new one
        self._layout: tuple[dict[str, Path], list[Path]] = ({}, [])
        self.scans = 0  # how often <root> was listed: once, unless a hierarchy went away
        self._scan()
        if not self.hierarchies:
            raise CgroupError(f"no cgroup v1 hierarchy under {self.root}")

    def _scan(self) -> None:
        found: dict[str, Path] = {}
        for d in self.fs.subdirs(self.root):
            mount = self.root / d
            if self.fs.exists(mount / "cgroup.controllers") or not self.fs.exists(
                mount / "cgroup.procs"
            ):
                continue  # a cgroup2 mount (hybrid host), or not a hierarchy at all
            for controller in d.split(","):
                found.setdefault(controller, mount)
        self.scans += 1
        self._layout = (found, sorted(set(found.values())))

    @property
    def hierarchies(self) -> dict[str, Path]:
        """controller -> the mount of its hierarchy"""
        return self._layout[0]

    @property
    def mounts(self) -> list[Path]:
        return self._layout[1]

    def rescan(self) -> None:
        """List <root> again (a hierarchy went away or came), saying what changed."""
        before = set(self.mounts)
        self._scan()
        after = set(self.mounts)
        if before != after:
            log.warning(
                "cgroup v1 hierarchies under %s changed: gone %s, new %s; containers' "
                "cgroups go into the hierarchies mounted now", self.root,
                sorted(str(m) for m in before - after) or "none",
                sorted(str(m) for m in after - before) or "none")

    def __repr__(self) -> str:
        return f"<V1Manager {self.root} parent={self.parent}>"

    def _cgroup(self, name: str) -> DirCgroup:
        safe_name(name, "cgroup name")
        hierarchies, mounts = self._layout
        dirs = {c: m / self.parent / name for c, m in hierarchies.items()}
        return DirCgroup(
            Target("v1", name, dirs, self.fs), [m / self.parent / name for m in mounts],
            renew=lambda: self._renew(name),
        )

    def _ensure_dir(self, d: Path, created: list[Path]) -> None:
        try:
            self.fs.mkdir(d)
            created.append(d)
        except FileExistsError:
            pass
        except FileNotFoundError as e:  # the hierarchy's mount point is gone
            raise HierarchyGone(f"cannot create cgroup directory {d}: {e.strerror or e}") from e
        except OSError as e:
            raise CgroupError(f"cannot create cgroup directory {d}: {e.strerror or e}") from e
        else:
            if not self.fs.exists(d / "cgroup.procs"):  # a plain dir where the mount was
                raise HierarchyGone(f"cannot create cgroup directory {d}: {d.parent} is no "
                                    "longer a cgroup hierarchy")
        if self.fs.exists(d / "cpuset.cpus"):
            try:
                cpuset.inherit(self.fs, d)
            except OSError as e:
                raise CgroupError(f"cannot populate {d}/cpuset.cpus from its parent: {e}") from e

    def create(self, name: str) -> DirCgroup:
        """Make (or reuse) <parent>/<name> in every hierarchy; on failure nothing new is left.
        A hierarchy gone since the last scan: re-scan once and make it in those there are."""
        try:
            return self._create(name)
        except HierarchyGone:
            self.rescan()
            return self._create(name)

    def _renew(self, name: str) -> DirCgroup:
        """For DirCgroup.add_pid, which found a hierarchy gone: re-scan, make it again."""
        self.rescan()
        return self._create(name)

    def _create(self, name: str) -> DirCgroup:
        cg = self._cgroup(name)
        if not cg.directories():
            raise CgroupError(f"no cgroup v1 hierarchy under {self.root}")
        created: list[Path] = []
        try:
            for d in cg.directories():
                self._ensure_dir(d.parent, created)
                self._ensure_dir(d, created)
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
