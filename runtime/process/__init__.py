"""Launching container processes with our own code: namespaces, rootfs, pid 1, caps, exec.

The engine uses `Launcher` (asyncio side) with a `LaunchConfig` / `ExecConfig`; the fork
monitor (`python -m runtime.process.monitor`) does every fork. See docs/process.md.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime.process.config import (
        DEFAULT_CAPS,
        ExecConfig,
        LaunchConfig,
        MountPoint,
        Security,
        check,
        check_sysctls,
        effective_caps,
    )
    from runtime.process.launcher import ExecProcess, ExitStatus, Launched, Launcher
    from runtime.process.logread import LogEntry, read_log

__all__ = [
    "DEFAULT_CAPS",
    "ExecConfig",
    "ExecProcess",
    "ExitStatus",
    "LaunchConfig",
    "Launched",
    "Launcher",
    "LogEntry",
    "MountPoint",
    "Security",
    "check",
    "check_sysctls",
    "effective_caps",
    "read_log",
]

# Loaded on first use (PEP 562): `runtime.process.config` alone (the CLI's flag checks) must
# not import the launcher, the monitor and the seccomp compiler behind it (~20 ms).
_MODULE_OF = {
    **dict.fromkeys(("DEFAULT_CAPS", "ExecConfig", "LaunchConfig", "MountPoint", "Security",
                     "check", "check_sysctls", "effective_caps"), "config"),
    **dict.fromkeys(("ExecProcess", "ExitStatus", "Launched", "Launcher"), "launcher"),
    **dict.fromkeys(("LogEntry", "read_log"), "logread"),
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
