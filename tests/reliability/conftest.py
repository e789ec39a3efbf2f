"""The reliability rig: the e2e `Env` (CLI + a real composerd in private roots) plus a `Scope`.

Each test gets fresh COMPOSER_ROOT / COMPOSER_RUN dirs and its own cgroup parent (as in
tests/e2e/conftest.py, whose pieces are reused). At the end the daemon is stopped and a
*scoped* snapshot (tests/leaks.py) must hold nothing the test did not find
at its start: no mount, netns, link, cgroup, nft table, IPAM entry, state dir or process.
Whatever is left is then removed by force, so a failing test still leaves a clean host.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import leaks as snapshots
from tests.e2e.conftest import REPO, Env, _stop_daemon, write_stack
from tests.leaks import Scope
from tests.sweep import claim, force_clean

__all__ = ["Rig", "open_rig", "write_stack"]


@dataclass
class Rig:
    env: Env
    scope: Scope
    base: Path

    def composer(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.env.composer(*args, **kw)

    def ps(self, cwd: Path, *extra: str) -> list[dict[str, Any]]:
        """`ps --format json --no-trunc`: these tests match full container ids."""
        return self.env.ps(cwd, "--no-trunc", *extra)

    def project_dir(self, text: str, name: str | None = None) -> Path:
        """A stack folder named uniquely (the project name gives bridge names: keep it ours)."""
        d = self.base / "stacks" / (name or f"rel{secrets.token_hex(3)}")
        write_stack(d, text)
        return d

    def container_state(self, cid: str) -> dict[str, Any]:
        try:
            return json.loads((self.env.root / "containers" / cid / "state.json").read_text())  # type: ignore[no-any-return]
        except (OSError, ValueError):
            return {}

    def start_daemon(self) -> None:
        """The first CLI call starts composerd (a trivial stack gives `ps` something to read)."""
        d = self.project_dir("services:\n  idle:\n    image: busybox\n", name="relidle")
        self.composer("ps", cwd=d)

    def daemon_log(self, lines: int = 40) -> str:
        try:
            text = (self.env.run / "composerd.log").read_text(errors="replace")
        except OSError:
            return "(no composerd.log)"
        return "\n".join(text.splitlines()[-lines:])

    def snapshot(self) -> snapshots.Snapshot:
        return snapshots.take(self.scope)


@contextmanager
def open_rig(prefix: str = "cmprel") -> Iterator[Rig]:
    """A private composerd world (roots, cgroup parent) checked for leaks when it closes: the
    body of the `rig` fixture, also used module-wide by tests/security."""
    base, cg_parent = claim(prefix, "rel")
    environ = dict(os.environ)
    environ.update({
        "COMPOSER_ROOT": str(base / "root"),
        "COMPOSER_RUN": str(base / "run"),
        "COMPOSER_CGROUP_PARENT": cg_parent,
        "PYTHONPATH": str(REPO),
    })
    environ.pop("COMPOSE_PROJECT_NAME", None)
    env = Env(base / "root", base / "run", environ)
    scope = Scope(base=base, root=env.root, run=env.run, cgroup_parent=cg_parent)
    before = snapshots.take(scope)
    r = Rig(env, scope, base)
    try:
        yield r
    finally:
        env.end_procs()
        _stop_daemon(env)
        time.sleep(0.1)
        leaks = snapshots.take(scope).leaks_since(before)
        force_clean(base, cg_parent, environ)
        assert not leaks, f"the test left things behind: {leaks}"


@pytest.fixture
def rig() -> Iterator[Rig]:
    with open_rig() as r:
        yield r
