"""Loop devices for the device-control tests: block devices that are safe to open, and to
write to while unbound. A host without them (Debian's kernel has loop as a module that
nothing loaded yet, as in the test VM) gets the module for the test module's duration, and
loses it again afterwards: nothing is left behind."""
from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

NEEDED = (Path("/dev/loop0"), Path("/dev/loop1"))


@pytest.fixture(scope="module")
def loop_devices() -> Iterator[None]:
    if all(p.exists() for p in NEEDED):
        yield
        return
    subprocess.run(["modprobe", "loop"], check=True)
    try:
        deadline = time.monotonic() + 10
        while not all(p.exists() for p in NEEDED):
            assert time.monotonic() < deadline, "modprobe loop made no /dev/loop0 and loop1"
            time.sleep(0.05)
        yield
    finally:
        subprocess.run(["modprobe", "-r", "loop"], check=False)
