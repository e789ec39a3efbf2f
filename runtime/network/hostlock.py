"""One host-wide lock for what engines with different state roots share on a host.

Subnet choice (host routes) and ip_forward are host-wide, but each engine's state file is
not. An exclusive flock on the `/run` directory itself serialises those sections across
processes without leaving a lock file behind. Never nest it (a second flock in the same
process would wait for itself).
"""
from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

HOST_LOCK_DIR = Path("/run")


@contextlib.contextmanager
def held(directory: Path = HOST_LOCK_DIR) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
