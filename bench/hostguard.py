"""What a peer leaves on the host, and removing exactly that.

Docker and podman leave firewall chains (`DOCKER*`, `NETAVARK*`, `CNI-*`), bridges
(`docker0`, `podman<N>`, `cni-podman<N>`), state dirs (`/var/lib/containers`, `/run/containers`,
`/run/systemd/nspawn`) and `net.ipv4.ip_forward` behind after they stop. `HostGuard` takes a
snapshot before a peer runs and, afterwards, removes only what is new *and* named like that
peer's own things — never anything that was there before, never anything else.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

TABLES = ("filter", "nat", "mangle", "raw")
CHAIN_PREFIXES = ("DOCKER", "NETAVARK", "CNI-", "PODMAN")
LINK_PATTERN = re.compile(r"^(docker0|podman\d+|cni-podman\d+|br-[0-9a-f]{12})$")
STATE_DIRS = ("/var/lib/containers", "/run/containers", "/run/libpod", "/run/systemd/nspawn",
              "/var/lib/cni", "/run/cni", "/run/netns")
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


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


def parse_rules(text: str) -> Rules:
    """`iptables -t T -S` output -> Rules. Built-in chains show as `-P`, user chains as `-N`."""
    chains, rules = set(), []
    for line in text.splitlines():
        if line.startswith("-N ") or line.startswith("-P "):
            chains.add(line.split()[1])
        elif line.startswith("-A "):
            rules.append(line)
    return Rules(frozenset(chains), tuple(rules))


def peer_chain(name: str) -> bool:
    return name.startswith(CHAIN_PREFIXES)


def cleanup_plan(before: Rules, after: Rules) -> list[list[str]]:
    """The iptables arguments (after `-t T`) that remove what a peer added: first the new rules
    that jump to a new peer chain from another chain, then flush and delete each new chain."""
    new_chains = sorted(c for c in after.chains - before.chains if peer_chain(c))
    if not new_chains:
        return []
    plan: list[list[str]] = []
    old = set(before.rules)
    for rule in after.rules:
        parts = rule.split()
        chain = parts[1]
        if rule in old or chain in new_chains:
            continue
        if "-j" in parts and parts[parts.index("-j") + 1] in new_chains:
            plan.append(["-D", *parts[1:]])
    for c in new_chains:
        plan.append(["-F", c])
    for c in new_chains:
        plan.append(["-X", c])
    return plan


def _split_rule(args: list[str]) -> list[str]:
    """Rule words, keeping quoted comments (`--comment "a b"`) as one argument."""
    import shlex

    return shlex.split(" ".join(args))


@dataclass
class HostGuard:
    rules: dict[tuple[str, str], Rules] = field(default_factory=dict)
    links: frozenset[str] = frozenset()
    ip_forward: str = ""
    dirs: frozenset[str] = frozenset()
    removed: list[str] = field(default_factory=list)

    @classmethod
    def snapshot(cls) -> HostGuard:
        g = cls()
        for binary in ("iptables", "ip6tables"):
            for t in TABLES:
                g.rules[(binary, t)] = parse_rules(_run(binary, "-w", "-t", t, "-S"))
        g.links = frozenset(_links())
        g.ip_forward = IP_FORWARD.read_text().strip()
        g.dirs = frozenset(d for d in STATE_DIRS if Path(d).exists())
        return g

    def restore(self) -> list[str]:
        """Remove what appeared since the snapshot and belongs to a peer; returns what it did."""
        for (binary, t), before in self.rules.items():
            after = parse_rules(_run(binary, "-w", "-t", t, "-S"))
            for args in cleanup_plan(before, after):
                words = _split_rule(args)
                p = subprocess.run([binary, "-w", "-t", t, *words], capture_output=True, text=True)
                self.removed.append(f"{binary} -t {t} {' '.join(args)}"
                                    + ("" if p.returncode == 0 else f" (failed: {p.stderr.strip()})"))
        for link in sorted(set(_links()) - self.links):
            if LINK_PATTERN.match(link):
                subprocess.run(["ip", "link", "del", link], capture_output=True)
                self.removed.append(f"link {link}")
        now = IP_FORWARD.read_text().strip()
        if self.ip_forward and now != self.ip_forward:
            IP_FORWARD.write_text(self.ip_forward + "\n")
            self.removed.append(f"ip_forward {now} -> {self.ip_forward}")
        for d in STATE_DIRS:
            if d not in self.dirs and Path(d).exists() and not _has_mounts(d):
                shutil.rmtree(d, ignore_errors=True)
                self.removed.append(f"dir {d}")
        return self.removed


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
