"""Project locks: two composers on one project are serialised; a killed holder frees it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.client import Client, project_lock
from runtime.errors import Conflict, InvalidArgument

REPO = Path(__file__).resolve().parents[3]


async def test_second_client_waits_for_the_first(short_tmp: Path) -> None:
    sock = short_tmp / "composer.sock"  # no daemon needed: the lock lives in the run dir
    order: list[str] = []
    waits: list[str] = []
    first_in = asyncio.Event()

    async def first() -> None:
        async with Client(sock).lock("demo"):
            order.append("first in")
            first_in.set()
            await asyncio.sleep(0.2)
            order.append("first out")

    async def second() -> None:
        await first_in.wait()
        async with Client(sock).lock("demo", on_wait=waits.append):
            order.append("second in")

    await asyncio.wait_for(asyncio.gather(first(), second()), 5)
    assert order == ["first in", "first out", "second in"]
    assert waits == [f"waiting for another composer (pid {os.getpid()}) acting on project demo"]
    assert (short_tmp / "locks" / "demo.lock").stat().st_mode & 0o777 == 0o600


async def test_other_projects_do_not_wait(short_tmp: Path) -> None:
    c = Client(short_tmp / "composer.sock")
    async with c.lock("one"):
        async with asyncio.timeout(1):
            async with c.lock("two"):
                pass


async def test_timeout_is_a_conflict_naming_the_project(short_tmp: Path) -> None:
    c = Client(short_tmp / "composer.sock")
    async with c.lock("demo"):
        with pytest.raises(Conflict, match=r"project demo is busy: another composer \(pid \d+\)"):
            async with c.lock("demo", timeout=0.1):
                pass
    async with c.lock("demo", timeout=0.1):  # released on exit of the first block
        pass


async def test_lock_released_when_body_raises(short_tmp: Path) -> None:
    with pytest.raises(RuntimeError):
        async with project_lock(short_tmp, "demo"):
            raise RuntimeError("boom")
    async with project_lock(short_tmp, "demo", timeout=0.1):
        pass


async def test_bad_project_name(short_tmp: Path) -> None:
    with pytest.raises(InvalidArgument, match="invalid project name"):
        async with project_lock(short_tmp, "../etc"):
            pass
    assert not (short_tmp / "etc.lock").exists()


async def test_holder_killed_with_sigkill_frees_the_lock(short_tmp: Path) -> None:
    code = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from runtime.client import project_lock\n"
        "async def main():\n"
        "    async with project_lock(Path(sys.argv[1]), 'demo'):\n"
        "        print('locked', flush=True)\n"
        "        await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(short_tmp)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(Conflict, match=f"pid {proc.pid}"):
            async with project_lock(short_tmp, "demo", timeout=0.1):
                pass
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
        async with project_lock(short_tmp, "demo", timeout=2):
            pass
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
