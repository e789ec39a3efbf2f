"""composerd runs on bytecode it loaded, never on bytecode it compiled itself.

Compiling a module from source allocates far more than loading its bytecode, and a process
that lives as long as the host keeps that heap, fragmented: a composerd that compiled its ~560
modules (its first start after an install or an upgrade: its `-OO` bytecode lives in a cache of
its own, runtime.client.DAEMON_PYTHON_FLAGS) stayed ~8 MiB larger for its whole life than one
started a second later (issue 15: <= 40 MiB). So when this process wrote any of the bytecode it
runs, it execs itself once more (same pid, same argv and flags), which now only loads it.
An environment variable, removed again at once, keeps it from doing so twice.
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable
from types import ModuleType

REEXEC_ENV = "COMPOSERD_WARM_REEXEC"


def process_start() -> float:
    """The wall-clock time this process started (its exec), from /proc (10 ms ticks)."""
    with open("/proc/self/stat", "rb") as f:
        start_ticks = int(f.read().rpartition(b")")[2].split()[19])
    since_boot = time.clock_gettime(time.CLOCK_BOOTTIME)
    return time.time() - since_boot + start_ticks / os.sysconf("SC_CLK_TCK")


def compiled_here(modules: Iterable[ModuleType], started: float) -> list[str]:
    """The modules whose cached bytecode was written after `started` (by this process)."""
    found = []
    for module in modules:
        cached = getattr(module, "__cached__", None)
        if not cached or not isinstance(cached, str):
            continue
        try:
            if os.stat(cached).st_mtime >= started:
                found.append(module.__name__)
        except OSError:
            continue
    return found


def reexec_if_compiled() -> None:
    """Exec this process again when it compiled any module it imported (see above)."""
    if os.environ.pop(REEXEC_ENV, None) is not None:
        return
    # 20 ms of slack before the start read from /proc: a module compiled in this process's
    # first instants is never taken for older (at worst one exec more, never one less)
    if not compiled_here(list(sys.modules.values()), process_start() - 0.02):
        return
    os.environ[REEXEC_ENV] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, sys.orig_argv)
