"""Delegation under systemd: the engine's containers live in a scope systemd delegated to
composer; daemon-reload and restarting other units leave them and their limits alone; the
engine re-adopts them after a restart, whether composerd ran from its unit or from the CLI;
`down` (remove + remove_parent) leaves no cgroup and no unit."""
from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runtime.cgroups import SystemdBus
from runtime.cgroups.v2 import SUPERVISOR
from runtime.client import Client, DaemonUnavailable, connect_or_start
from runtime.engine import Engine
from runtime.paths import Paths
from runtime.types import ContainerSpec, Resources

MiB = 1024 * 1024
ROOT = Path("/sys/fs/cgroup")
REPO = Path(__file__).resolve().parents[3]
SLEEPER = ContainerSpec(name="sleeper", image="busybox", command=("sleep", "600"),
                        network_mode="none", init=True,
                        resources=Resources(memory=48 * MiB, pids_limit=21, cpu_quota=30_000))


def cgroup_of(pid: int) -> str:
    return Path(f"/proc/{pid}/cgroup").read_text().strip().removeprefix("0::")


def limits(d: Path) -> tuple[str, str, str]:
    return tuple((d / f).read_text().strip() for f in ("memory.max", "pids.max", "cpu.max"))  # type: ignore[return-value]


def systemctl(*args: str) -> None:
    subprocess.run(["systemctl", *args], check=True, capture_output=True)


def shake_systemd(dummy: str) -> None:
    """What happens on a host all day: a daemon-reload, and other units restarting."""
    systemctl("daemon-reload")
    systemctl("restart", dummy)
    systemctl("restart", "systemd-journald.service")


@pytest.fixture
def dummy() -> AsyncIterator[str]:
    unit = f"cmp-dummy-{uuid.uuid4().hex[:6]}.service"
    path = Path("/run/systemd/system") / unit
    path.write_text("[Service]\nExecStart=/bin/sleep infinity\n")
    systemctl("daemon-reload")
    systemctl("start", unit)
    yield unit
    subprocess.run(["systemctl", "stop", unit], capture_output=True)
    path.unlink()
    systemctl("daemon-reload")


@pytest.fixture
def base() -> AsyncIterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="cmphost"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def assert_gone(parent: str) -> None:
    unit = f"{parent}.scope"
    assert SystemdBus().active_state(unit) is None, f"{unit} left behind"
    assert not list(ROOT.glob(f"**/{parent}*")), "cgroups left behind"


async def test_engine_containers_live_in_the_delegated_scope_and_survive(
        base: Path, dummy: str) -> None:
    parent = f"composer-ht-{uuid.uuid4().hex[:6]}"
    paths = Paths(base / "root", base / "run")
    eng = await Engine.open(paths, cgroup_parent=parent)
    scope = ROOT / "system.slice" / f"{parent}.scope"
    try:
        eng.images.ensure_busybox()
        fs_pid = eng.launcher.server_pid
        assert fs_pid and cgroup_of(fs_pid) == f"/system.slice/{parent}.scope/{SUPERVISOR}"
        info = await eng.create_container(SLEEPER)
        await eng.start_container(info.id)
        pid = (await eng.inspect_container(info.id)).pid
        assert cgroup_of(pid) == f"/system.slice/{parent}.scope/{info.id}"
        before = limits(scope / info.id)
        assert before == (str(48 * MiB), "21", "30000 100000")
        shake_systemd(dummy)
        await asyncio.sleep(1)
        assert cgroup_of(pid) == f"/system.slice/{parent}.scope/{info.id}"
        assert limits(scope / info.id) == before
        # the engine restarts: the monitor stays in the scope with the container, the new
        # engine finds it and adopts the container
        await eng.close()
        assert SystemdBus().active_state(f"{parent}.scope") == "active"
        eng = await Engine.open(paths, cgroup_parent=parent)
        again = await eng.inspect_container(info.id)
        assert again.state == "running" and again.pid == pid
        assert eng.launcher.server_pid == fs_pid
        assert cgroup_of(fs_pid).endswith(f"{parent}.scope/{SUPERVISOR}")
        await eng.stop_container(info.id, timeout=1)
        await eng.remove_container(info.id, force=True)
        assert not (scope / info.id).exists()
    finally:
        for c in await eng.list_containers(all=True):
            await eng.remove_container(c.id, force=True)
        await eng.close()
        eng.cgroups.remove_parent()
    assert_gone(parent)


async def answering(paths: Paths, timeout: float = 120.0) -> Client:
    """A client of the daemon systemd started (never start one ourselves here)."""
    client = Client(paths.socket)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            if await client.ping():
                return client
        except DaemonUnavailable:
            pass
        if asyncio.get_running_loop().time() > deadline:
            await client.close()
            raise AssertionError(f"composerd did not answer on {paths.socket}")
        await asyncio.sleep(0.1)


async def _run_sleeper(client: Client) -> tuple[str, int]:
    info = await client.create_container(SLEEPER)
    await client.start_container(info.id)
    return info.id, (await client.inspect_container(info.id)).pid


async def _down(client: Client, cid: str) -> None:
    await client.remove_container(cid, force=True)


UNIT = """[Unit]
Description=composerd under test
[Service]
Type=simple
ExecStart={python} -m runtime.daemon --foreground --root {root} --run {run}
WorkingDirectory={repo}
Environment=PYTHONPATH={repo}
Environment=COMPOSER_CGROUP_PARENT={parent}
{keys}
"""


def unit_keys() -> str:
    """The [Service] keys of contrib/composerd.service that govern processes and cgroups."""
    keep = ("KillMode", "KillSignal", "Delegate", "TasksMax", "Restart")
    lines = (REPO / "contrib" / "composerd.service").read_text().splitlines()
    return "\n".join(line for line in lines if line.split("=")[0] in keep)


async def test_composerd_from_its_unit_restarts_without_touching_containers(
        base: Path, dummy: str) -> None:
    parent = f"composer-hu-{uuid.uuid4().hex[:6]}"
    unit = f"cmpd-{parent}.service"
    path = Path("/run/systemd/system") / unit
    paths = Paths(base / "root", base / "run")
    path.write_text(UNIT.format(python=sys.executable, root=paths.root, run=paths.run,
                                repo=REPO, parent=parent, keys=unit_keys()))
    systemctl("daemon-reload")
    cid = ""
    try:
        systemctl("start", unit)
        async with await answering(paths) as client:
            cid, pid = await _run_sleeper(client)
        scope = ROOT / "system.slice" / f"{parent}.scope"
        before = limits(scope / cid)
        shake_systemd(dummy)
        systemctl("restart", unit)  # the unit's own restart: 219/CGROUP if we nested here
        async with await answering(paths) as client:
            info = await client.inspect_container(cid)
            assert info.state == "running" and info.pid == pid
            assert limits(scope / cid) == before
            await _down(client, cid)
            assert not (scope / cid).exists()
            cid = ""
    finally:
        if cid:
            async with await answering(paths, 30) as client:
                await _down(client, cid)
        subprocess.run(["systemctl", "stop", unit], capture_output=True)
        path.unlink()
        systemctl("daemon-reload")
    await asyncio.sleep(1)
    assert_gone(parent)  # the daemon stopped and no container runs: the scope ended


async def test_composerd_started_by_the_cli_gets_a_scope_and_readopts(base: Path) -> None:
    parent = f"composer-hc-{uuid.uuid4().hex[:6]}"
    paths = Paths(base / "root", base / "run")
    os.environ["COMPOSER_CGROUP_PARENT"] = parent
    cid = ""
    try:
        async with await connect_or_start(paths, timeout=60) as client:
            cid, pid = await _run_sleeper(client)
        daemon = int((paths.run / "composerd.pid").read_text())
        assert cgroup_of(pid) == f"/system.slice/{parent}.scope/{cid}"
        os.kill(daemon, 15)
        for _ in range(200):
            if not Path(f"/proc/{daemon}").exists():
                break
            await asyncio.sleep(0.05)
        assert SystemdBus().active_state(f"{parent}.scope") == "active"
        async with await connect_or_start(paths, timeout=60) as client:
            info = await client.inspect_container(cid)
            assert info.state == "running" and info.pid == pid
            await _down(client, cid)
            cid = ""
    finally:
        if cid:
            async with await connect_or_start(paths, timeout=60) as client:
                await _down(client, cid)
        pidfile = paths.run / "composerd.pid"
        if pidfile.exists():
            daemon = int(pidfile.read_text())
            os.kill(daemon, 15)
            for _ in range(200):
                if not Path(f"/proc/{daemon}").exists():
                    break
                await asyncio.sleep(0.05)
        del os.environ["COMPOSER_CGROUP_PARENT"]
    await asyncio.sleep(1)
    assert_gone(parent)
