"""End-to-end: the `composer` CLI and a real composerd, each test in its own state root.

Every test gets fresh COMPOSER_ROOT / COMPOSER_RUN dirs and its own cgroup parent; at the end
the daemon is stopped, and a scoped snapshot (tests/leaks.py) must hold nothing new (links,
mounts, netns, cgroups, nft table, IPAM, state dirs, processes) compared with before the
test. The snapshot is taken *before* the forced clean-up, which only then removes leftovers.
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.leaks import Scope, take
from tests.sweep import claim, force_clean, stop_daemon

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Env:
    root: Path
    run: Path
    environ: dict[str, str]
    scope: Scope | None = None  # learns the links each command's stack made
    # every CLI process `popen` started: killed if still running, pipes closed, at teardown
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def composer(self, *args: str, cwd: Path | None = None, check: bool = True,
                 timeout: float = 300, input: str | None = None) -> subprocess.CompletedProcess[str]:
        p = subprocess.run([sys.executable, "-m", "composer.cli", *args], cwd=cwd, env=self.environ,
                           capture_output=True, text=True, timeout=timeout, input=input)
        if self.scope is not None:
            self.scope.learn()
        if check and p.returncode != 0:
            raise AssertionError(f"composer {' '.join(args)} exited {p.returncode}\n"
                                 f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return p

    def ps(self, cwd: Path, *extra: str) -> list[dict[str, Any]]:
        """`ps --format json`: one JSON object per line, as docker compose prints it."""
        out = self.composer("ps", "--format", "json", *extra, cwd=cwd).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def popen(self, *args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
        p = subprocess.Popen([sys.executable, "-m", "composer.cli", *args], cwd=cwd,
                             env=self.environ, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        return p

    def end_procs(self) -> None:
        end_procs(self.procs)

    def daemon_pid(self) -> int | None:
        try:
            return int((self.run / "composerd.pid").read_text().split()[0])
        except (OSError, ValueError):
            return None


def end_procs(procs: list[subprocess.Popen[str]]) -> None:
    """Kill what still runs of `procs`, reap it, close its pipes."""
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(30)
        for f in (p.stdin, p.stdout, p.stderr):
            if f is not None:
                f.close()


def _stop_daemon(env: Env) -> None:
    stop_daemon(env.run)


@pytest.fixture
def env() -> Iterator[Env]:
    base, cg_parent = claim("cmpe2e", "e2e")
    scope = Scope.for_base(base, cg_parent)
    before = take(scope)
    environ = dict(os.environ)
    environ.update({
        "COMPOSER_ROOT": str(base / "root"),
        "COMPOSER_RUN": str(base / "run"),
        "COMPOSER_CGROUP_PARENT": cg_parent,
        "PYTHONPATH": str(REPO),
    })
    environ.pop("COMPOSE_PROJECT_NAME", None)
    e = Env(base / "root", base / "run", environ, scope)
    try:
        yield e
    finally:
        scope.learn()
        e.end_procs()
        _stop_daemon(e)
        time.sleep(0.1)
        leaks = take(scope).leaks_since(before)  # before the forced clean-up, which hides them
        force_clean(base, cg_parent, environ)
        assert not leaks, f"the test left things behind: {leaks}"


def read_until(fd: int, marker: bytes, timeout: float = 20) -> bytes:
    """Read a pty master (or any fd) until `marker` shows up, EOF/EIO, or `timeout`."""
    import select

    seen = b""
    deadline = time.time() + timeout
    while marker not in seen and time.time() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the other side of the pty is gone
                break
            if not chunk:
                break
            seen += chunk
    return seen


def write_stack(dirpath: Path, text: str, name: str = "compose.yaml") -> Path:
    dirpath.mkdir(parents=True, exist_ok=True)
    f = dirpath / name
    f.write_text(text)
    return f


@contextlib.contextmanager
def taken_down(env: Env, d: Path) -> Iterator[list[subprocess.Popen[str]]]:
    """The stack in `d` is taken down when the block ends, also when the test fails; CLI
    processes the test appends to the yielded list (attached `up`, `logs -f`) are killed."""
    procs: list[subprocess.Popen[str]] = []
    try:
        yield procs
    finally:
        end_procs(procs)
        env.composer("down", "-t", "0", cwd=d, check=False, timeout=300)
