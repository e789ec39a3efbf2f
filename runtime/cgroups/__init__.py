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

import logging
from pathlib import Path
from typing import Literal

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
from runtime.cgroups.systemd import ScopeBus, SystemdBus, SystemdError, booted
from runtime.cgroups.v1 import V1Manager
from runtime.cgroups.v2 import V2Manager

log = logging.getLogger(__name__)


def open_manager(
    root: str | Path = DEFAULT_ROOT,
    parent: str = DEFAULT_PARENT,
    fs: CgroupFS | None = None,
    systemd: ScopeBus | None | Literal["auto"] = "auto",
) -> V1Manager | V2Manager:
    """The driver this host needs (`detect`), managing cgroups under `parent`.

    `systemd="auto"`: on a real v2 tree (no `fs` given) with systemd as pid 1, containers
    go into a scope systemd delegates to us, asked for over D-Bus; if systemd cannot be
    reached, one warning says so and the cgroups go under <root>/<parent> as without it.
    """
    if detect(root, fs) != "v2":
        return V1Manager(root, parent, fs)
    bus: ScopeBus | None = None
    if systemd == "auto":
        if fs is None and booted():
            bus = _reachable(SystemdBus())
    else:
        bus = systemd
    return V2Manager(root, parent, fs, bus)


def _reachable(bus: SystemdBus) -> SystemdBus | None:
    try:
        bus.active_state("-.slice")
        return bus
    except (SystemdError, ImportError) as e:
        log.warning(
            "systemd runs this host but composer cannot ask it for a delegated cgroup (%s); "
            "containers' cgroups go under the cgroup root instead, where systemd does not "
            "know them (install dbus and python3-jeepney to fix)", e)
        return None


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
    "ScopeBus",
    "SystemdBus",
    "SystemdError",
    "V1Manager",
    "V2Manager",
    "Version",
    "detect",
    "open_manager",
]
