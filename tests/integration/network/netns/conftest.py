"""Tests that reproduce another program's firewall state (dockerd, netavark, an nftables-only
host firewall) run in a private network namespace of their own, which plays the host.

iptables, nftables, ip_forward, net.bridge.bridge-nf-call-* and links all belong to a network
namespace, so inside one the tests can set the FORWARD policy to DROP, start a real dockerd or
write netavark's chains under their real names without touching the machine's own firewall,
a real Docker on it, or other test runs beside them; deleting the namespace undoes all of it.

`tests/integration/network/test_coexistence.py` runs each `scenario_*.py` here in
`unshare --net --mount` with COMPOSER_TEST_NETNS=1, naming the file (a plain pytest run does
not collect them: their names do not match `test_*.py`).

The private host has an uplink: a cmp-named veth to an "outside" namespace that owns
198.18.201.1 ("the internet", on its lo) and routes our pools back, reached through the host's
default route via the private subnet 10.199.201.0/30. Egress NAT, published ports and closed
internal networks are checked against it without any packet leaving the machine.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from runtime.api import NetworkInfo
from runtime.errors import NotFound
from runtime.network import NetworkManager
from runtime.types import NetworkAttachment, NetworkSpec, PortBinding
from tests.integration.network.conftest import WHOAMI_SERVER, Ns, probe, run_in
from tests.ports import free_block

UPLINK = "cmpup0"
HOST_IP = "10.199.201.1"
OUTSIDE_IP = "10.199.201.2"
INTERNET_IP = "198.18.201.1"
WHOAMI_PORT = 8080

# connect; with an HTTP GET unless asking the whoami server (it answers at once and closes)
ASK = (
    "import socket, sys; c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])); "
    "sys.argv[4] == 'http' and c.sendall(b'GET /index.html HTTP/1.0\\r\\n\\r\\n'); data = b''\n"
    "while chunk := c.recv(4096): data += chunk\n"
    "print(data.split(b'\\r\\n\\r\\n', 1)[-1].decode().strip())"
)


def sh(*argv: str, stdin: str | None = None) -> str:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


@pytest.fixture(scope="session", autouse=True)
def _private_netns() -> None:
    outer = os.environ.get("COMPOSER_TEST_OUTER_NETNS", "") if os.environ.get("COMPOSER_TEST_NETNS") == "1" else ""
    if not outer or os.stat("/proc/self/ns/net").st_ino == int(outer):
        pytest.exit("tests/integration/network/netns must run in a private network namespace "
                    "(test_coexistence.py starts them so)", returncode=4)
    sh("ip", "link", "set", "lo", "up")


async def ask(pid: int, ip: str, port: int, timeout: float = 3.0) -> tuple[int, str]:
    """From inside netns `pid`: connect to ip:port, send an HTTP GET; (rc, reply body or error)."""
    kind = "raw" if port == WHOAMI_PORT else "http"
    rc, out, err = await run_in(pid, "python3", "-c", ASK, ip, str(port), str(timeout), kind, timeout=timeout + 5)
    if rc == 0:
        return rc, out.strip()
    lines = err.strip().splitlines()
    return rc, lines[-1] if lines else ""


@dataclass
class Uplink:
    outside: Ns
    host_ip: str = HOST_IP
    internet_ip: str = INTERNET_IP

    async def ask_from_outside(self, ip: str, port: int, timeout: float = 3.0) -> tuple[int, str]:
        return await ask(self.outside.pid, ip, port, timeout)


@pytest.fixture
async def uplink(spawn_ns: Callable[[], Ns]) -> AsyncIterator[Uplink]:
    outside = spawn_ns()
    sh("ip", "link", "add", UPLINK, "type", "veth", "peer", "name", "eth0", "netns", str(outside.pid))
    server = None
    try:
        sh("ip", "addr", "add", f"{HOST_IP}/30", "dev", UPLINK)
        sh("ip", "link", "set", UPLINK, "up")
        for cmd in (
            ["ip", "addr", "add", f"{OUTSIDE_IP}/30", "dev", "eth0"],
            ["ip", "link", "set", "eth0", "up"],
            ["ip", "link", "set", "lo", "up"],
            ["ip", "addr", "add", f"{INTERNET_IP}/32", "dev", "lo"],
            # like a neighbour on the LAN that knows our container subnets: it can try them directly
            ["ip", "route", "add", "10.0.0.0/8", "via", HOST_IP],
            ["ip", "route", "add", "172.16.0.0/12", "via", HOST_IP],
            ["ip", "route", "add", "192.168.0.0/16", "via", HOST_IP],
        ):
            await run_in(outside.pid, *cmd, check=True)
        # the private host's default route: its own, in its own namespace
        sh("ip", "route", "add", "default", "via", OUTSIDE_IP, "dev", UPLINK)
        server = await asyncio.create_subprocess_exec(
            "nsenter", "-t", str(outside.pid), "-n", "python3", "-c", WHOAMI_SERVER)
        for _ in range(100):
            _, out, _ = await run_in(outside.pid, "ss", "-ltnH")
            if f":{WHOAMI_PORT} " in out:
                break
            await asyncio.sleep(0.05)
        yield Uplink(outside)
    finally:
        if server is not None:
            server.kill()
            await server.wait()
        subprocess.run(["ip", "link", "del", UPLINK], capture_output=True)


@dataclass
class Scene:
    """Two networks of one stack: `front` (web publishes port 80, cli) and the internal `back`
    (db, worker), with busybox httpd in web and db."""

    manager: NetworkManager
    spawn_ns: Callable[[], Ns]
    serve_http: Callable[[int, str], Awaitable[None]]
    uplink: Uplink
    prefix: str
    front: NetworkInfo | None = None
    back: NetworkInfo | None = None
    ips: dict[str, str] = field(default_factory=dict)  # container -> address
    pids: dict[str, int] = field(default_factory=dict)  # container -> pid of its netns
    port: int = 0  # web's published port

    @property
    def warnings(self) -> list[str]:
        return [w for n in (self.front, self.back) if n is not None for w in n.warnings]

    def cid(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    async def create(self) -> Scene:
        self.front = await self.manager.create(NetworkSpec(f"{self.prefix}_front"))
        self.back = await self.manager.create(NetworkSpec(f"{self.prefix}_back", internal=True))
        return self

    async def start(self) -> Scene:
        assert self.front is not None and self.back is not None
        for name, net in (("web", self.front), ("cli", self.front), ("db", self.back), ("worker", self.back)):
            ns = self.spawn_ns()
            self.pids[name] = ns.pid
            got = await self.manager.attach(self.cid(name), ns.pid, [NetworkAttachment(net.name)], [name])
            self.ips[name] = got[net.name]
        await self.serve_http(self.pids["web"], f"web of {self.prefix}")
        await self.serve_http(self.pids["db"], f"db of {self.prefix}")
        bound = await self.manager.publish(self.cid("web"), self.ips["web"], [PortBinding(80, host_port=free_block(1))])
        self.port = bound[0].host_port
        return self

    async def verify(self) -> None:
        """The four properties a composer network must have on any host, from real traffic:
        members reach each other by name (bridged frames: FORWARD sees them with br_netfilter),
        egress is masqueraded, a published port answers from the outside (DNAT, then FORWARD
        into the bridge), from the host and from a member of the same network (hairpin), and
        an internal network stays closed both ways while its members still reach each other.
        """
        assert self.front is not None and self.back is not None
        p, up = self.pids, self.uplink
        got = await probe(p["cli"], self.front.gateway, "web", 80)
        assert got.get("body") == f"web of {self.prefix}", got
        got = await probe(p["worker"], self.back.gateway, "db", 80)
        assert got.get("body") == f"db of {self.prefix}", got
        assert await ask(p["cli"], up.internet_ip, WHOAMI_PORT) == (0, up.host_ip)
        web = (0, f"web of {self.prefix}")
        assert await up.ask_from_outside(up.host_ip, self.port) == web
        assert await ask(os.getpid(), "127.0.0.1", self.port) == web
        assert await ask(p["cli"], up.host_ip, self.port) == web
        rc, seen = await ask(p["worker"], up.internet_ip, WHOAMI_PORT, timeout=1.5)
        assert rc != 0, seen
        rc, body = await up.ask_from_outside(self.ips["db"], 80, timeout=1.5)
        assert rc != 0, body
        rc, body = await up.ask_from_outside(self.ips["web"], 80, timeout=1.5)  # not published: closed
        assert rc != 0, body

    async def teardown(self) -> None:
        for name in ("web", "cli", "db", "worker"):
            await self.manager.detach(self.cid(name))
        for net in (self.front, self.back):
            if net is not None:
                with contextlib.suppress(NotFound):
                    await self.manager.remove(net.name)


@pytest.fixture
def scene(manager, spawn_ns, serve_http, uplink) -> Callable[[str], Scene]:  # type: ignore[no-untyped-def]
    return lambda prefix: Scene(manager, spawn_ns, serve_http, uplink, prefix)
