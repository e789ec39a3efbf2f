"""nftables rules for NAT, isolation and published ports, in one table the engine owns.

The whole table is rendered from the state and replaced in one `nft -f -` transaction, so
the kernel never holds a half-updated rule set and a re-render repairs drift. With nothing
left to render, the table is deleted. Nothing outside the table is touched.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from runtime.network.errors import NetworkError

log = logging.getLogger(__name__)

DEFAULT_TABLE = "composer"
DEFAULT_STATE_ROOT = Path("/var/lib/composer")


def table_name(state_root: Path) -> str:
    """`composer` for the default state root; `composer_<hash>` for others (tests, second daemons)."""
    if state_root.resolve() == DEFAULT_STATE_ROOT:
        return DEFAULT_TABLE
    return f"{DEFAULT_TABLE}_{hashlib.sha1(str(state_root.resolve()).encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class BridgeRule:
    bridge: str
    subnet: str
    internal: bool


@dataclass(frozen=True)
class DnatRule:
    protocol: str  # tcp | udp | sctp
    host_ip: str  # "" = every local address
    host_port: int
    container_ip: str
    container_port: int


def _match_daddr(rule: DnatRule) -> str:
    return f"ip daddr {rule.host_ip}" if rule.host_ip else "fib daddr type local"


def render(table: str, bridges: Iterable[BridgeRule], dnats: Iterable[DnatRule]) -> str:
    """The complete `table ip <table>` definition (without the delete that precedes it)."""
    bridges = list(bridges)
    dnats = list(dnats)
    post, fwd, pre, guard = [], [], [], []
    for b in bridges:
        q = f'"{b.bridge}"'
        # route_localnet (set on our bridges for published ports on 127.0.0.1) also lets a
        # container send to 127.0.0.0/8 on the host through the gateway's MAC (CVE-2020-8558):
        # nothing arriving on our bridge is addressed there before NAT, so drop it all, before
        # conntrack sees it (replies of published-port connections arrive addressed to the
        # gateway and are un-NATed later)
        guard.append(f"iifname {q} ip daddr 127.0.0.0/8 drop")
        # published ports reached via 127.0.0.1 arrive with a loopback source: hide it
        post.append(f"oifname {q} ip saddr 127.0.0.0/8 masquerade")
        fwd.append(f"iifname {q} oifname {q} accept")
        if b.internal:
            fwd.append(f"iifname {q} drop")
            fwd.append(f"oifname {q} drop")
        else:
            post.append(f"ip saddr {b.subnet} oifname != {q} masquerade")
            # a member reaching a port its own network publishes (hairpin): the reply would go
            # straight back over the bridge, un-NATed unless br_netfilter is active; sent from
            # the gateway's address, it comes back through the host, which un-NATs it
            post.append(f"oifname {q} ip saddr {b.subnet} ct status dnat masquerade")
    for b in bridges:
        # networks are isolated from each other (scoped to our bridges: another engine's
        # table must never match traffic on its bridges, and a drop in any table is final)
        fwd.append(f'iifname "{b.bridge}" oifname != "{b.bridge}" oifname "cmpb*" drop')
    for b in bridges:
        if not b.internal:
            q = f'"{b.bridge}"'
            fwd.append(f"iifname {q} accept")
            fwd.append(f"oifname {q} ct state established,related accept")
            fwd.append(f"oifname {q} ct status dnat accept")
            fwd.append(f"oifname {q} drop")
    for d in dnats:
        pre.append(
            f"{_match_daddr(d)} {d.protocol} dport {d.host_port} "
            f"dnat to {d.container_ip}:{d.container_port}"
        )
    body = [
        f"table ip {table} {{",
        "  chain loopback_guard {",
        "    type filter hook prerouting priority raw; policy accept;",
        *(f"    {r}" for r in guard),
        "  }",
        "  chain prerouting {",
        "    type nat hook prerouting priority dstnat; policy accept;",
        *(f"    {r}" for r in pre),
        "  }",
        "  chain output {",
        "    type nat hook output priority -100; policy accept;",
        *(f"    {r}" for r in pre),
        "  }",
        "  chain postrouting {",
        "    type nat hook postrouting priority srcnat; policy accept;",
        *(f"    {r}" for r in post),
        "  }",
        "  chain forward {",
        "    type filter hook forward priority filter; policy accept;",
        *(f"    {r}" for r in fwd),
        "  }",
        "}",
    ]
    return "\n".join(body) + "\n"


async def _nft(args: list[str], stdin: str | None = None) -> str:
    try:
        proc = await asyncio.create_subprocess_exec(
            "nft",
            *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError as exc:
        raise NetworkError("nft not found: install nftables (apt-get install nftables)") from exc
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    if proc.returncode != 0:
        raise NetworkError(f"nft {' '.join(args)} failed: {err.decode().strip()}")
    return out.decode()


async def apply(table: str, bridges: Iterable[BridgeRule], dnats: Iterable[DnatRule]) -> None:
    """Replace `table` with the rendered rules atomically; delete it when there is nothing."""
    bridges = list(bridges)
    dnats = list(dnats)
    script = f"table ip {table}\ndelete table ip {table}\n"
    if bridges or dnats:
        script += render(table, bridges, dnats)
    await _nft(["-f", "-"], script)


async def delete_table(table: str) -> None:
    await _nft(["-f", "-"], f"table ip {table}\ndelete table ip {table}\n")


async def list_tables() -> list[tuple[str, str]]:
    """(family, name) of every nft table on the host."""
    data = json.loads(await _nft(["-j", "list", "tables"]))
    return [(t["table"]["family"], t["table"]["name"]) for t in data.get("nftables", []) if "table" in t]

