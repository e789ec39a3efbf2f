"""Memory of everything of ours that is not a container's own process.

USS (unique set size) = Private_Clean + Private_Dirty of /proc/<pid>/smaps_rollup: what
would be freed if the process ended. Forked processes (fork server, shims, init reapers)
share their parent's pages copy-on-write, so USS counts only the pages each one dirtied.

Our process tree with `init: true`:

    composerd ── fork server ──┬── shim ── tini (pid 1) ── sleep 600   (the container's)
                               └── shim ── ...

Everything whose command line is composerd's or the fork server's is ours, and so is the
init that `init: true` puts in front of the command (tini-static as /sbin/docker-init, Docker's
name; a forked Python reaper before that); the rest below the shims is the container's own.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
OUR_MARKERS = (b"runtime.daemon", b"runtime.process", b"composerd")
INIT_MARKER = b"/sbin/docker-init\0"  # runtime.launchcfg.INIT_TARGET: the init: true init


def smaps(pid: int) -> dict[str, int]:
    """smaps_rollup fields in bytes."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            out[key.strip()] = int(parts[0]) * 1024
    return out


def uss(pid: int) -> int:
    s = smaps(pid)
    return s.get("Private_Clean", 0) + s.get("Private_Dirty", 0)


def rss(pid: int) -> int:
    return smaps(pid).get("Rss", 0)


def children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = defaultdict(list)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids[ppid].append(int(proc.name))
    return kids


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def classify(root: int, kids: dict[int, list[int]], cmd: dict[int, bytes]) -> dict[str, list[int]]:
    """Roles below composerd (`root`) by depth and command line: daemon, forkserver, shim,
    init (our reaper inside the container), container (the container's own processes)."""
    roles: dict[str, list[int]] = defaultdict(list)
    roles["daemon"].append(root)
    stack = [(c, 1) for c in kids.get(root, [])]
    while stack:
        pid, depth = stack.pop()
        ours = (any(m in cmd.get(pid, b"") for m in OUR_MARKERS)
                or (depth == 3 and cmd.get(pid, b"").startswith(INIT_MARKER)))
        if not ours:
            roles["container"].append(pid)
        elif depth == 1 and b"forkserver" in cmd.get(pid, b""):
            roles["forkserver"].append(pid)
        elif depth == 2:
            roles["shim"].append(pid)
        elif depth >= 3:
            roles["init"].append(pid)
        else:
            roles["daemon_child"].append(pid)
        stack += [(c, depth + 1) for c in kids.get(pid, [])]
    return roles


@dataclass(frozen=True)
class MemoryReport:
    containers: int  # running containers (shims) found
    daemon_uss: int
    daemon_rss: int
    forkserver_uss: int
    shims_uss: int
    inits_uss: int
    other_uss: int
    shim_count: int
    init_count: int

    @property
    def total_uss(self) -> int:
        return (self.daemon_uss + self.forkserver_uss + self.shims_uss + self.inits_uss
                + self.other_uss)

    @property
    def per_container(self) -> float:
        return self.total_uss / self.containers if self.containers else 0.0

    @property
    def per_shim_and_init(self) -> float:
        """The marginal cost of one more container (its shim and its init reaper)."""
        return (self.shims_uss + self.inits_uss) / self.containers if self.containers else 0.0

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {k: (round(v / MIB, 3) if k.endswith("_uss") or k.endswith("_rss") else v)
                             for k, v in asdict(self).items()}
        d["total_uss"] = round(self.total_uss / MIB, 3)
        d["per_container_uss"] = round(self.per_container / MIB, 3)
        d["per_container_shim_init_uss"] = round(self.per_shim_and_init / MIB, 3)
        d["unit"] = "MiB"
        return d


def measure(daemon_pid: int) -> MemoryReport:
    kids = children_map()
    pids = [daemon_pid]
    i = 0
    while i < len(pids):
        pids += kids.get(pids[i], [])
        i += 1
    cmd = {p: cmdline(p) for p in pids}
    roles = classify(daemon_pid, kids, cmd)

    def total(role: str) -> int:
        n = 0
        for p in roles.get(role, []):
            try:
                n += uss(p)
            except OSError:
                pass
        return n

    return MemoryReport(
        containers=len(roles.get("shim", [])),
        daemon_uss=total("daemon"), daemon_rss=rss(daemon_pid),
        forkserver_uss=total("forkserver"), shims_uss=total("shim"), inits_uss=total("init"),
        other_uss=total("daemon_child"),
        shim_count=len(roles.get("shim", [])), init_count=len(roles.get("init", [])),
    )


def peer_uss(pids: list[int]) -> dict[str, float]:
    """Total and per-process USS (MiB) of a peer's helper processes (conmon, catatonit)."""
    sizes = []
    for p in pids:
        try:
            sizes.append(uss(p))
        except OSError:
            pass
    return {"processes": len(sizes), "total_uss": round(sum(sizes) / MIB, 3),
            "per_process_uss": round(sum(sizes) / len(sizes) / MIB, 3) if sizes else 0.0}
