"""One host-wide lock for what engines with different state roots share on a host.

Subnet choice (host routes) and ip_forward are host-wide, but each engine's state file is
not. An exclusive flock on the `/run` directory itself serialises those sections across
processes without leaving a lock file behind. Never nest it (a second flock in the same
process would wait for itself).
"""
from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

HOST_LOCK_DIR = Path("/run")


@contextlib.contextmanager
def held(directory: Path = HOST_LOCK_DIR) -> Iterator[None]:
    """For short sections without awaits (the wait for another process blocks the caller)."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextlib.asynccontextmanager
async def held_async(directory: Path = HOST_LOCK_DIR) -> AsyncIterator[None]:
    """For sections that await: the wait for another process (another engine creating a
    network) happens in a thread, so composerd's loop (and the DNS it answers) runs on."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    locking = asyncio.ensure_future(asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX))
    try:
        await asyncio.shield(locking)
    except BaseException:
        # cancelled while the thread waits: the fd is closed (the lock let go) once the
        # thread is done with it, never under it
        locking.add_done_callback(lambda _: os.close(fd))
        raise
    try:
        yield
    finally:
        os.close(fd)
