"""The init born in its cgroup (clone3 CLONE_INTO_CGROUP into a cgroup v2 directory), on the
real kernel: a hybrid host's cgroup2 mount (/sys/fs/cgroup/unified) serves as well as a pure
v2 host's. No prepare() moves it: whatever is in the cgroup got there at the clone."""
from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.process.launcher import Launched
from tests.integration.process.conftest import Env


def cgroup2_root() -> Path:
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if fields[2] == "cgroup2":
            return Path(fields[1])
    raise AssertionError("no cgroup2 mount on this host (the root tiers expect one)")


@pytest.fixture
def cgroup_dir() -> Iterator[Path]:
    d = cgroup2_root() / f"composer-test-clone-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    d.mkdir()
    try:
        yield d
    finally:
        for _ in range(100):  # the init's exit empties it a moment after it is reaped
            try:
                d.rmdir()
                break
            except OSError:
                time.sleep(0.02)
    assert not d.exists()


def procs(d: Path) -> list[int]:
    return [int(p) for p in (d / "cgroup.procs").read_text().split()]


async def test_the_init_is_born_in_its_cgroup_before_it_execs(env: Env, cgroup_dir: Path) -> None:
    seen: list[list[int]] = []

    async def prepare(pid: int) -> None:  # the engine's moment: it is there already
        seen.append([pid, *procs(cgroup_dir)])

    launched = await env.launch(env.config(["sleep", "30"], cgroup_dir=str(cgroup_dir)), prepare)
    assert seen == [[launched.pid, launched.pid]]  # in it before "go", nothing moved it
    assert procs(cgroup_dir) == [launched.pid]
    v2_line = [x for x in Path(f"/proc/{launched.pid}/cgroup").read_text().splitlines()
               if x.startswith("0::")]
    assert v2_line == [f"0::/{cgroup_dir.relative_to(cgroup2_root())}"]
    await stop(env, launched)


async def test_an_unusable_directory_falls_back_to_a_plain_fork(env: Env, tmp_path: Path) -> None:
    """Not a cgroup v2 directory (a v1 one, or none): clone3 refuses, the init is forked as
    before and the engine's prepare moves it; the container runs all the same."""
    status, out, _ = await env.run(["sh", "-c", "echo $$"], cgroup_dir=str(tmp_path))
    assert status.code == 0 and out.strip() == "1"  # still pid 1 of its own namespace


async def stop(env: Env, launched: Launched) -> None:
    env.launcher.kill(launched)
    await asyncio.wait_for(env.launcher.wait(launched), 10)
