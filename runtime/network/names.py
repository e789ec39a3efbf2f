"""Deterministic host names for what the network layer creates.

Every link starts with `cmp` (see DESIGN.md: one check lists all leftovers) and fits IFNAMSIZ
(15 characters): `cmpb` + 10 hex of sha1(network) for bridges (another hash when a link of
that name exists: see bridge_name), `cmpv` + 10 hex of
sha1(container/network) for the host end of a veth.
"""
from __future__ import annotations

import hashlib
import ipaddress

from runtime.errors import InvalidArgument

BRIDGE_PREFIX = "cmpb"
VETH_PREFIX = "cmpv"


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def bridge_name(network: str, attempt: int = 0) -> str:
    """`cmpb` + 10 hex chars of sha1(network name): 14 characters. Another engine (another
    state root) may have a network of the same name, so the manager takes the first of
    attempts 0, 1, ... whose name no host link has (sha1 of `name#attempt`) and records it."""
    return BRIDGE_PREFIX + _digest(network if attempt == 0 else f"{network}#{attempt}")


def veth_name(container_id: str, network: str) -> str:
    """Host end of the veth joining `container_id` to `network`."""
    return VETH_PREFIX + _digest(f"{container_id}/{network}")


def container_ifname(index: int) -> str:
    """Name of the n-th interface inside the container: eth0, eth1, ..."""
    return f"eth{index}"


def container_ifnames(wanted: list[str | None], container: str = "") -> list[str]:
    """Interface names inside the container, in attachment order: `interface_name` when
    given (checked: a Linux name, not lo, unique), else the next ethN not taken."""
    taken = set()
    for name in wanted:
        if name is None:
            continue
        if not name or len(name) > 15 or name in (".", "..", "lo") or any(c in name for c in "/: \t\n"):
            raise InvalidArgument(f"container {container}: invalid interface_name {name!r} "
                                  "(1 to 15 characters, no '/', ':' or spaces, not lo)", subject=container)
        if name in taken:
            raise InvalidArgument(f"container {container}: interface_name {name} is used twice",
                                  subject=container)
        taken.add(name)
    out, n = [], 0
    for name in wanted:
        if name is None:
            while container_ifname(n) in taken:
                n += 1
            name = container_ifname(n)
            n += 1
        out.append(name)
    return out


def mac_from_ip(ip: str) -> str:
    """Docker's scheme: 02:42 then the four bytes of the IPv4 address (locally administered)."""
    packed = ipaddress.IPv4Address(ip).packed
    return "02:42:" + ":".join(f"{b:02x}" for b in packed)
