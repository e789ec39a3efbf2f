"""Published ports: the host reaches a container's httpd on 127.0.0.1 and its own addresses."""
from __future__ import annotations

import asyncio
import socket
import urllib.request

import pytest

from runtime.errors import Conflict
from runtime.network import NetworkManager
from runtime.network.links import host_net_info
from runtime.types import NetworkAttachment, NetworkSpec, PortBinding
from tests.ports import free_block


async def fetch(host: str, port: int) -> str:
    def get() -> str:
        with urllib.request.urlopen(f"http://{host}:{port}/index.html", timeout=3) as r:
            return r.read().decode().strip()

    return await asyncio.get_running_loop().run_in_executor(None, get)


async def host_address() -> str:
    info = await host_net_info()
    return next(str(a.network_address + 0) for a in info.addresses if not a.network_address.is_loopback)


async def own_ip() -> str:
    import subprocess

    out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        addr = line.split()[3].split("/")[0]
        if not addr.startswith("127.") and " cmpb" not in line:
            return addr
    raise AssertionError("no host address")


@pytest.mark.parametrize("mode", ["nat", "proxy"])
async def test_published_port_reaches_httpd(paths, spawn_ns, netname, serve_http, mode) -> None:
    m = NetworkManager(paths, upstreams=[], port_mode=mode)
    name = netname(f"pub{mode}")
    try:
        await m.create(NetworkSpec(name))
        c = spawn_ns()
        ips = await m.attach("c1", c.pid, [NetworkAttachment(name)], ["web"])
        await serve_http(c.pid, f"published {mode}")
        bound = await m.publish(
            "c1", ips[name], [PortBinding(80, host_ip="127.0.0.1"), PortBinding(80, host_port=0)]
        )
        assert all(b.host_port > 0 for b in bound)
        assert await fetch("127.0.0.1", bound[0].host_port) == f"published {mode}"
        assert await fetch("127.0.0.1", bound[1].host_port) == f"published {mode}"
        assert await fetch(await own_ip(), bound[1].host_port) == f"published {mode}"
        # a taken port is a conflict naming it, and nothing new is recorded
        with pytest.raises(Conflict, match=f"port 127.0.0.1:{bound[0].host_port}/tcp"):
            await m.publish("c1", ips[name], [PortBinding(81), PortBinding(80, host_ip="127.0.0.1", host_port=bound[0].host_port)])
        assert m.published("c1") == bound
        await m.unpublish("c1")
        with pytest.raises(OSError):
            await fetch("127.0.0.1", bound[0].host_port)
        # the port is free again (SO_REUSEADDR as servers do: proxied connections leave TIME_WAITs)
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", bound[0].host_port))
        s.close()
    finally:
        await m.detach("c1")
        await m.remove(name)
        await m.close()


async def test_fixed_host_port_and_detach_unpublishes(manager, spawn_ns, netname, serve_http) -> None:
    net = await manager.create(NetworkSpec(netname("fix")))
    c = spawn_ns()
    ips = await manager.attach("c1", c.pid, [NetworkAttachment(net.name)], ["web"])
    await serve_http(c.pid, "fixed")
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    bound = await manager.publish("c1", ips[net.name], [PortBinding(80, host_ip="127.0.0.1", host_port=port)])
    assert bound[0].host_port == port
    assert await fetch("127.0.0.1", port) == "fixed"
    await manager.detach("c1")
    assert "dport" not in __import__("subprocess").run(
        ["nft", "list", "table", "ip", manager.table], capture_output=True, text=True
    ).stdout


UDP_ECHO = r"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 5353))
while True:
    data, addr = s.recvfrom(2048); s.sendto(b"echo:" + data, addr)
"""


async def test_udp_port_and_restart_keeps_publication(paths, spawn_ns, netname) -> None:
    name = netname("udp")
    m1 = NetworkManager(paths, upstreams=[])
    m2 = NetworkManager(paths, upstreams=[])
    c = spawn_ns()
    echo = await asyncio.create_subprocess_exec("nsenter", "-t", str(c.pid), "-n", "python3", "-c", UDP_ECHO)
    try:
        await m1.create(NetworkSpec(name))
        ips = await m1.attach("c1", c.pid, [NetworkAttachment(name)], ["echo"])
        bound = await m1.publish("c1", ips[name], [PortBinding(5353, protocol="udp", host_ip="127.0.0.1")])
        port = bound[0].host_port

        def ask() -> bytes:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(2)
            try:
                for _ in range(10):  # the echo server may still be starting
                    s.sendto(b"ping", ("127.0.0.1", port))
                    try:
                        return s.recv(100)
                    except TimeoutError:
                        continue
                raise TimeoutError("no udp answer")
            finally:
                s.close()

        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(None, ask) == b"echo:ping"
        await m1.close()  # daemon stops: the reservation socket closes, the rule stays
        await m2.start()  # daemon starts again: the port is reserved again
        taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with pytest.raises(OSError):
            taken.bind(("127.0.0.1", port))
        taken.close()
        assert await loop.run_in_executor(None, ask) == b"echo:ping"
    finally:
        echo.kill()
        await echo.wait()
        await m2.detach("c1")
        await m2.remove(name)
        await m2.close()
        await m1.close()


@pytest.mark.parametrize("mode", ["nat", "proxy"])
async def test_host_port_range_skips_a_taken_port(paths, spawn_ns, netname, serve_http, mode) -> None:
    """"LO-HI:80" with LO taken by a listener here: the container is published on LO+1."""
    m = NetworkManager(paths, upstreams=[], port_mode=mode)
    name = netname(f"rng{mode}")
    lo = free_block(4)
    busy = socket.socket()
    busy.bind(("0.0.0.0", lo))
    busy.listen(1)
    try:
        await m.create(NetworkSpec(name))
        c = spawn_ns()
        ips = await m.attach("c1", c.pid, [NetworkAttachment(name)], ["web"])
        await serve_http(c.pid, f"range {mode}")
        bound = await m.publish("c1", ips[name], [PortBinding(80, host_port=lo, host_port_end=lo + 3)])
        assert bound == [PortBinding(80, host_port=lo + 1)]  # the port actually bound, no range
        assert m.published("c1") == bound
        assert await fetch("127.0.0.1", lo + 1) == f"range {mode}"
        assert await fetch(await own_ip(), lo + 1) == f"range {mode}"
        if mode == "nat":  # the DNAT rule is for the chosen port only
            rules = __import__("subprocess").run(
                ["nft", "list", "table", "ip", m.table], capture_output=True, text=True).stdout
            assert f"dport {lo + 1} " in rules and f"dport {lo} " not in rules
        # the whole range taken: a conflict naming it, nothing new recorded
        with pytest.raises(Conflict, match=f"ports 0.0.0.0:{lo}-{lo + 1}/tcp are all in use"):
            await m.publish("c1", ips[name], [PortBinding(81, host_port=lo, host_port_end=lo + 1)])
        assert m.published("c1") == bound
        await m.unpublish("c1")
        with pytest.raises(OSError):
            await fetch("127.0.0.1", lo + 1)
    finally:
        busy.close()
        await m.detach("c1")
        await m.remove(name)
        await m.close()
