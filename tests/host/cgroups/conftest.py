"""Fixtures of the cgroup host tier: a scope systemd delegates to one test, and a manager
whose delegated scope is anchored by a stand-in for the fork server. Both are stopped at
teardown, which must leave no unit and no cgroup behind."""
from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runtime.cgroups import DirCgroup, SystemdBus, V2Manager, open_manager
from runtime.cgroups.v2 import SUPERVISOR

ROOT = Path("/sys/fs/cgroup")
ALL = "+cpuset +cpu +io +memory +pids"


def unit_gone(unit: str) -> bool:
    return SystemdBus().active_state(unit) is None and not (ROOT / "system.slice" / unit).exists()


@pytest.fixture
def scope() -> Iterator[Path]:
    """<root>/system.slice/composer-kt-<random>.scope, delegated, controllers on, empty but
    for its supervisor leaf (a sleep keeps the scope alive)."""
    bus = SystemdBus()
    unit = f"composer-kt-{uuid.uuid4().hex[:8]}.scope"
    anchor = subprocess.Popen(["sleep", "infinity"])
    base = ROOT / "system.slice" / unit
    try:
        bus.start_scope(unit, [anchor.pid], "composer host test")
        (base / SUPERVISOR).mkdir()
        (base / SUPERVISOR / "cgroup.procs").write_text(str(anchor.pid))
        (base / "cgroup.subtree_control").write_text(ALL)
        yield base
    finally:
        bus.stop(unit)
        anchor.kill()
        anchor.wait()
    assert unit_gone(unit)


@pytest.fixture
def manager() -> Iterator[V2Manager]:
    parent = f"composer-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    mgr = open_manager(ROOT, parent)
    assert isinstance(mgr, V2Manager) and mgr.systemd is not None
    anchor = subprocess.Popen(["sleep", "infinity"])
    try:
        mgr.delegate([anchor.pid])
        yield mgr
    finally:
        try:
            mgr.remove_parent()
        finally:
            anchor.kill()
            anchor.wait()
    assert unit_gone(f"{parent}.scope")


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start argv inside a cgroup: it waits on stdin until it has been added (the engine's
    order: nothing runs outside the limits)."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(cg: DirCgroup, *argv: str, **kw: object) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(["sh", "-c", 'read _ && exec "$@"', "sh", *argv],
                             stdin=subprocess.PIPE, **kw)  # type: ignore[call-overload]
        procs.append(p)
        cg.add_pid(p.pid)
        assert p.stdin is not None
        p.stdin.write(b"go\n")
        p.stdin.close()
        p.stdin = None
        return p

    yield start
    for p in procs:
        p.kill()
        p.wait()
        for pipe in (p.stdout, p.stderr):  # a test's stdout=PIPE: closed, or a ResourceWarning
            if pipe is not None:
                pipe.close()
