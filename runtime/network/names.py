"""Deterministic host names for what the network layer creates.

Every link starts with `cmp` (see DESIGN.md: one check lists all leftovers) and fits IFNAMSIZ
(15 characters): `cmpb` + 10 hex of sha1(network) for bridges, `cmpv` + 10 hex of
sha1(container/network) for the host end of a veth.
"""
from __future__ import annotations

import hashlib
import ipaddress

BRIDGE_PREFIX = "cmpb"
VETH_PREFIX = "cmpv"


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def bridge_name(network: str) -> str:
    """`cmpb` + 10 hex chars of sha1(network name): 14 characters, stable across restarts."""
    return BRIDGE_PREFIX + _digest(network)


def veth_name(container_id: str, network: str) -> str:
    """Host end of the veth joining `container_id` to `network`."""
    return VETH_PREFIX + _digest(f"{container_id}/{network}")


def container_ifname(index: int) -> str:
    """Name of the n-th interface inside the container: eth0, eth1, ..."""
    return f"eth{index}"


def mac_from_ip(ip: str) -> str:
    """Docker's scheme: 02:42 then the four bytes of the IPv4 address (locally administered)."""
    packed = ipaddress.IPv4Address(ip).packed
    return "02:42:" + ":".join(f"{b:02x}" for b in packed)
