"""Compose's endpoint and IPAM keys through the engine on the real kernel: interface_name,
mac_address, link_local_ips, gw_priority; ip_range and aux_addresses."""
from __future__ import annotations

import ipaddress

import pytest

from runtime.engine import Engine
from runtime.errors import InvalidArgument
from runtime.network.links import host_net_info
from runtime.types import ContainerSpec, NetworkAttachment, NetworkSpec


async def free_subnets(n: int) -> list[ipaddress.IPv4Network]:
    """/24s of 10.213.0.0/16 that nothing on the host routes or uses."""
    host = await host_net_info()
    busy = host.routes + host.addresses
    out = [s for s in ipaddress.IPv4Network("10.213.0.0/16").subnets(new_prefix=24)
           if not any(s.overlaps(b) for b in busy if b.prefixlen > 0)]
    return out[:n]


async def output(engine: Engine, name: str, script: str, *attach: NetworkAttachment) -> str:
    await engine.create_container(ContainerSpec(name=name, image="busybox", command=("sh", "-c", script),
                                                networks=attach))
    await engine.start_container(name)
    code = await engine.wait_container(name)
    out = "".join([line.data async for line in engine.logs(name)])
    assert code == 0, out
    return out


async def test_interface_name_mac_link_local_and_gateway_priority(engine: Engine) -> None:
    a, b = await free_subnets(2)
    await engine.create_network(NetworkSpec(name="k_front", subnet=str(a)))
    await engine.create_network(NetworkSpec(name="k_back", subnet=str(b)))
    script = ("ip -o link show | awk '{print $2, $(NF-2)}'; ip -o -4 addr show | awk '{print $2, $4}'; "
              "ip route show default")
    out = await output(
        engine, "k1", script,
        NetworkAttachment("k_front", priority=10, interface_name="front0", mac_address="02:aa:bb:cc:dd:01",
                          link_local_ips=("169.254.7.7",)),
        NetworkAttachment("k_back", priority=1, gw_priority=5),
    )
    lines = out.splitlines()
    links = {line.split("@")[0].rstrip(":"): line.split()[-1] for line in lines[:3]}
    assert links["front0"] == "02:aa:bb:cc:dd:01"  # the name and MAC asked for
    assert links["eth0"] == "02:42:" + ":".join(f"{x:02x}" for x in (b.network_address + 2).packed)
    assert "front0 169.254.7.7/16" in lines
    assert any(line.startswith("front0 " + str(a)[:-4]) for line in lines), out
    gateway_b = str(b.network_address + 1)
    assert f"default via {gateway_b} dev eth0" in out  # gw_priority 5 beats priority 10's network
    # without gw_priority the highest-priority network has the default route
    out = await output(engine, "k2", "ip route show default",
                       NetworkAttachment("k_front", priority=10), NetworkAttachment("k_back", priority=1))
    assert f"default via {a.network_address + 1} dev eth0" in out
    with pytest.raises(InvalidArgument, match="k3: invalid interface_name 'lo'"):
        await output(engine, "k3", "true", NetworkAttachment("k_front", interface_name="lo"))


async def test_ip_range_and_aux_addresses(engine: Engine) -> None:
    a, other = await free_subnets(2)
    ip_range = ipaddress.IPv4Network(f"{a.network_address + 16}/28")
    reserved = str(ip_range.network_address)
    await engine.create_network(NetworkSpec(name="k_ranged", subnet=str(a), ip_range=str(ip_range),
                                            aux_addresses={"printer": reserved}))
    out = await output(engine, "r1", "ip -o -4 addr show eth0 | awk '{print $4}'", NetworkAttachment("k_ranged"))
    ip = ipaddress.IPv4Address(out.strip().split("/")[0])
    assert ip in ip_range and str(ip) != reserved  # from the range, never the reserved one
    with pytest.raises(InvalidArgument, match="not inside subnet"):
        await engine.create_network(NetworkSpec(name="k_bad", subnet=str(other), ip_range=str(ip_range)))
