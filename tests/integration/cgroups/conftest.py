from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runtime.cgroups import DirCgroup, V1Manager, V2Manager, open_manager

ROOT = Path("/sys/fs/cgroup")


def leftovers(parent: str) -> list[Path]:
    """Every directory named `parent` in any hierarchy (v1) or at the v2 root."""
    return [p for p in ROOT.glob(f"*/{parent}*")] + [p for p in ROOT.glob(parent)]


@pytest.fixture
def manager() -> Iterator[V1Manager | V2Manager]:
    """A manager under a unique `composer-test-<random>` parent; removed even on failure.
    Under systemd (v2) a `sleep` stands in for the engine's fork server: it anchors the
    delegated scope `composer-test-<random>.scope`, which remove_parent() stops."""
    parent = f"composer-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    mgr = open_manager(ROOT, parent)
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
    assert leftovers(parent) == [], "cgroup directories left behind"


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start `argv` inside a cgroup: the process waits on stdin until it has been added,
    so nothing runs outside the limits (the same order the engine uses)."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(cg: DirCgroup, *argv: str, **kw: object) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(
            ["sh", "-c", 'read _ && exec "$@"', "sh", *argv],
            stdin=subprocess.PIPE,
            **kw,  # type: ignore[call-overload]
        )
        procs.append(p)
        cg.add_pid(p.pid)
        assert p.stdin is not None
        p.stdin.write(b"go\n")
        p.stdin.close()
        p.stdin = None  # so communicate() does not flush it
        return p

    yield start
    for p in procs:
        p.kill()
        p.wait()
        for f in (p.stdout, p.stderr):
            if f is not None:
                f.close()
