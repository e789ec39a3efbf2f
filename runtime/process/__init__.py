"""Launching container processes with our own code: namespaces, rootfs, pid 1, caps, exec.

The engine uses `Launcher` (asyncio side) with a `LaunchConfig` / `ExecConfig`; the fork
server (`python -m runtime.process.forkserver`) does every fork. See docs/process.md.
"""
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
