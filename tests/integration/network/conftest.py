"""Fixtures for the network integration tests (root, real kernel).

A test "container" is a `sleep` in its own network namespace (`unshare --net`); commands run
inside with `nsenter -t PID -n`. Every network name carries a per-run prefix, and the
finalizers remove containers, networks and the nft table even when a test fails.
"""
from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from runtime.network import NetworkManager
from runtime.network.firewall import delete_table
from runtime.network.hostfw import remove_docker_user_rules
from runtime.network.links import delete_link
from runtime.paths import Paths

RUN = f"t{os.getpid() % 100000}{secrets.token_hex(2)}"


@dataclass
class Ns:
    proc: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.proc.pid


async def run_in(pid: int, *argv: str, timeout: float = 10.0, check: bool = False) -> tuple[int, str, str]:
    """Run argv inside the netns of pid without blocking the loop (the DNS server lives there)."""
    proc = await asyncio.create_subprocess_exec(
        "nsenter", "-t", str(pid), "-n", *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    rc = proc.returncode
    assert rc is not None
    if check and rc != 0:
        raise AssertionError(f"{argv} failed ({rc}): {err.decode()}")
    return rc, out.decode(), err.decode()


# an "outside" server on port 8080 that answers each connection with the address it came from
WHOAMI_SERVER = r"""
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080)); s.listen()
while True:
    c, addr = s.accept(); c.sendall(addr[0].encode()); c.close()
"""

PROBE = r"""
import socket, sys
from dnslib import DNSRecord
server, name, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
s.sendto(DNSRecord.question(name).pack(), (server, 53))
rep = DNSRecord.parse(s.recv(4096))
ips = [str(r.rdata) for r in rep.rr]
print("rcode", rep.header.rcode)
print("ips", ",".join(ips))
if ips and port:
    c = socket.create_connection((ips[0], port), timeout=3)
    c.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
    data = b""
    while chunk := c.recv(4096):
        data += chunk
    print("body", data.split(b"\r\n\r\n", 1)[-1].decode().strip())
"""


async def probe(pid: int, server: str, name: str, port: int = 0) -> dict[str, str]:
    """Inside the netns: resolve `name` at `server`, then GET / from the first address."""
    rc, out, err = await run_in(pid, "python3", "-c", PROBE, server, name, str(port))
    result = {"rc": str(rc), "err": err}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        result[key] = value
    return result


@pytest.fixture
def spawn_ns() -> Iterator[Callable[[], Ns]]:
    procs: list[subprocess.Popen[bytes]] = []

    def make() -> Ns:
        p = subprocess.Popen(["unshare", "--net", "sleep", "1000"])
        procs.append(p)
        # wait until unshare has exec'd sleep in the new netns
        for _ in range(200):
            try:
                if os.readlink(f"/proc/{p.pid}/ns/net") != os.readlink("/proc/self/ns/net"):
                    break
            except FileNotFoundError:
                pass
            import time

            time.sleep(0.005)
        return Ns(p)

    yield make
    for p in procs:
        p.kill()
        p.wait()


@pytest.fixture
def netname() -> Callable[[str], str]:
    return lambda suffix: f"{RUN}_{suffix}"


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths(tmp_path / "root", tmp_path / "run")


@pytest.fixture
async def manager(paths: Paths) -> AsyncIterator[NetworkManager]:
    m = NetworkManager(paths, upstreams=[])
    await m.start()
    try:
        yield m
    finally:
        st = m.store.load()
        for cid in list(st.containers):
            await m.detach(cid)
        for name in list(m.store.load().networks):
            await m.remove(name)
        await m.close()
        # belt and braces: nothing of this test may survive a failed teardown
        for rec in st.networks.values():
            await delete_link(rec.bridge)
        await delete_table(m.table)
        await remove_docker_user_rules(m.table)


@pytest.fixture
async def serve_http(tmp_path: Path) -> AsyncIterator[Callable[[int, str], Awaitable[None]]]:
    """serve_http(pid, text): busybox httpd -f on port 80 inside the netns, serving `text`."""
    procs: list[asyncio.subprocess.Process] = []

    async def start(pid: int, text: str) -> None:
        root = tmp_path / f"www-{secrets.token_hex(3)}"
        root.mkdir()
        (root / "index.html").write_text(text + "\n")
        proc = await asyncio.create_subprocess_exec(
            "nsenter", "-t", str(pid), "-n", "busybox", "httpd", "-f", "-p", "80", "-h", str(root)
        )
        procs.append(proc)
        for _ in range(200):
            _, out, _ = await run_in(pid, "busybox", "netstat", "-lnt")
            if ":80 " in out:
                return
            await asyncio.sleep(0.02)
        raise AssertionError("httpd did not start")

    yield start
    for proc in procs:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
