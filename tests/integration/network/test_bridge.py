"""Bridge networks end to end: names, isolation, internal, none mode, teardown."""
from __future__ import annotations

import ipaddress
import json
import subprocess
from pathlib import Path

import pytest

from runtime.errors import Conflict, NotFound
from runtime.network import NetworkError, NetworkManager
from runtime.network.links import link_exists
from runtime.network.names import bridge_name, veth_name
from runtime.types import NetworkAttachment, NetworkSpec
from tests.integration.network.conftest import WHOAMI_SERVER, probe, run_in

CONNECT = "import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2); print('connected')"


def nft_tables() -> list[str]:
    out = subprocess.run(["nft", "-j", "list", "tables"], capture_output=True, text=True, check=True).stdout
    return [t["table"]["name"] for t in json.loads(out)["nftables"] if "table" in t]


def cmp_links() -> list[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ": cmp" in line]


async def test_members_reach_each_other_by_name_and_alias(manager, spawn_ns, netname, serve_http) -> None:
    net = await manager.create(NetworkSpec(netname("front")))
    web, client = spawn_ns(), spawn_ns()
    ips = await manager.attach("c-web", web.pid, [NetworkAttachment(net.name, aliases=("www",))], ["web", "proj-web-1"])
    await manager.attach("c-cli", client.pid, [NetworkAttachment(net.name)], ["cli"])
    await serve_http(web.pid, "hello from web")
    for name in ("web", "www", "proj-web-1"):
        got = await probe(client.pid, net.gateway, name, 80)
        assert got["ips"] == ips[net.name], got
        assert got.get("body") == "hello from web", got
    # eth0 carries the address, the Docker-style MAC and the network's MTU; default route via gateway
    _, out, _ = await run_in(web.pid, "ip", "-j", "addr", "show", "eth0", check=True)
    eth0 = json.loads(out)[0]
    assert eth0["address"] == "02:42:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(ips[net.name]).packed)
    assert {a["local"] for a in eth0["addr_info"] if a["family"] == "inet"} == {ips[net.name]}
    _, out, _ = await run_in(web.pid, "ip", "-4", "route", check=True)
    assert f"default via {net.gateway} dev eth0" in out
    _, out, _ = await run_in(web.pid, "ip", "-o", "link", "show", "lo", check=True)
    assert "UP" in out
    # the bridge keeps its own MAC (the gateway's ARP entry stays valid as ports come and go)
    bridge = subprocess.run(["ip", "-j", "link", "show", net.bridge], capture_output=True, text=True, check=True)
    assert json.loads(bridge.stdout)[0]["address"] == "02:42:" + ":".join(
        f"{b:02x}" for b in ipaddress.IPv4Address(net.gateway).packed
    )


async def test_other_network_cannot_reach_or_resolve(manager, spawn_ns, netname, serve_http) -> None:
    a = await manager.create(NetworkSpec(netname("a")))
    b = await manager.create(NetworkSpec(netname("b")))
    assert ipaddress.IPv4Network(a.subnet) != ipaddress.IPv4Network(b.subnet)
    assert not ipaddress.IPv4Network(a.subnet).overlaps(ipaddress.IPv4Network(b.subnet))
    web, outsider = spawn_ns(), spawn_ns()
    ips = await manager.attach("c-web", web.pid, [NetworkAttachment(a.name)], ["web"])
    await manager.attach("c-out", outsider.pid, [NetworkAttachment(b.name)], ["out"])
    await serve_http(web.pid, "secret")
    got = await probe(outsider.pid, b.gateway, "web")
    assert got["rcode"] == "3" and got["ips"] == "", got  # NXDOMAIN on its own network
    rc, out, err = await run_in(outsider.pid, "python3", "-c", CONNECT, ips[a.name], "80")
    assert rc != 0 and "connected" not in out, (out, err)
    # the same probe does connect inside the network (the probe itself works)
    member = spawn_ns()
    await manager.attach("c-mem", member.pid, [NetworkAttachment(a.name)], ["mem"])
    rc, out, err = await run_in(member.pid, "python3", "-c", CONNECT, ips[a.name], "80")
    assert rc == 0 and "connected" in out, (out, err)


async def test_container_on_two_networks(manager, spawn_ns, netname) -> None:
    a = await manager.create(NetworkSpec(netname("a")))
    b = await manager.create(NetworkSpec(netname("b"), internal=True))
    both = spawn_ns()
    ips = await manager.attach(
        "c-both", both.pid, [NetworkAttachment(b.name, priority=0), NetworkAttachment(a.name, priority=10)], ["both"]
    )
    assert set(ips) == {a.name, b.name}
    _, out, _ = await run_in(both.pid, "ip", "-4", "-o", "addr", check=True)
    assert f"eth0    inet {ips[a.name]}/" in out and f"eth1    inet {ips[b.name]}/" in out  # priority order
    _, out, _ = await run_in(both.pid, "ip", "-4", "route", check=True)
    assert f"default via {a.gateway} dev eth0" in out


async def test_internal_network_has_no_route_out(manager, spawn_ns, netname) -> None:
    net = await manager.create(NetworkSpec(netname("int"), internal=True))
    c = spawn_ns()
    await manager.attach("c-int", c.pid, [NetworkAttachment(net.name)], ["x"])
    _, out, _ = await run_in(c.pid, "ip", "-4", "route", check=True)
    assert "default" not in out
    rc, out, err = await run_in(c.pid, "python3", "-c", CONNECT, "203.0.113.1", "80")
    assert rc != 0 and "Network is unreachable" in err, (out, err)
    # the gateway (DNS) is still reachable
    assert (await probe(c.pid, net.gateway, "x"))["ips"]


async def test_none_mode_only_lo(manager, spawn_ns) -> None:
    c = spawn_ns()
    await manager.setup_loopback(c.pid)
    _, out, _ = await run_in(c.pid, "ip", "-o", "link", check=True)
    lines = out.splitlines()
    assert len(lines) == 1 and ": lo:" in lines[0] and "UP" in lines[0]


async def test_static_address_and_conflict(manager, spawn_ns, netname) -> None:
    net = await manager.create(NetworkSpec(netname("st"), subnet="10.199.77.0/24", gateway="10.199.77.254"))
    assert (net.subnet, net.gateway) == ("10.199.77.0/24", "10.199.77.254")
    c1, c2 = spawn_ns(), spawn_ns()
    ips = await manager.attach("c1", c1.pid, [NetworkAttachment(net.name, ipv4_address="10.199.77.50")], ["a"])
    assert ips == {net.name: "10.199.77.50"}
    with pytest.raises(Conflict, match="10.199.77.50 is already in use"):
        await manager.attach("c2", c2.pid, [NetworkAttachment(net.name, ipv4_address="10.199.77.50")], ["b"])
    # nothing half-made for c2
    assert "c2" not in manager.store.load().containers
    _, out, _ = await run_in(c2.pid, "ip", "-o", "link", check=True)
    assert "eth0" not in out


async def test_attach_to_dead_pid_rolls_back(manager, netname) -> None:
    net = await manager.create(NetworkSpec(netname("rb")))
    p = subprocess.Popen(["true"])
    p.wait()
    with pytest.raises(NetworkError, match=f"pid {p.pid}"):
        await manager.attach("dead", p.pid, [NetworkAttachment(net.name)], ["dead"])
    st = manager.store.load()
    assert st.networks[net.name].leases == {} and "dead" not in st.containers
    assert veth_name("dead", net.name) not in cmp_links()


async def test_create_is_idempotent_and_external_lookup(manager, netname) -> None:
    a = await manager.create(NetworkSpec(netname("idem")))
    assert await manager.create(NetworkSpec(netname("idem"))) == a
    assert (await manager.create(NetworkSpec(netname("idem"), external=True))).subnet == a.subnet
    with pytest.raises(NotFound, match="declared as external"):
        await manager.create(NetworkSpec(netname("nope"), external=True))
    assert [n.name for n in manager.list()] == [a.name]


async def test_remove_with_attached_container_is_conflict(manager, spawn_ns, netname) -> None:
    net = await manager.create(NetworkSpec(netname("busy")))
    c = spawn_ns()
    await manager.attach("c1", c.pid, [NetworkAttachment(net.name)], ["x"])
    with pytest.raises(Conflict, match="still has containers attached"):
        await manager.remove(net.name)
    await manager.detach("c1")
    await manager.detach("c1")  # idempotent
    await manager.remove(net.name)
    with pytest.raises(NotFound):  # as `docker network rm`; and no host link is touched
        await manager.remove(net.name)


async def test_forced_remove_detaches(manager, spawn_ns, netname) -> None:
    net = await manager.create(NetworkSpec(netname("force")))
    c = spawn_ns()
    await manager.attach("c1", c.pid, [NetworkAttachment(net.name)], ["x"])
    await manager.remove(net.name, force=True)
    st = manager.store.load()
    assert net.name not in st.networks and "c1" not in st.containers
    assert veth_name("c1", net.name) not in cmp_links() and net.bridge not in cmp_links()


async def test_restart_keeps_allocations(paths, spawn_ns, netname) -> None:
    m1 = NetworkManager(paths, upstreams=[])
    name = netname("rs")
    try:
        net = await m1.create(NetworkSpec(name))
        c1, c2 = spawn_ns(), spawn_ns()
        first = await m1.attach("c1", c1.pid, [NetworkAttachment(name)], ["one"])
        await m1.close()  # daemon stops; bridge, rules and state stay
        m2 = NetworkManager(paths, upstreams=[])
        await m2.start()
        try:
            second = await m2.attach("c2", c2.pid, [NetworkAttachment(name)], ["two"])
            assert second[name] != first[name]
            got = await probe(c2.pid, net.gateway, "one")  # records rebuilt from state
            assert got["ips"] == first[name]
        finally:
            await m2.detach("c1")
            await m2.detach("c2")
            await m2.remove(name)
            await m2.close()
    finally:
        await m1.close()


async def test_teardown_leaves_nothing(paths, spawn_ns, netname) -> None:
    forward_before = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
    m = NetworkManager(paths, upstreams=[])
    nets = [await m.create(NetworkSpec(netname(f"td{i}"), internal=i == 1)) for i in range(2)]
    ours = [bridge_name(n.name) for n in nets] + [veth_name("c1", n.name) for n in nets]
    c = spawn_ns()
    try:
        await m.attach("c1", c.pid, [NetworkAttachment(n.name) for n in nets], ["x"])
        assert Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == "1"
        assert m.table in nft_tables()
        assert all([await link_exists(name) for name in ours])
    finally:
        await m.detach("c1")
        for n in nets:
            await m.remove(n.name)
        await m.close()
    assert not set(ours) & set(cmp_links())
    assert m.table not in nft_tables()
    st = m.store.load()
    assert st.networks == {} and st.containers == {}
    # ip_forward is restored, unless another engine on this host still has networks
    others = [t for t in nft_tables() if t.startswith("composer")]
    expected = "1" if others else forward_before
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == expected, others


async def test_ip_forward_handover(tmp_path) -> None:
    from runtime.network import sysctl

    save = tmp_path / "fwd"
    before = sysctl.ip_forward()
    try:
        sysctl.set_ip_forward("0")
        sysctl.forward_acquire(save)  # engine A
        sysctl.forward_acquire(save)  # engine B: the original stays recorded
        assert sysctl.ip_forward() == "1" and save.read_text() == "0"
        sysctl.forward_release(others_active=True, save=save)  # A goes, B still has networks
        assert sysctl.ip_forward() == "1" and save.exists()
        sysctl.forward_release(others_active=False, save=save)  # B goes
        assert sysctl.ip_forward() == "0" and not save.exists()
    finally:
        sysctl.set_ip_forward(before)

WHOAMI = (
    "import socket, sys; c = socket.create_connection((sys.argv[1], 8080), timeout=3); "
    "print(c.recv(100).decode())"
)


async def test_outbound_traffic_is_masqueraded(manager, spawn_ns, netname) -> None:
    """An 'outside' host (own netns behind a host veth) sees the host's address, not the container's."""
    import asyncio

    from pyroute2 import AsyncIPRoute

    outside = spawn_ns()
    link = f"cmpo{netname('x')[-6:]}"[:15]
    async with AsyncIPRoute() as ipr:
        await ipr.link("add", ifname=link, kind="veth", state="up", peer={"ifname": "eth0", "net_ns_pid": outside.pid})
        idx = (await ipr.link_lookup(ifname=link))[0]
        await ipr.addr("add", index=idx, address="10.199.200.1", prefixlen=30)
    server = None
    try:
        await run_in(outside.pid, "ip", "addr", "add", "10.199.200.2/30", "dev", "eth0", check=True)
        await run_in(outside.pid, "ip", "link", "set", "eth0", "up", check=True)
        server = await asyncio.create_subprocess_exec("nsenter", "-t", str(outside.pid), "-n", "python3", "-c", WHOAMI_SERVER)
        net = await manager.create(NetworkSpec(netname("out")))
        internal = await manager.create(NetworkSpec(netname("in"), internal=True))
        c, i = spawn_ns(), spawn_ns()
        await manager.attach("c1", c.pid, [NetworkAttachment(net.name)], ["c1"])
        await manager.attach("c2", i.pid, [NetworkAttachment(internal.name)], ["c2"])
        for _ in range(50):
            rc, out, err = await run_in(c.pid, "python3", "-c", WHOAMI, "10.199.200.2")
            if rc == 0:
                break
            await asyncio.sleep(0.1)
        assert rc == 0 and out.strip() == "10.199.200.1", (out, err)  # masqueraded
        rc, out, err = await run_in(i.pid, "python3", "-c", WHOAMI, "10.199.200.2")
        assert rc != 0, out  # internal: no way out
    finally:
        if server is not None:
            server.kill()
            await server.wait()
        async with AsyncIPRoute() as ipr:
            for idx in await ipr.link_lookup(ifname=link):
                await ipr.link("del", index=idx)


async def test_a_create_whose_bridge_fails_leaves_no_record_link_or_rule(
        manager, netname, monkeypatch: pytest.MonkeyPatch) -> None:
    """The network's rules are written while its bridge is made: when the bridge side fails
    (here its DNS server), the error is the one raised and the rules go with the rest."""
    async def refuse(name: str, gateway: str) -> None:
        raise NetworkError(f"cannot serve dns on {gateway}:53/udp: Address already in use")

    monkeypatch.setattr(manager.dns, "listen", refuse)
    name = netname("broken")
    with pytest.raises(NetworkError, match="Address already in use"):
        await manager.create(NetworkSpec(name))
    bridge = bridge_name(name)
    assert name not in manager.store.load().networks
    assert not await link_exists(bridge)
    out = subprocess.run(["nft", "list", "table", "ip", manager.table], capture_output=True, text=True)
    assert bridge not in out.stdout
    monkeypatch.undo()
    net = await manager.create(NetworkSpec(name))  # and it can be made afterwards
    assert await link_exists(net.bridge)
    await manager.remove(name)
