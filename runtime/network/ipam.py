"""Address management: pick a subnet for a network and an address for an endpoint.

Pure functions over `ipaddress` objects; the caller supplies what is in use (other networks,
the host's routes and addresses) and persists the result (runtime.network.state).
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network

from runtime.errors import Conflict, InvalidArgument

# Carved into /24s in this order; 10.200/16 first, then ranges Docker does not use by default.
DEFAULT_POOLS: tuple[str, ...] = ("10.200.0.0/16", "172.30.0.0/16", "10.201.0.0/16", "192.168.240.0/20")
DEFAULT_PREFIXLEN = 24


def parse_subnet(subnet: str, network: str) -> IPv4Network:
    try:
        net = ipaddress.ip_network(subnet, strict=False)
    except ValueError as exc:
        raise InvalidArgument(
            f"network {network}: invalid subnet {subnet!r}: use CIDR notation like 10.5.0.0/24",
            subject=network,
        ) from exc
    if not isinstance(net, IPv4Network):
        raise InvalidArgument(
            f"network {network}: subnet {subnet} is ipv6; only ipv4 subnets are supported",
            subject=network,
        )
    if net.prefixlen > 30:
        raise InvalidArgument(
            f"network {network}: subnet {subnet} is too small; use /30 or larger", subject=network
        )
    return net


def avoid_list(routes: Iterable[IPv4Network]) -> list[IPv4Network]:
    """Host routes/addresses a new subnet must not overlap; the default route is not one."""
    return [r for r in routes if r.prefixlen > 0]


def choose_subnet(
    taken: Iterable[IPv4Network],
    host: Iterable[IPv4Network],
    pools: Sequence[str] = DEFAULT_POOLS,
    prefixlen: int = DEFAULT_PREFIXLEN,
) -> IPv4Network:
    """First /`prefixlen` of the pools overlapping neither `taken` nor the host's routes."""
    blocked = list(taken) + avoid_list(host)
    for pool in pools:
        pool_net = ipaddress.IPv4Network(pool)
        if any(pool_net.subnet_of(b) for b in blocked):  # whole pool covered
            continue
        for candidate in pool_net.subnets(new_prefix=prefixlen):
            if not any(candidate.overlaps(b) for b in blocked):
                return candidate
    raise Conflict(
        "no free subnet left in the address pools "
        f"({', '.join(pools)}): remove unused networks or give the network a `subnet`"
    )


def default_gateway(subnet: IPv4Network) -> IPv4Address:
    return subnet.network_address + 1


def check_gateway(subnet: IPv4Network, gateway: str, network: str) -> IPv4Address:
    try:
        gw = IPv4Address(gateway)
    except ValueError as exc:
        raise InvalidArgument(f"network {network}: invalid gateway {gateway!r}", subject=network) from exc
    if gw not in subnet or gw in (subnet.network_address, subnet.broadcast_address):
        raise InvalidArgument(
            f"network {network}: gateway {gateway} is not a host address of subnet {subnet}",
            subject=network,
        )
    return gw


def check_ip_range(subnet: IPv4Network, ip_range: str, network: str) -> IPv4Network:
    """`ipam.config[].ip_range`: a CIDR inside the subnet that dynamic addresses come from."""
    try:
        rng = ipaddress.ip_network(ip_range, strict=False)
    except ValueError as exc:
        raise InvalidArgument(f"network {network}: invalid ip_range {ip_range!r}: use CIDR notation",
                              subject=network) from exc
    if not isinstance(rng, IPv4Network) or not rng.subnet_of(subnet):
        raise InvalidArgument(f"network {network}: ip_range {ip_range} is not inside subnet {subnet}",
                              subject=network)
    return rng


def check_aux_addresses(subnet: IPv4Network, gateway: IPv4Address, aux: dict[str, str],
                        network: str) -> list[IPv4Address]:
    """`ipam.config[].aux_addresses`: addresses the network must never hand out."""
    out = []
    for host, text in aux.items():
        try:
            ip = IPv4Address(text)
        except ValueError as exc:
            raise InvalidArgument(f"network {network}: aux address {host}={text!r} is not an IPv4 "
                                  "address", subject=network) from exc
        if ip not in subnet or ip == gateway:
            raise InvalidArgument(f"network {network}: aux address {host}={text} is not a free host "
                                  f"address of subnet {subnet}", subject=network)
        out.append(ip)
    return out


def allocate_ip(
    subnet: IPv4Network,
    gateway: IPv4Address,
    leased: Iterable[str],
    requested: str | None = None,
    network: str = "",
    ip_range: IPv4Network | None = None,
    reserved: Iterable[IPv4Address] = (),
) -> IPv4Address:
    """A free host address of `subnet` (or `requested`, checked); never the gateway nor a
    `reserved` (aux) address; a dynamic one from `ip_range` when given (as Docker)."""
    used = {IPv4Address(ip) for ip in leased} | set(reserved)
    if requested:
        try:
            want = IPv4Address(requested)
        except ValueError as exc:
            raise InvalidArgument(f"network {network}: invalid ipv4_address {requested!r}", subject=network) from exc
        if want not in subnet or want in (subnet.network_address, subnet.broadcast_address):
            raise InvalidArgument(
                f"network {network}: ipv4_address {requested} is outside subnet {subnet}; "
                "pick an address inside it",
                subject=network,
            )
        if want == gateway:
            raise Conflict(f"network {network}: ipv4_address {requested} is the gateway's address", subject=network)
        if want in used:
            raise Conflict(
                f"network {network}: ipv4_address {requested} is already in use; pick another",
                subject=network,
            )
        return want
    pool = ip_range or subnet
    for host in pool:
        if host in subnet and host not in (subnet.network_address, subnet.broadcast_address) \
                and host != gateway and host not in used:
            return host
    where = f"ip_range {pool}" if ip_range else f"subnet {subnet}"
    raise Conflict(f"network {network}: no free address left in {where}", subject=network)
