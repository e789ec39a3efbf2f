"""cgroups: v1 and v2 drivers behind one interface (see docs/cgroups.md).

mgr = open_manager()                 # detects v1/v2 under /sys/fs/cgroup, parent "composer"
cg = mgr.create(container_id)
cg.apply(spec.resources)             # CgroupLimitError names the limit and value
cg.add_pid(pid)                      # before the container's process execs
...
cg.oom_killed(); cg.stats()
cg.kill_all(); cg.remove()
"""

from __future__ import annotations

from pathlib import Path

from runtime.cgroups.base import (
    DEFAULT_PARENT,
    DEFAULT_ROOT,
    Cgroup,
    CgroupManager,
    CgroupStats,
    Version,
    detect,
)
from runtime.cgroups.cgroup import DirCgroup
from runtime.cgroups.errors import CgroupError, CgroupLimitError, CgroupNotFound
from runtime.cgroups.fs import CgroupFS
from runtime.cgroups.v1 import V1Manager
from runtime.cgroups.v2 import V2Manager


def open_manager(
    root: str | Path = DEFAULT_ROOT, parent: str = DEFAULT_PARENT, fs: CgroupFS | None = None
) -> V1Manager | V2Manager:
    """The driver this host needs (`detect`), managing cgroups under `parent`."""
    if detect(root, fs) == "v2":
        return V2Manager(root, parent, fs)
    return V1Manager(root, parent, fs)


__all__ = [
    "DEFAULT_PARENT",
    "DEFAULT_ROOT",
    "Cgroup",
    "CgroupError",
    "CgroupFS",
    "CgroupLimitError",
    "CgroupManager",
    "CgroupNotFound",
    "CgroupStats",
    "DirCgroup",
    "V1Manager",
    "V2Manager",
    "Version",
    "detect",
    "open_manager",
]
