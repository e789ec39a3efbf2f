"""A RUN step's cgroup on the real engine: every step's process joins a cgroup of its own under
the engine's parent before it runs anything, with Docker's default device allow-list, so a
sandboxed step can mknod a node of a host disk (CAP_MKNOD is a default capability) but not
open it, while /dev/null works; an insecure step (privileged) has no device restriction. The
cgroup is gone when the step ends: after success, failure, a cancelled build."""
from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from runtime.api import BuildRequest
from runtime.engine import Engine
from runtime.images.build_adapters import LauncherRun
from runtime.images.build_leftovers import STEP_PREFIX
from tests.integration.engine.test_build_keys import _build, _read
from tests.integration.engine.test_launcher_run import busybox_layers


def host_block_device() -> tuple[int, int]:
    """major:minor of a real block device of this host (a disk before a loop device)."""
    numbers = sorted(os.listdir("/sys/dev/block"),
                     key=lambda n: (n.startswith("7:"), [int(x) for x in n.split(":")]))
    assert numbers, "this host has no block device"
    major, minor = numbers[0].split(":")
    return int(major), int(minor)


def step_cgroups(engine: Engine) -> list[str]:
    return [n for n in engine.cgroups.list() if n.startswith(STEP_PREFIX)]


# open only (a read-only redirection of a subshell): never a read or a write of the disk
PROBE = """mknod /{name}-blk b {major} {minor} && echo made > /{name}; \\
    if (exec 3</{name}-blk) 2>>/{name}; then echo opened >> /{name}; fi; rm /{name}-blk; \\
    if (exec 3</dev/null); then echo null-ok >> /{name}; fi"""


async def test_a_sandboxed_step_cannot_open_a_host_disk_an_insecure_one_can(
        engine: Engine, tmp_path: Path) -> None:
    major, minor = host_block_device()
    dockerfile = (f"FROM busybox\nRUN {PROBE.format(name='sandbox', major=major, minor=minor)}\n"
                  f"RUN --security=insecure {PROBE.format(name='insecure', major=major, minor=minor)}\n")
    req = BuildRequest(context=str(tmp_path), dockerfile_inline=dockerfile, tag="devices:1",
                       entitlements=("security.insecure",))
    await _build(engine, req)
    assert step_cgroups(engine) == []  # each step's cgroup went with it
    sandbox, insecure = (await _read(engine, "devices:1", "probe", "/sandbox", "/insecure")
                         ).split("null-ok\n")[:2]
    # mknod is allowed (as with Docker), opening the node is not: EPERM from the device cgroup
    assert sandbox.splitlines()[0] == "made"
    assert "Operation not permitted" in sandbox and "opened" not in sandbox, sandbox
    assert insecure.splitlines() == ["made", "opened"]  # privileged: no device allow-list


def cmdline(pid: str) -> bytes:
    """A process's command line; empty once it has gone (short-lived helpers, such as the
    monitor's launch children, come and go while we list)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


async def test_a_step_runs_in_its_own_cgroup_under_the_engine_parent(
        engine: Engine, tmp_path: Path) -> None:
    upper = tmp_path / "step" / "upper"
    upper.mkdir(parents=True)
    runner = LauncherRun(engine.launcher, engine.cgroups, network="none")

    async def run(*argv: str) -> int:
        res = await runner.run(lowerdirs=busybox_layers(engine), upper=str(upper), argv=argv,
                               env=["PATH=/bin"], cwd="/", user="", on_output=lambda _l: None)
        return res.exit_code

    task = asyncio.create_task(run("sh", "-c", "touch /started; exec sleep 987651"))
    deadline = time.monotonic() + 30
    while not (upper / "started").exists():
        assert time.monotonic() < deadline, "the RUN step did not start"
        await asyncio.sleep(0.05)
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit() and cmdline(p) == b"sleep\x00987651\x00"]
    assert len(pids) == 1
    names = step_cgroups(engine)
    assert len(names) == 1
    cg = engine.cgroups.open(names[0])
    assert pids[0] in cg.pids()
    lines = Path(f"/proc/{pids[0]}/cgroup").read_text().splitlines()
    # v1: its line in every hierarchy of ours (devices among them); v2: the one line
    wanted = "devices" if engine.cgroups.version == "v1" else ""
    assert any(line.split(":")[1] == wanted and line.endswith(f"/{names[0]}") for line in lines), lines
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert step_cgroups(engine) == []  # a cancelled step: killed and its cgroup removed
    assert not cg.exists() and not Path(f"/proc/{pids[0]}").exists()

    assert await run("sh", "-c", "exit 3") == 3
    assert step_cgroups(engine) == []  # a failed step too


async def test_a_failed_or_cancelled_build_leaves_no_step_cgroup(
        engine: Engine, tmp_path: Path) -> None:
    failing = BuildRequest(context=str(tmp_path), dockerfile_inline="FROM busybox\nRUN exit 3\n")
    errors = [s.error async for s in engine.build_image(failing) if s.error]
    assert len(errors) == 1 and "exit code 3" in errors[0]
    assert step_cgroups(engine) == []

    slow = BuildRequest(context=str(tmp_path),
                        dockerfile_inline="FROM busybox\nRUN echo started; sleep 600\n")
    started = asyncio.Event()

    async def consume() -> None:
        async for step in engine.build_image(slow):
            assert not step.error, step.error
            if step.line == "started":
                started.set()

    client = asyncio.create_task(consume())  # as composerd's handler for a build request
    await asyncio.wait_for(started.wait(), 60)
    assert len(step_cgroups(engine)) == 1
    client.cancel()  # the client went away: the build is cancelled
    await asyncio.gather(client, return_exceptions=True)
    assert client.cancelled()
    assert step_cgroups(engine) == []
