"""Scoped snapshots of what one test's engine can leave on the host: the one leak check of
every root tier (integration, e2e, reliability).

Host-wide categories (every `cmp*` link, every `composer*` cgroup) are noisy where other
stacks or test runs share the host, and miss the engine's own bookkeeping. A `Scope` names
what belongs to one test (its temp dir, state root, cgroup parent, nft table, and the bridges
and veths it learned from the network state while the stack ran) and `take(scope)` lists,
in that scope:

    mounts      mount points under the test dir, or whose source/options name it
    netns       network namespaces held by the scope's processes, and nsfs mounts of it
    links       our bridges, veths whose master is one of them, veths named in our state
    cgroups     every cgroup below our parent, in every controller hierarchy
    nft         our firewall table (`composer_<hash of the state root>`)
    iptables    our rules in other firewalls' chains (Docker's DOCKER-USER), tagged with that name
    ipam        networks, leases and endpoints in <root>/networks/network-state.json
    state_dirs  <root>/containers/*
    processes   members of our cgroups, and processes whose command line names the test dir

The order in a fixture's teardown is: the test's own clean-up through the API (down, remove)
-> `learn()` + `take()` -> force-clean whatever is left -> assert the snapshot held nothing
new. Force-cleaning before the snapshot would remove a leak and then not find it.
"""
from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field, fields
from pathlib import Path

from runtime.network import firewall

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass
class Scope:
    base: Path  # the test's temp dir: state root and run root live inside it
    root: Path
    run: Path
    cgroup_parent: str
    bridges: set[str] = field(default_factory=set)
    veths: set[str] = field(default_factory=set)

    @property
    def nft_table(self) -> str:
        return firewall.table_name(self.root)

    @classmethod
    def for_base(cls, base: Path, cgroup_parent: str) -> Scope:
        """The usual layout: state root `<base>/root`, run root `<base>/run`."""
        return cls(base=base, root=base / "root", run=base / "run", cgroup_parent=cgroup_parent)

    def learn(self) -> None:
        """Remember the links the engine's network state names now (call while a stack is up)."""
        st = network_state(self.root)
        for net in st.get("networks", {}).values():
            if net.get("bridge"):
                self.bridges.add(net["bridge"])
        for rec in st.get("containers", {}).values():
            for ep in rec.get("endpoints", []):
                if ep.get("host_veth"):
                    self.veths.add(ep["host_veth"])


@dataclass(frozen=True)
class Snapshot:
    mounts: frozenset[str]
    netns: frozenset[str]
    links: frozenset[str]
    cgroups: frozenset[str]
    nft: frozenset[str]
    iptables: frozenset[str]
    ipam: frozenset[str]
    state_dirs: frozenset[str]
    processes: frozenset[str]

    def leaks_since(self, before: Snapshot) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for f in fields(self):
            new = getattr(self, f.name) - getattr(before, f.name)
            if new:
                out[f.name] = sorted(new)
        return out

    def total(self) -> int:
        return sum(len(getattr(self, f.name)) for f in fields(self))


def network_state(root: Path) -> dict:  # type: ignore[type-arg]
    try:
        return json.loads((root / "networks" / "network-state.json").read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return {}


def cgroup_dirs(parent: str) -> list[Path]:
    """Every cgroup below `parent` (not the parent itself), in every hierarchy; under systemd
    (v2) below its delegated scope `system.slice/<parent>.scope`, whose `supervisor` leaf
    (the engine's fork server, ended by systemd with the scope) is the engine's own."""
    out: list[Path] = []
    for top in [CGROUP_ROOT / parent, *CGROUP_ROOT.glob(f"*/{parent}"),
                *CGROUP_ROOT.glob(f"*/{parent}.scope")]:
        if top.is_dir():
            out += [Path(p) for p, _d, _f in os.walk(top)
                    if Path(p) != top and top / "supervisor" not in (Path(p), *Path(p).parents)]
    return out


def cgroup_pids(parent: str) -> set[int]:
    pids: set[int] = set()
    for d in cgroup_dirs(parent):
        try:
            pids.update(int(x) for x in (d / "cgroup.procs").read_text().split())
        except OSError:
            pass
    return pids


def cmdline(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None


def ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def scope_pids(scope: Scope) -> set[int]:
    """Processes of this test: in our cgroups, or naming the test dir on their command line."""
    me = os.getpid()
    pids = cgroup_pids(scope.cgroup_parent)
    needle = str(scope.base)
    for p in os.listdir("/proc"):
        if p.isdigit() and int(p) != me:
            cmd = cmdline(int(p))
            if cmd and needle in cmd:
                pids.add(int(p))
    pids.discard(me)
    return pids


def _mounts(scope: Scope) -> frozenset[str]:
    needle = str(scope.base)
    out: set[str] = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            if needle in line:
                out.add(line.split()[4])
    return frozenset(out)


def _netns(pids: set[int]) -> frozenset[str]:
    host = os.readlink("/proc/self/ns/net")
    out: set[str] = set()
    for pid in pids:
        try:
            ns = os.readlink(f"/proc/{pid}/ns/net")
        except OSError:
            continue
        if ns != host:
            out.add(ns)
    return frozenset(out)


def _nsfs_mounts(scope: Scope) -> frozenset[str]:
    out: set[str] = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            sep = parts.index("-")
            if parts[sep + 1] == "nsfs" and (str(scope.base) in parts[4] or parts[4].startswith("/run/netns/cmp")):
                out.add(f"nsfs {parts[4]}")
    return frozenset(out)


def _links(scope: Scope) -> frozenset[str]:
    out: set[str] = set()
    for name in os.listdir("/sys/class/net"):
        if not name.startswith("cmp"):
            continue
        try:
            master = os.path.basename(os.readlink(f"/sys/class/net/{name}/master"))
        except OSError:
            master = ""
        if name in scope.bridges or name in scope.veths or master in scope.bridges:
            out.add(name)
    return frozenset(out)


def _nft(scope: Scope) -> frozenset[str]:
    text = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout
    return frozenset(line.strip() for line in text.splitlines()
                     if line.split() and line.split()[-1] == scope.nft_table)


def _iptables(scope: Scope) -> frozenset[str]:
    try:
        text = subprocess.run(["iptables", "-w", "-S"], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return frozenset()
    return frozenset(line for line in text.splitlines() if f"--comment {scope.nft_table} " in line)


def _ipam(scope: Scope) -> frozenset[str]:
    st = network_state(scope.root)
    out: set[str] = set()
    for name, net in st.get("networks", {}).items():
        out.add(f"network {name} {net.get('subnet')}")
        out.update(f"lease {name} {ip} {cid[:12]}" for ip, cid in net.get("leases", {}).items())
    out.update(f"endpoint {cid[:12]}" for cid in st.get("containers", {}))
    return frozenset(out)


def _state_dirs(scope: Scope) -> frozenset[str]:
    d = scope.root / "containers"
    return frozenset(p.name for p in d.iterdir()) if d.is_dir() else frozenset()


def take(scope: Scope) -> Snapshot:
    pids = scope_pids(scope)
    procs = frozenset(f"{pid} {cmdline(pid)}" for pid in pids if cmdline(pid) is not None)
    return Snapshot(
        mounts=_mounts(scope),
        netns=_netns(pids) | _nsfs_mounts(scope),
        links=_links(scope),
        cgroups=frozenset(str(d) for d in cgroup_dirs(scope.cgroup_parent)),
        nft=_nft(scope),
        iptables=_iptables(scope),
        ipam=_ipam(scope),
        state_dirs=_state_dirs(scope),
        processes=procs,
    )


def state_listing(root: Path) -> list[str]:
    """Every path under the state root with its type and size (not mtime): a change detector."""
    out: list[str] = []
    for d, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            p = os.path.join(d, name)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            size = "" if os.path.isdir(p) else st.st_size
            out.append(f"{p} {oct(st.st_mode)} {size}")
    return sorted(out)
