"""What a peer leaves on the host, and removing exactly that.

Docker and podman leave firewall chains (`DOCKER*`, `NETAVARK*`, `CNI-*`), bridges
(`docker0`, `podman<N>`, `cni-podman<N>`), state dirs (`/var/lib/containers`, `/run/containers`,
`/run/systemd/nspawn`) and `net.ipv4.ip_forward` behind after they stop. dockerd also adds
rules to built-in chains that name `docker0` or its subnet (`-A FORWARD -o docker0 ... -j
ACCEPT`, `-A POSTROUTING -s <bip> ! -o docker0 -j MASQUERADE`), sets the FORWARD policy to
DROP when forwarding was off, turns `bridge-nf-call-iptables` on (loading br_netfilter) and,
through iptables-nft, creates the `ip nat` table if there was none. `HostGuard` takes a
snapshot before a peer runs and, afterwards, removes only what is new *and* a peer's (named
like a peer's chain or bridge, or naming a new peer bridge or its subnet) and puts back the
policies and sysctls that changed — never anything that was there before, never anything else.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

TABLES = ("filter", "nat", "mangle", "raw")
CHAIN_PREFIXES = ("DOCKER", "NETAVARK", "CNI-", "PODMAN")
LINK_PATTERN = re.compile(r"^(docker0|podman\d+|cni-podman\d+|br-[0-9a-f]{12})$")
STATE_DIRS = ("/var/lib/containers", "/run/containers", "/run/libpod", "/run/systemd/nspawn",
              "/var/lib/cni", "/run/cni", "/run/netns", "/etc/docker", "/run/docker",
              "/var/lib/docker", "/run/containerd", "/var/lib/containerd",
              "/etc/docker/key.json")  # dockerd 20.10 makes its trust key there, whatever its flags
# cgroup parents a peer makes in every hierarchy and leaves (podman with cgroupfs: conmon's
# and the containers' cgroups go below libpod_parent)
PEER_CGROUPS = ("libpod_parent", "docker")
CGROUP_ROOT = Path("/sys/fs/cgroup")
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
# what dockerd (and podman's netavark/CNI) may switch on; "0" is what a missing
# bridge-nf-call-* meant (br_netfilter not loaded: bridged frames skipped iptables)
SYSCTLS = (str(IP_FORWARD), "/proc/sys/net/ipv6/conf/all/forwarding",
           "/proc/sys/net/bridge/bridge-nf-call-iptables",
           "/proc/sys/net/bridge/bridge-nf-call-ip6tables",
           "/proc/sys/net/ipv4/conf/all/route_localnet")
XT_TABLES = {("ip", t) for t in TABLES} | {("ip6", t) for t in TABLES}


def _run(*argv: str) -> str:
    if shutil.which(argv[0]) is None:
        return ""
    p = subprocess.run(argv, capture_output=True, text=True)
    return p.stdout if p.returncode == 0 else ""


@dataclass(frozen=True)
class Rules:
    """One table of one iptables binary: its chains and its rules (`-S` lines)."""
    chains: frozenset[str]
    rules: tuple[str, ...]


    policies: tuple[tuple[str, str], ...] = ()  # built-in chain -> policy

    def policy(self, chain: str) -> str | None:
        return dict(self.policies).get(chain)


def parse_rules(text: str) -> Rules:
    """`iptables -t T -S` output -> Rules. Built-in chains show as `-P`, user chains as `-N`."""
    chains, rules, policies = set(), [], []
    for line in text.splitlines():
        if line.startswith("-N ") or line.startswith("-P "):
            chains.add(line.split()[1])
            if line.startswith("-P ") and len(line.split()) >= 3:
                policies.append((line.split()[1], line.split()[2]))
        elif line.startswith("-A "):
            rules.append(line)
    return Rules(frozenset(chains), tuple(rules), tuple(policies))


def peer_chain(name: str) -> bool:
    return name.startswith(CHAIN_PREFIXES)


def cleanup_plan(before: Rules, after: Rules, marks: frozenset[str] = frozenset()) -> list[list[str]]:
    """The iptables arguments (after `-t T`) that remove what a peer added: first the new rules
    in other chains that jump to a new peer chain or name one of `marks` (a new peer bridge,
    its subnet) as a word, then flush and delete each new peer chain, then put back every
    built-in chain's policy that changed."""
    new_chains = sorted(c for c in after.chains - before.chains if peer_chain(c))
    plan: list[list[str]] = []
    old = set(before.rules)
    for rule in after.rules:
        parts = rule.split()
        chain = parts[1]
        if rule in old or chain in new_chains:
            continue
        jumps = "-j" in parts and parts[parts.index("-j") + 1] in new_chains
        if jumps or marks.intersection(parts):
            plan.append(["-D", *parts[1:]])
    for c in new_chains:
        plan.append(["-F", c])
    for c in new_chains:
        plan.append(["-X", c])
    for chain, policy in before.policies:
        if after.policy(chain) not in (None, policy):
            plan.append(["-P", chain, policy])
    return plan


def _split_rule(args: list[str]) -> list[str]:
    """Rule words, keeping quoted comments (`--comment "a b"`) as one argument."""
    import shlex

    return shlex.split(" ".join(args))


PEER_LOCK = Path("/run/lock/composer-bench-peers.lock")


@contextlib.contextmanager
def peer_lock(path: Path = PEER_LOCK) -> Iterator[bool]:
    """Held from a HostGuard's snapshot to its restore: two benches on one host (developers
    share it) would otherwise each remove, as new and a peer's, the chains and links the
    other's dockerd or podman made meanwhile. Yields whether it had to wait."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        waited = False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            waited = True
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield waited
    finally:
        os.close(fd)  # closing releases the lock


@dataclass
class HostGuard:
    rules: dict[tuple[str, str], Rules] = field(default_factory=dict)
    links: frozenset[str] = frozenset()
    ip_forward: str = ""
    sysctls: dict[str, str | None] = field(default_factory=dict)
    nft_tables: frozenset[tuple[str, str]] = frozenset()
    dirs: frozenset[str] = frozenset()
    cgroups: frozenset[str] = frozenset()
    removed: list[str] = field(default_factory=list)

    @classmethod
    def snapshot(cls) -> HostGuard:
        g = cls()
        for binary in ("iptables", "ip6tables"):
            for t in TABLES:
                g.rules[(binary, t)] = parse_rules(_run(binary, "-w", "-t", t, "-S"))
        g.links = frozenset(_links())
        g.ip_forward = IP_FORWARD.read_text().strip()
        g.sysctls = {p: _read(p) for p in SYSCTLS}
        g.nft_tables = frozenset(_nft_tables())
        g.dirs = frozenset(d for d in STATE_DIRS if Path(d).exists())
        g.cgroups = frozenset(_peer_cgroups())
        return g

    def restore(self) -> list[str]:
        """Remove what appeared since the snapshot and belongs to a peer; returns what it did."""
        new_links = sorted(link for link in set(_links()) - self.links if LINK_PATTERN.match(link))
        marks = frozenset(new_links) | frozenset(n for link in new_links for n in _subnets(link))
        for (binary, t), before in self.rules.items():
            after = parse_rules(_run(binary, "-w", "-t", t, "-S"))
            for args in cleanup_plan(before, after, marks):
                words = _split_rule(args)
                p = subprocess.run([binary, "-w", "-t", t, *words], capture_output=True, text=True)
                self.removed.append(f"{binary} -t {t} {' '.join(args)}"
                                    + ("" if p.returncode == 0 else f" (failed: {p.stderr.strip()})"))
        for link in new_links:
            subprocess.run(["ip", "link", "del", link], capture_output=True)
            self.removed.append(f"link {link}")
        for family, name in sorted(set(_nft_tables()) - self.nft_tables):
            if (family, name) in XT_TABLES and _xt_table_empty(family, name):
                subprocess.run(["nft", "delete", "table", family, name], capture_output=True)
                self.removed.append(f"nft table {family} {name} (empty, made by iptables-nft)")
        for path, was in self.sysctls.items():
            now = _read(path)
            want = "0" if was is None and "/bridge/" in path else was
            if now is not None and want is not None and now != want:
                Path(path).write_text(want + "\n")
                self.removed.append(f"sysctl {path.removeprefix('/proc/sys/')} {now} -> {want}")
        for d in STATE_DIRS:
            if d not in self.dirs and Path(d).exists() and not _has_mounts(d):
                kind = "dir" if Path(d).is_dir() else "file"
                if kind == "dir":
                    shutil.rmtree(d, ignore_errors=True)
                else:
                    Path(d).unlink(missing_ok=True)
                self.removed.append(f"{kind} {d}")
        for cg in sorted(set(_peer_cgroups()) - self.cgroups):
            left = _rmdir_cgroup(Path(cg))
            self.removed.append(f"cgroup {cg}" + (f" (left: {left}, in use)" if left else ""))
        return self.removed


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _subnets(link: str) -> list[str]:
    """The IPv4 networks on `link` (as iptables prints them: `10.247.77.0/24`)."""
    import ipaddress

    out = _run("ip", "-o", "-4", "addr", "show", "dev", link)
    nets = []
    for line in out.splitlines():
        parts = line.split()
        if "inet" in parts:
            nets.append(str(ipaddress.ip_interface(parts[parts.index("inet") + 1]).network))
    return nets


def _nft_tables() -> list[tuple[str, str]]:
    out = []
    for line in _run("nft", "list", "tables").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "table":
            out.append((parts[1], parts[2]))
    return out


def _xt_table_empty(family: str, name: str) -> bool:
    """True when an iptables-nft table holds only base chains with no rules and policy accept."""
    return table_is_empty(_run("nft", "list", "table", family, name))


def table_is_empty(listing: str) -> bool:
    for line in listing.splitlines():
        words = line.strip().rstrip(";").split()
        if not words or words[0] in ("table", "chain", "}", "type"):
            if words and words[0] == "type" and "policy" in words and "accept" not in words:
                return False
            continue
        return False
    return bool(listing.strip())


def _peer_cgroups() -> list[str]:
    return [str(d) for name in PEER_CGROUPS for d in CGROUP_ROOT.glob(f"*/{name}") if d.is_dir()]


def _rmdir_cgroup(top: Path) -> int:
    """rmdir `top` and the cgroups below it, deepest first; how many could not go (in use)."""
    left = 0
    for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)) + [top]:
        try:
            d.rmdir()
        except OSError:
            left += 1
    return left


def _links() -> list[str]:
    out = _run("ip", "-o", "link", "show")
    names = []
    for line in out.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            names.append(parts[1].strip().split("@")[0])
    return names


def _has_mounts(path: str) -> bool:
    prefix = path.rstrip("/") + "/"
    with open("/proc/self/mounts") as f:
        return any(line.split()[1].startswith(prefix) or line.split()[1] == path for line in f)
