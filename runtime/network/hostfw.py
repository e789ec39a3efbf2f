"""Living beside the host's other firewalls: Docker, podman's netavark, nftables-only hosts.

Our nft table (runtime.network.firewall) accepts our own traffic, but an accept in one table
only ends that table's chain: the packet still has to pass every other forward chain, and a
drop anywhere is final. Docker (when it turns on ip_forward) sets the iptables FORWARD policy
to DROP and loads br_netfilter, so bridged frames between two containers of one network pass
FORWARD too; the policy stays after dockerd stops. So, as Docker documents for other software
("Docker on a router"), we put our accept rules in its `DOCKER-USER` chain, which FORWARD
jumps to before anything else:

    -i BRIDGE -j ACCEPT                                   (non-internal: out of the network)
    -o BRIDGE -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT   (replies)
    -o BRIDGE -m conntrack --ctstate DNAT -j ACCEPT       (published ports)
    -i BRIDGE -o BRIDGE -j ACCEPT                         (internal: inside the network only)

each tagged `-m comment --comment <our table name>`, synced with every change of our bridges
(added at the top of the chain, deleted with the network) in one `iptables-restore --noflush`
transaction. Nothing of Docker's is changed. Isolation (internal networks, networks from each
other) stays in our own table, whose drops are final whatever DOCKER-USER accepts.

Why the `iptables` tool and not nft: DOCKER-USER lives in the iptables `filter` table, which
Docker manages with the `iptables` binary. On a legacy (x_tables) host nft cannot see that
chain at all; on an iptables-nft host (Debian 12) a rule written natively with nft may use
expressions iptables-nft cannot read back (`ct state` is one), and then iptables refuses the
whole chain ("chain `DOCKER-USER' in table `filter' is incompatible, use 'nft' tool"), which
breaks Docker's own listing. Rules written with iptables land in the same backend as Docker's
and stay listable. The conntrack states are two rules, not one `RELATED,ESTABLISHED,DNAT`:
nft's translation of a mixed list into its own syntax is misleading to read.

Where a forward drop exists that has no such documented place (the iptables FORWARD policy
is DROP with no DOCKER-USER chain reached from FORWARD, or another nft table's forward chain
has policy drop, as an nftables-only firewall in /etc/nftables.conf may), we change nothing
and `blockers()` says so in one line per chain, naming the rules the user can add there.
Podman's netavark needs nothing: its chains (iptables NETAVARK_* or its `inet netavark`
table) accept its own subnets, drop only for its own bridges, and keep policy accept.
"""
from __future__ import annotations

import asyncio
import json
import logging
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from runtime.network.errors import NetworkError
from runtime.network.firewall import DEFAULT_TABLE, BridgeRule

log = logging.getLogger(__name__)

DOCKER_USER = "DOCKER-USER"
IPTABLES_FORWARD = "ip filter FORWARD"  # iptables-nft's FORWARD chain as nft names it
IPTABLES_WAIT = "10"  # seconds to wait for the xtables lock (legacy backend; ignored by nft)


@dataclass(frozen=True)
class IptablesFilter:
    """The iptables `filter` table as `iptables -S` lists it."""

    policies: dict[str, str] = field(default_factory=dict)  # built-in chain -> ACCEPT | DROP
    chains: frozenset[str] = frozenset()  # user chains (-N)
    rules: tuple[str, ...] = ()  # "-A CHAIN ..." lines, in order

    @classmethod
    def parse(cls, text: str) -> IptablesFilter:
        policies: dict[str, str] = {}
        chains: set[str] = set()
        rules: list[str] = []
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "-P":
                policies[parts[1]] = parts[2]
            elif len(parts) >= 2 and parts[0] == "-N":
                chains.add(parts[1])
            elif len(parts) >= 2 and parts[0] == "-A":
                rules.append(line.strip())
        return cls(policies, frozenset(chains), tuple(rules))

    def chain_rules(self, chain: str) -> list[str]:
        return [r for r in self.rules if r.split()[1] == chain]

    def jumps_to(self, chain: str, target: str) -> bool:
        return any(r.split()[-2:] == ["-j", target] for r in self.chain_rules(chain))

    def docker_user_usable(self) -> bool:
        """DOCKER-USER exists and FORWARD reaches it (moby#48560: a pre-existing chain may not be)."""
        return DOCKER_USER in self.chains and self.jumps_to("FORWARD", DOCKER_USER)

    def ours(self, comment: str) -> list[str]:
        """Our rules in DOCKER-USER (tagged with our table name), in order."""
        return [r for r in self.chain_rules(DOCKER_USER) if _comment_of(r) == comment]


def _comment_of(rule: str) -> str | None:
    try:
        parts = shlex.split(rule)
    except ValueError:
        return None
    for i, p in enumerate(parts[:-1]):
        if p == "--comment":
            return parts[i + 1]
    return None


@dataclass(frozen=True)
class HostFirewall:
    """What the host's other firewalls look like, as far as our forwarded traffic goes."""

    iptables: IptablesFilter | None  # None: no iptables tool, or it could not list the table
    iptables_error: str = ""  # why the listing failed ("" = it did not, or no tool)
    iptables_nft: bool = False  # the iptables tool writes nf_tables (its chains show in nft)
    # other tables' forward chains with policy drop: ("family table chain", its rules as listed)
    nft_forward_drops: tuple[tuple[str, str], ...] = ()
    bridge_netfilter: bool = False  # bridged frames pass the ip/inet hooks


def docker_user_rules(comment: str, bridges: Iterable[BridgeRule]) -> list[str]:
    """Our DOCKER-USER rules, in `iptables -S` form (so a listing compares equal), top first."""
    tag = f"-m comment --comment {comment} -j ACCEPT"
    out = []
    for b in bridges:
        if b.internal:
            out.append(f"-A {DOCKER_USER} -i {b.bridge} -o {b.bridge} {tag}")
        else:
            out += [
                f"-A {DOCKER_USER} -i {b.bridge} {tag}",
                f"-A {DOCKER_USER} -o {b.bridge} -m conntrack --ctstate RELATED,ESTABLISHED {tag}",
                f"-A {DOCKER_USER} -o {b.bridge} -m conntrack --ctstate DNAT {tag}",
            ]
    return out


def restore_script(current: Sequence[str], desired: Sequence[str]) -> str | None:
    """An `iptables-restore --noflush` script replacing our rules `current` with `desired`
    (placed at the top of DOCKER-USER, in order); None when they are already as desired."""
    if list(current) == list(desired):
        return None
    lines = ["*filter"]
    lines += ["-D" + r[2:] for r in current]  # "-A CHAIN spec" -> "-D CHAIN spec"
    lines += [f"-I {DOCKER_USER} {i}" + r[2 + len(DOCKER_USER) + 1:] for i, r in enumerate(desired, 1)]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


# -- what blocks our traffic, in one line each ---------------------------------------------------
def _iptables_advice(b: BridgeRule, chain: str) -> str:
    if b.internal:
        return f"iptables -I {chain} -i {b.bridge} -o {b.bridge} -j ACCEPT"
    return (
        f"iptables -I {chain} -i {b.bridge} -j ACCEPT; "
        f"iptables -I {chain} -o {b.bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT; "
        f"iptables -I {chain} -o {b.bridge} -m conntrack --ctstate DNAT -j ACCEPT"
    )


def _nft_advice(b: BridgeRule) -> str:
    q = f'"{b.bridge}"'
    if b.internal:
        return f"iifname {q} oifname {q} accept"
    return f"iifname {q} accept; oifname {q} ct state established,related accept; oifname {q} ct status dnat accept"


def _iptables_allows(ipt: IptablesFilter, b: BridgeRule) -> bool:
    """FORWARD already has an ACCEPT for traffic from our bridge (the user followed the advice)."""
    for rule in ipt.chain_rules("FORWARD"):
        parts = rule.split()
        if parts[-2:] == ["-j", "ACCEPT"] and any(
            p == "-i" and nxt in (b.bridge, "cmpb+") for p, nxt in zip(parts, parts[1:], strict=False)
        ):
            return True
    return False


def _nft_allows(rules: str, b: BridgeRule) -> bool:
    """The chain already accepts traffic from our bridge (`iifname "BRIDGE"` or `"cmpb*"`)."""
    return any(
        line.rstrip().endswith("accept") and (f'iifname "{b.bridge}"' in line or 'iifname "cmpb*"' in line)
        for line in rules.splitlines()
    )


def blockers(network: str, b: BridgeRule, fw: HostFirewall) -> list[str]:
    """One line per forward chain of someone else's that drops this network's traffic and that
    we did not open (what is dropped, what composer did instead, what the user can do)."""
    if b.internal and not fw.bridge_netfilter:
        return []  # an internal network forwards nothing but bridged frames, which skip the hooks
    what = (
        f"traffic inside network {network} (bridge {b.bridge})" if b.internal
        else f"traffic of network {network} (bridge {b.bridge}) to and from other interfaces"
    )
    out = []
    ipt = fw.iptables
    # a chain where the user already accepts our bridge (as the advice says) is answered
    nft_drops = [name for name, rules in fw.nft_forward_drops if not _nft_allows(rules, b)]
    if ipt is None and fw.iptables_error:
        unread = f"cannot read the iptables filter table ({fw.iptables_error}), so composer added no rule to {DOCKER_USER}"
        if fw.iptables_nft:  # the nft view shows whether its FORWARD drops
            if IPTABLES_FORWARD in nft_drops:
                nft_drops.remove(IPTABLES_FORWARD)
                out.append(
                    f'{unread}; its FORWARD chain ("{IPTABLES_FORWARD}") has policy drop: {what} is dropped '
                    f"there; allow it with nft in that chain: {_nft_advice(b)}"
                )
        else:
            out.append(f"{unread}; if its FORWARD chain drops {what}, allow it: {_iptables_advice(b, 'FORWARD')}")
    elif (ipt is not None and ipt.policies.get("FORWARD") == "DROP" and not ipt.docker_user_usable()
          and not _iptables_allows(ipt, b)):
        why = (
            f"its {DOCKER_USER} chain is not reached from FORWARD" if DOCKER_USER in ipt.chains
            else f"there is no {DOCKER_USER} chain"
        )
        out.append(
            f"the iptables FORWARD chain has policy DROP and {why}: {what} is dropped there; composer "
            f"changes no chain of another program's, so allow it yourself: {_iptables_advice(b, 'FORWARD')}"
        )
    for chain in nft_drops:
        out.append(
            f'the nft chain "{chain}" has policy drop: {what} is dropped there; composer adds no rules to '
            f"another program's table, so add these to that chain: {_nft_advice(b)}"
        )
    return out


# -- the host, read and written ------------------------------------------------------------------
async def _run(argv: Sequence[str], stdin: str | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode().strip()


_backend: dict[str, bool] = {}  # "nft": the iptables tool writes nf_tables (asked once)


async def _iptables_state() -> tuple[IptablesFilter | None, str, bool]:
    try:
        if "nft" not in _backend:
            _, out, _ = await _run(["iptables", "-V"])
            _backend["nft"] = "nf_tables" in out
        nft_backend = _backend["nft"]
        rc, out, err = await _run(["iptables", "-w", IPTABLES_WAIT, "-t", "filter", "-S"])
    except FileNotFoundError:
        return None, "", False
    if rc != 0:
        return None, err.splitlines()[-1] if err else f"exit status {rc}", nft_backend
    return IptablesFilter.parse(out), "", nft_backend


async def _nft_chains() -> list[Any]:
    """`nft -j list chains`, parsed; [] without nft or when it fails."""
    try:
        rc, out, _ = await _run(["nft", "-j", "list", "chains"])
    except FileNotFoundError:
        return []
    if rc != 0:
        return []
    items = json.loads(out).get("nftables", [])
    return items if isinstance(items, list) else []


async def _nft_forward_drops(chains: list[Any],
                             skip_iptables_filter: bool) -> tuple[tuple[str, str], ...]:
    found = []
    for item in chains:
        chain = item.get("chain")
        if not chain or chain.get("hook") != "forward" or chain.get("policy") != "drop":
            continue
        family, table = chain.get("family"), str(chain.get("table", ""))
        if table.startswith(DEFAULT_TABLE) or family not in ("ip", "inet"):
            continue
        if skip_iptables_filter and f"{family} {table} {chain.get('name')}" == IPTABLES_FORWARD:
            continue  # iptables-nft's own FORWARD: judged from the iptables side (DOCKER-USER)
        name = f"{family} {table} {chain['name']}"
        rc, rules, _ = await _run(["nft", "list", "chain", family, table, str(chain["name"])])
        found.append((name, rules if rc == 0 else ""))
    return tuple(found)


async def probe(bridge_netfilter: bool) -> HostFirewall:
    # the two listings side by side: every network create and remove waits for this
    (ipt, err, nft_backend), chains = await asyncio.gather(_iptables_state(), _nft_chains())
    # iptables-nft's FORWARD is judged from the iptables side when iptables could list it
    drops = await _nft_forward_drops(chains, skip_iptables_filter=nft_backend and ipt is not None)
    return HostFirewall(ipt, err, nft_backend, drops, bridge_netfilter)


async def sync_docker_user(comment: str, bridges: Sequence[BridgeRule], fw: HostFirewall) -> str | None:
    """Make our DOCKER-USER rules match `bridges`; a warning line when that could not be done.

    No DOCKER-USER chain (no Docker here, ever): nothing to do. An empty `bridges` removes ours.
    """
    ipt = fw.iptables
    if ipt is None or DOCKER_USER not in ipt.chains:
        return None
    script = restore_script(ipt.ours(comment), docker_user_rules(comment, bridges))
    if script is None:
        return None
    try:
        rc, _, err = await _run(["iptables-restore", "-w", IPTABLES_WAIT, "--noflush"], script)
    except FileNotFoundError:
        rc, err = 127, "iptables-restore not found"
    if rc != 0:
        return (
            f"could not update composer's rules in the iptables {DOCKER_USER} chain ({err or f'exit status {rc}'}); "
            f"nothing was changed there"
        )
    return None


async def remove_docker_user_rules(comment: str) -> None:
    """Delete every DOCKER-USER rule tagged `comment` (teardown of a whole engine or a test)."""
    ipt, _, _ = await _iptables_state()
    if ipt is None or DOCKER_USER not in ipt.chains:
        return
    script = restore_script(ipt.ours(comment), [])
    if script is not None:
        rc, _, err = await _run(["iptables-restore", "-w", IPTABLES_WAIT, "--noflush"], script)
        if rc != 0:
            raise NetworkError(f"cannot remove composer's rules from {DOCKER_USER}: {err}")


FOREIGN_CHAIN_PREFIXES = ("DOCKER", "NETAVARK", "LIBVIRT", "CNI-")
FOREIGN_NFT_TABLES = ("netavark", "docker-bridges", "libvirt", "libvirt_network", "incus", "lxd")


def foreign_engines(fw: HostFirewall | None, nft_tables: Iterable[tuple[str, str]]) -> list[str]:
    """Other engines (Docker, podman, libvirt, incus/lxd) whose firewall state is on this host.

    They rely on ip_forward staying on (none of them turns it off again), so when our last
    network goes, we leave it on rather than cut their traffic.
    """
    found = []
    if fw is not None and fw.iptables is not None:
        found += sorted(c for c in fw.iptables.chains if c.startswith(FOREIGN_CHAIN_PREFIXES))
    found += sorted(f"{fam} {name}" for fam, name in nft_tables if name in FOREIGN_NFT_TABLES)
    return found
