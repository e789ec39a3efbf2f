"""A snapshot of everything the engine can leave on a host, to compare before and after.

Used by e2e and reliability tests: `after - before` must be empty. The categories are the
ones DESIGN.md names: links `cmp*`, mounts under the state root, cgroups under `composer*`,
network namespaces, firewall tables named `composer`, rules tagged `composer...` in other
firewalls' chains (Docker's DOCKER-USER), engine processes.
"""
from __future__ import annotations

import glob
import os
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class Snapshot:
    links: frozenset[str]
    mounts: frozenset[str]
    cgroups: frozenset[str]
    netns: frozenset[str]
    nft: frozenset[str]
    iptables: frozenset[str]
    processes: frozenset[str]

    def leaks_since(self, before: Snapshot) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name in ("links", "mounts", "cgroups", "netns", "nft", "iptables", "processes"):
            new = getattr(self, name) - getattr(before, name)
            if new:
                out[name] = sorted(new)
        return out


def snapshot(state_roots: tuple[str, ...] = (), scope: str = "") -> Snapshot:
    """`scope`: only processes whose command line mentions it (e.g. a test's temp dir), so
    tests running side by side on one host do not see each other's engines."""
    links = frozenset(n for n in os.listdir("/sys/class/net") if n.startswith("cmp"))
    mounts: set[str] = set()
    with open("/proc/self/mounts") as f:
        for line in f:
            target = line.split()[1]
            if "composer" in target or any(target.startswith(r) for r in state_roots if r):
                mounts.add(target)
    cgroups = frozenset(
        p for pat in ("/sys/fs/cgroup/*/composer*/*", "/sys/fs/cgroup/composer*/*")
        for p in glob.glob(pat) if os.path.isdir(p)
    )
    netns = frozenset(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else frozenset()
    nft_out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    nft = frozenset(line.strip() for line in nft_out.splitlines() if "composer" in line)
    try:
        ipt_out = subprocess.run(["iptables", "-w", "-S"], capture_output=True, text=True).stdout
    except FileNotFoundError:
        ipt_out = ""
    iptables = frozenset(line for line in ipt_out.splitlines() if "--comment composer" in line)
    procs: set[str] = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if scope and scope not in cmd:
            continue
        if "composerd" in cmd or "runtime.daemon" in cmd or "runtime.process" in cmd:
            procs.add(f"{pid} {cmd}")
    return Snapshot(links, frozenset(mounts), cgroups, netns, nft, iptables, frozenset(procs))
