"""The host lock's async form waits for another process without blocking the event loop."""
from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

from runtime.network import hostlock

HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


async def test_waiting_for_another_process_leaves_the_loop_running(tmp_path: Path) -> None:
    other = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path), "0.6"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None and other.stdout.readline() == "held\n"
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        tick = asyncio.create_task(ticker())
        t0 = time.monotonic()
        async with hostlock.held_async(tmp_path):
            waited = time.monotonic() - t0
        tick.cancel()
        assert waited > 0.3  # it did wait for the other process
        assert ticks >= 10  # and the loop ran meanwhile (blocked, it would not tick at all)
    finally:
        other.kill()
        other.wait()
        assert other.stdout is not None
        other.stdout.close()


async def test_cancelled_while_waiting_lets_go_once_the_thread_is_done(tmp_path: Path) -> None:
    other = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path), "0.5"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None and other.stdout.readline() == "held\n"

        async def take() -> None:
            async with hostlock.held_async(tmp_path):
                raise AssertionError("cancelled before it got the lock")

        task = asyncio.create_task(take())
        await asyncio.sleep(0.1)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        # the abandoned wait gets the lock when the other process ends, then lets it go:
        # the lock is free again for us
        await asyncio.wait_for(_held_once(tmp_path), 10)
    finally:
        other.kill()
        other.wait()
        assert other.stdout is not None
        other.stdout.close()


async def _held_once(d: Path) -> None:
    async with hostlock.held_async(d):
        pass
