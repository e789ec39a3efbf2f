"""What the CLI does when composerd runs other code than it (runtime.identity): restart it on
this code when nothing would be cut short, else leave it serving and say how to restart it.

    plan = decide(info, held=held_project_locks(run), euid=os.geteuid(), cmdline=cmdline_of(pid))
    if plan.restart: await replace(...)       # then say plan.message

A restart is safe for the containers: they live under the monitor, and the new daemon
re-adopts them (docs/daemon.md). It is not safe for a request being served (a build, an
`up`'s log follow, an exec session) nor for a composer holding a project lock between its
requests (`up`, `down`, `build` from another terminal): those would lose their daemon
midway. A daemon that the CLI did not start (`--foreground`: systemd's unit, or a user's
terminal) is its owner's to restart.
"""
from __future__ import annotations

import fcntl
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STARTED_BY_CLI = "--background"  # in the argv of a composerd the CLI started


@dataclass(frozen=True)
class Plan:
    restart: bool
    message: str  # the one line to tell the user, either way


def decide(info: Mapping[str, Any], *, held: list[str], euid: int, cmdline: list[str] | None) -> Plan:
    """`info`: the daemon's /version answer (one from before `busy` existed counts as idle
    but for the project locks); `held`: projects whose lock another composer holds."""
    pid = info.get("pid")
    who = f"composerd (pid {pid})" if isinstance(pid, int) else "composerd"
    stale = f"{who} runs other code than this composer (it was started before an upgrade)"
    kill = f"sudo kill {pid}" if isinstance(pid, int) else "stop composerd"
    if cmdline is None or STARTED_BY_CLI not in cmdline:
        return Plan(False, f"warning: {stale}; restart it to the new code "
                           "(`sudo systemctl restart composerd` if it runs as a service); "
                           "containers keep running")
    if euid != 0:
        return Plan(False, f"warning: {stale} and only root can restart it: run `{kill}`, then any "
                           "composer command as root starts the new code; containers keep running")
    busy = info.get("busy")
    reasons = []
    if held:
        reasons.append(f"project {', '.join(held)} is locked by another composer")
    if isinstance(busy, int) and busy > 0:
        reasons.append(f"{busy} request{'s' if busy != 1 else ''} in flight")
    if reasons:
        return Plan(False, f"warning: {stale} but is busy ({'; '.join(reasons)}), so it keeps serving; "
                           f"once that is done run `{kill}` (or any composer command): "
                           "containers keep running")
    return Plan(True, f"{stale}: restarted it on this code; containers keep running")


def held_project_locks(run: Path) -> list[str]:
    """Projects whose lock (runtime.client.project_lock) some process holds now."""
    held = []
    try:
        names = sorted(p for p in (run / "locks").iterdir() if p.suffix == ".lock")
    except OSError:
        return []
    for path in names:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            held.append(path.stem)
        except OSError:
            pass
        finally:
            os.close(fd)  # closing lets our probe's lock go
    return held


def cmdline_of(pid: Any) -> list[str] | None:
    """The argv of process `pid`, None when it can't be read (gone, another pid namespace)."""
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]
