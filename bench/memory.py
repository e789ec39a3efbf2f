"""Memory of everything of ours that is not a container's own process, and of the peers'.

USS (unique set size) = Private_Clean + Private_Dirty of /proc/<pid>/smaps_rollup: what
would be freed if the process ended. PSS (proportional set size, `Pss` of smaps_rollup) adds
each shared page divided by the number of processes mapping it: the share of the host's
memory a process stands for, and the figure to compare with peers whose helpers share a
binary (ten conmons, ten containerd-shims).

Our processes with `init: true`:

    composerd                       (the daemon; its own children, if any, are ours too)
    monitor ──┬── tini (pid 1) ── sleep 600   (the container's)
              └── tini ── ...

The monitor (`python -m runtime.process.monitor <run dir>/monitor.sock`) is not composerd's
child: it outlives composerd, so it is found by its command line and the daemon's run dir
(COMPOSER_RUN in the daemon's environment, /run/composer by default). Its children are the
containers' inits: ours when they are tini (/sbin/docker-init, Docker's name) or the
monitor's own forked reaper; the rest below them is the containers' own. "shim+init" is
the monitor (all of it) plus the inits, per container: every process of ours but composerd.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
OUR_MARKERS = (b"runtime.daemon", b"runtime.process", b"composerd")
MONITOR_MARKER = b"runtime.process.monitor\0"
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


def pss(pid: int) -> int:
    return smaps(pid).get("Pss", 0)


@dataclass(frozen=True)
class Usage:
    """USS, PSS and RSS of a set of processes, in bytes; `processes` is how many were read."""
    processes: int = 0
    uss: int = 0
    pss: int = 0
    rss: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.processes + other.processes, self.uss + other.uss,
                     self.pss + other.pss, self.rss + other.rss)


def usage(pids: list[int]) -> Usage:
    """Sum over `pids`; a process that ended meanwhile is skipped (and not counted)."""
    total = Usage()
    for p in pids:
        try:
            s = smaps(p)
        except (OSError, ValueError):
            continue
        total += Usage(1, s.get("Private_Clean", 0) + s.get("Private_Dirty", 0),
                       s.get("Pss", 0), s.get("Rss", 0))
    return total


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


def run_dir(daemon_pid: int) -> bytes:
    """The daemon's run dir (COMPOSER_RUN of its environment, else the default)."""
    try:
        env = Path(f"/proc/{daemon_pid}/environ").read_bytes().split(b"\0")
    except OSError:
        env = []
    for item in env:
        if item.startswith(b"COMPOSER_RUN="):
            return item[len(b"COMPOSER_RUN="):].rstrip(b"/")
    return b"/run/composer"


def find_monitor(run: bytes, kids: dict[int, list[int]], cmd: dict[int, bytes]) -> list[int]:
    """The monitor of the run dir `run`, by its command line (its last argument is
    `<run>/monitor.sock`); its forked children (an init's reaper) have the same one."""
    sock = run + b"/monitor.sock\0"
    found = [p for p, c in cmd.items() if MONITOR_MARKER in c and c.endswith(sock)]
    forked = {c for p in found for c in kids.get(p, [])}
    return [p for p in found if p not in forked]


def classify(root: int, monitors: list[int], kids: dict[int, list[int]],
             cmd: dict[int, bytes]) -> dict[str, list[int]]:
    """Roles: daemon (`root`) and its children of ours (daemon_child), monitor, init (the
    monitor's children that are ours: tini or the monitor's reaper), container (every
    other process below the daemon or the monitor: the containers' own)."""
    roles: dict[str, list[int]] = defaultdict(list)
    roles["daemon"].append(root)
    stack = [(c, "daemon") for c in kids.get(root, [])]
    for m in monitors:
        roles["monitor"].append(m)
        stack += [(c, "monitor") for c in kids.get(m, [])]
    while stack:
        pid, parent = stack.pop()
        line = cmd.get(pid, b"")
        if parent == "monitor":
            roles["init_slot"].append(pid)  # one per container, ours or not
        if parent == "monitor" and (line.startswith(INIT_MARKER) or MONITOR_MARKER in line):
            roles["init"].append(pid)
        elif parent == "daemon" and any(m in line for m in OUR_MARKERS):
            roles["daemon_child"].append(pid)
        else:
            roles["container"].append(pid)
        stack += [(c, "container") for c in kids.get(pid, [])]
    return roles


@dataclass(frozen=True)
class MemoryReport:
    containers: int  # running containers (the monitor's children) found
    daemon_uss: int
    daemon_rss: int
    monitor_uss: int
    inits_uss: int
    other_uss: int
    monitor_count: int
    init_count: int
    daemon_pss: int = 0
    monitor_pss: int = 0
    inits_pss: int = 0
    other_pss: int = 0

    @property
    def total_uss(self) -> int:
        return self.daemon_uss + self.monitor_uss + self.inits_uss + self.other_uss

    @property
    def total_pss(self) -> int:
        return self.daemon_pss + self.monitor_pss + self.inits_pss + self.other_pss

    @property
    def per_container_pss(self) -> float:
        return self.total_pss / self.containers if self.containers else 0.0

    @property
    def per_shim_and_init_pss(self) -> float:
        """The monitor's share and the init, per container (the bench's "shim+init" row)."""
        return (self.monitor_pss + self.inits_pss) / self.containers if self.containers else 0.0

    @property
    def per_container(self) -> float:
        return self.total_uss / self.containers if self.containers else 0.0

    @property
    def per_shim_and_init(self) -> float:
        """The cost of our processes beside composerd (the monitor, whole, and every init)
        per container."""
        return (self.monitor_uss + self.inits_uss) / self.containers if self.containers else 0.0

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {k: (round(v / MIB, 3) if k.endswith(("_uss", "_rss", "_pss")) else v)
                             for k, v in asdict(self).items()}
        d["total_uss"] = round(self.total_uss / MIB, 3)
        d["total_pss"] = round(self.total_pss / MIB, 3)
        d["per_container_pss"] = round(self.per_container_pss / MIB, 3)
        d["per_container_shim_init_pss"] = round(self.per_shim_and_init_pss / MIB, 3)
        d["per_container_uss"] = round(self.per_container / MIB, 3)
        d["per_container_shim_init_uss"] = round(self.per_shim_and_init / MIB, 3)
        d["unit"] = "MiB"
        return d


def measure(daemon_pid: int) -> MemoryReport:
    kids = children_map()
    cmd = {p: cmdline(p) for ps in kids.values() for p in ps}
    monitors = find_monitor(run_dir(daemon_pid), kids, cmd)
    roles = classify(daemon_pid, monitors, kids, cmd)
    of = {role: usage(roles.get(role, [])) for role in
          ("daemon", "monitor", "init", "daemon_child")}
    return MemoryReport(
        containers=len(roles.get("init_slot", [])),
        daemon_uss=of["daemon"].uss, daemon_rss=of["daemon"].rss,
        monitor_uss=of["monitor"].uss, inits_uss=of["init"].uss,
        other_uss=of["daemon_child"].uss,
        monitor_count=len(roles.get("monitor", [])), init_count=len(roles.get("init", [])),
        daemon_pss=of["daemon"].pss, monitor_pss=of["monitor"].pss, inits_pss=of["init"].pss,
        other_pss=of["daemon_child"].pss,
    )


def peer_memory(groups: dict[str, list[int]], containers: int) -> dict[str, Any]:
    """A peer's processes by role (e.g. {"conmon": [...], "catatonit": [...]}), in MiB: per
    role its count and total USS/PSS/RSS, then the helpers' total and per container.
    `containers` is how many containers the peer runs. A role with no process reads 0
    processes, and when none at all was found there is no per-container figure but a note
    (a per-container 0.00 of nothing is how the peer figures misled before)."""
    out: dict[str, Any] = {"containers": containers}
    per_container = Usage()
    for role, pids in groups.items():
        u = usage(pids)
        out[f"{role}_processes"] = u.processes
        for k in ("uss", "pss", "rss"):
            out[f"{role}_{k}"] = round(getattr(u, k) / MIB, 3)
        per_container += u
    if containers and per_container.processes == 0:
        out["note"] = f"none of {', '.join(groups)} found"
    elif containers:
        out["per_container_uss"] = round(per_container.uss / containers / MIB, 3)
        out["per_container_pss"] = round(per_container.pss / containers / MIB, 3)
    return out
