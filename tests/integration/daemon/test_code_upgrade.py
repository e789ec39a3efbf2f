"""A composerd on other code (started before an upgrade, faked with COMPOSERD_IDENTITY) and
the CLI's client (connect_or_start): restarted on this code when idle, kept serving with one
line saying the fix when another composer holds a project lock or a stream is being served,
left to its owner when the CLI did not start it (`--foreground`)."""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

from runtime import identity
from runtime.client import Client, connect_or_start
from runtime.types import ContainerSpec
from tests.integration.daemon.conftest import REPO, Env, alive

OLD = f"{identity.identity().split('/')[0]}/0000000000000000/0000000000000000"


def start_old(denv: Env, *flags: str) -> int:
    """A composerd reporting other code, started as the CLI starts one (--background)."""
    env = {**denv.env(), identity.TEST_ENV: OLD}
    subprocess.run([sys.executable, "-m", "runtime.daemon", "--background", *flags,
                    "--root", str(denv.paths.root), "--run", str(denv.paths.run)],
                   cwd="/", env=env, check=True, capture_output=True, timeout=120)
    return denv.note_pid_file()


async def test_an_idle_old_daemon_is_replaced_by_this_code(denv: Env) -> None:
    old = start_old(denv)
    said: list[str] = []
    t0 = time.monotonic()
    async with await connect_or_start(denv.paths, notice=said.append) as client:
        took = time.monotonic() - t0
        v = await client.version()
        new = denv.note_pid_file()
        assert new != old and v["pid"] == new
        assert identity.same_code(v["identity"])
    assert not alive(old)
    assert said == [f"composerd (pid {old}) runs other code than this composer (it was started "
                    "before an upgrade): restarted it on this code; containers keep running"]
    print(f"restart of an old composerd: {took * 1000:.0f} ms")
    said.clear()  # the next CLI finds this code: nothing to say, nothing restarted
    async with await connect_or_start(denv.paths, notice=said.append) as client:
        assert (await client.version())["pid"] == new
    assert said == []


async def test_an_old_daemon_in_use_by_another_composer_keeps_serving(denv: Env) -> None:
    old = start_old(denv)
    locks = denv.paths.run / "locks"
    locks.mkdir(exist_ok=True)
    fd = os.open(locks / "shop.lock", os.O_RDWR | os.O_CREAT, 0o600)
    said: list[str] = []
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another composer's `up` between its requests
        async with await connect_or_start(denv.paths, notice=said.append) as client:
            assert (await client.version())["pid"] == old  # still serving this CLI
    finally:
        os.close(fd)
    assert alive(old)
    assert len(said) == 1
    assert "project shop is locked by another composer" in said[0]
    assert f"sudo kill {old}" in said[0]
    # a log stream being served: busy as well
    said.clear()
    async with Client(denv.paths.socket) as other:  # a composer from before the upgrade

        info = await other.create_container(ContainerSpec("up-web-1", "busybox:latest"))
        await other.start_container(info.id)
        stream = other.logs(info.id, follow=True)
        await stream.open()
        try:
            async with await connect_or_start(denv.paths, notice=said.append) as client:
                assert (await client.version())["pid"] == old
        finally:
            await stream.aclose()
    assert alive(old) and len(said) == 1 and "1 request in flight" in said[0]


async def test_a_daemon_the_cli_did_not_start_is_left_to_its_owner(denv: Env) -> None:
    env = {**denv.env(), identity.TEST_ENV: OLD}
    with denv.foreground(env) as proc:
        said: list[str] = []
        async with await connect_or_start(denv.paths, notice=said.append) as client:
            assert (await client.version())["pid"] == proc.pid
        assert len(said) == 1 and "systemctl restart composerd" in said[0]


def test_the_env_hook_does_not_reach_a_daemon_the_cli_starts() -> None:
    from runtime.client import daemon_environment

    assert identity.TEST_ENV not in daemon_environment({identity.TEST_ENV: OLD, "PATH": "/bin"})
    assert Path(REPO).is_dir()
