"""freezer: stop every task of a cgroup at once (used by kill_all so nothing can fork away).

v1: freezer.state <- FROZEN / THAWED; reads FREEZING until every task is stopped.
v2: cgroup.freeze <- 1 / 0; cgroup.events says "frozen 1" once done.
"""

from __future__ import annotations

import time

from runtime.cgroups.base import Target
from runtime.cgroups.errors import CgroupError


def available(t: Target) -> bool:
    return (
        t.has("freezer", "freezer.state")
        if t.version == "v1"
        else t.has("freezer", "cgroup.freeze")
    )


def is_frozen(t: Target) -> bool:
    if t.version == "v1":
        return t.read("freezer", "freezer.state") == "FROZEN"
    return t.read_keyed("freezer", "cgroup.events").get("frozen", 0) == 1


def apply(t: Target, frozen: bool, timeout: float = 5.0) -> None:
    """Freeze (and wait until the kernel reports it) or thaw."""
    if not available(t):
        raise CgroupError(
            f"cgroup {t.name}: no freezer on this host; cannot freeze or thaw", subject=t.name
        )
    state = "freeze" if frozen else "thaw"
    if t.version == "v1":
        t.write(
            "freezer", "freezer.state", "FROZEN" if frozen else "THAWED", limit=state, shown=frozen
        )
    else:
        t.write("freezer", "cgroup.freeze", "1" if frozen else "0", limit=state, shown=frozen)
    if not frozen:
        return
    deadline = time.monotonic() + timeout
    while not is_frozen(t):
        if time.monotonic() > deadline:
            raise CgroupError(f"cgroup {t.name}: still freezing after {timeout:g}s", subject=t.name)
        if t.version == "v1":  # v1 re-checks the stragglers on every write of FROZEN
            t.write("freezer", "freezer.state", "FROZEN", limit=state, shown=frozen)
        time.sleep(0.005)
