"""What a build leaves behind when its engine is killed mid-step, and its removal at the
engine's next start (no build runs yet then).

A RUN step runs in a cgroup of its own named `build-<engine>-<random>` (its process outlives
a killed engine under the monitor) and works in a step directory below
`<root>/build/tmp/step-*`. This module is all the engine's start needs of the builder, so a
composerd that never builds does not import the builder, its Dockerfile parser or the
registry client (issue 15: composerd's resident memory).
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from runtime.cgroups import Cgroup, CgroupError, CgroupManager, CgroupNotFound

if TYPE_CHECKING:
    from runtime.process.launcher import Launcher

STEP_PREFIX = "build-"  # a RUN step's container id and cgroup name: build-<engine>-<random>

log = logging.getLogger("runtime.images.build_adapters")


def step_prefix(launcher: Launcher) -> str:
    """The name prefix of the RUN-step cgroups of the engine that owns `launcher`: its fork
    server's socket lives in the engine's run root, which no other engine shares, so an
    engine never takes another's steps (two may share a cgroup parent) for its own."""
    return f"{STEP_PREFIX}{hashlib.sha256(launcher.socket_path.encode()).hexdigest()[:8]}-"


def end_cgroup(cg: Cgroup) -> None:
    """Kill what is left in a step's cgroup and remove it; a failure is logged (the step's
    result stands) and the engine's next start removes the cgroup (`remove_stale_steps`)."""
    try:
        cg.kill_all()
        cg.remove()
    except CgroupError as e:
        log.warning("RUN step: %s", e)


def remove_stale_steps(cgroups: CgroupManager, launcher: Launcher) -> list[str]:
    """Kill and remove the RUN-step cgroups an earlier engine of the same run root left (it
    was killed mid-build). Returns their names."""
    prefix = step_prefix(launcher)
    stale = [name for name in cgroups.list() if name.startswith(prefix)]
    for name in stale:
        log.info("removing the cgroup of an interrupted RUN step: %s", name)
        with contextlib.suppress(CgroupNotFound):
            end_cgroup(cgroups.open(name))
    return stale


def remove_interrupted_steps(state_root: Path) -> list[Path]:
    """Remove the step directories a build left when its engine was killed mid-step (its
    RUN's cgroup is ended first, by `remove_stale_steps`). Returns them."""
    tmp = state_root / "build" / "tmp"
    stale = sorted(tmp.glob("step-*")) if tmp.is_dir() else []
    for step_dir in stale:
        remove_tree(step_dir)
    return stale


def remove_tree(path: Path) -> None:
    """rmtree that also goes through directories a RUN step made unreadable (mode 000)."""
    def onerror(func: Callable[[str], object], p: str, _exc: object) -> None:
        os.chmod(os.path.dirname(p), 0o700)
        if os.path.isdir(p) and not os.path.islink(p):
            os.chmod(p, 0o700)
        func(p)

    if path.exists():
        shutil.rmtree(path, onerror=onerror)
