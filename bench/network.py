"""Network benchmarks (root), from real containers of ours: published-port throughput (nft
DNAT and asyncio proxy modes) and DNS latency against our embedded DNS.

    sudo python3 bench/network.py [--gib 1]

An Engine (in this process, a private state root, as bench/ours.py's scenario 1) per port
mode starts a busybox container on a composer bridge network with port 9000 published on
127.0.0.1 (`ports: ["127.0.0.1::9000"]`), and a second one on the same network. busybox
has no fast byte sink, so the sink (and the DNS client) are this host's python3 run in the
container's *network namespace* (`nsenter -t <its pid> -n`): the packets take the
container's veth, our bridge, our nft DNAT or our proxy, as a server in the container would.
- direct: host -> the container's bridge address;
- published: host -> 127.0.0.1:<published port> (nft DNAT, then the proxy mode);
- dns: from the second container's netns, to the nameserver its /etc/resolv.conf names (our
  embedded DNS), the sink's service name; 1000 queries, median after the first 10.
Prints one table. Targets: DNS p50 <= 1 ms, published >= 0.8x direct.
Everything it creates (containers, network, nft table, cgroups, state root) is removed.
No upstream DNS server is given: every query is answered by the embedded DNS itself.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ours import CGROUP_PARENT, cleanup_state  # noqa: E402
from runtime.engine import Engine  # noqa: E402
from runtime.network import NetworkManager  # noqa: E402
from runtime.network.manager import PortMode  # noqa: E402
from runtime.paths import Paths  # noqa: E402
from runtime.types import ContainerSpec, NetworkAttachment, NetworkSpec, PortBinding  # noqa: E402

DNS_CLIENT = r"""
import socket, sys, time, statistics
from dnslib import DNSRecord
server, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
q = DNSRecord.question(name).pack()
s.sendto(q, (server, 53))
if not DNSRecord.parse(s.recv(4096)).rr:  # an answer, or the figure is of a refusal
    sys.exit(f"no answer for {name} from {server}")
times = []
for i in range(n):
    t = time.perf_counter(); s.sendto(q, (server, 53)); s.recv(4096); times.append(time.perf_counter() - t)
print(statistics.median(times[10:]) * 1000)
"""

SINK = r"""
import socket
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", 9000)); srv.listen()
while True:
    c, _ = srv.accept()
    total = 0
    while data := c.recv(1 << 20):
        total += len(data)
    c.sendall(str(total).encode()); c.close()
"""

SENDER = r"""
import socket, sys, time
host, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
buf = b"x" * (1 << 20)
c = socket.create_connection((host, port))
t = time.perf_counter(); sent = 0
while sent < size:
    c.sendall(buf); sent += len(buf)
c.shutdown(socket.SHUT_WR)
got = int(c.recv(64) or b"0")
dt = time.perf_counter() - t
assert got == size, (got, size)
print(size / dt / (1 << 20))
"""


async def run(*argv: str) -> str:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:4]} failed")
    return out.decode().strip()


def nameserver(pid: int) -> str:
    """The first nameserver of the container's own /etc/resolv.conf."""
    for line in Path(f"/proc/{pid}/root/etc/resolv.conf").read_text().splitlines():
        if line.startswith("nameserver"):
            return line.split()[1]
    raise RuntimeError("no nameserver in the container's /etc/resolv.conf")


async def one_mode(mode: PortMode, size: int, tmp: Path, rows: list[tuple[str, str, str]],
                   direct: float | None) -> float:
    """Start the containers on an Engine whose published ports use `mode`; measure; remove
    everything. Returns the direct throughput (measured in the first mode only)."""
    paths = Paths(tmp / mode / "root", tmp / mode / "run")
    engine = await Engine.open(paths, cgroup_parent=CGROUP_PARENT,
                               network=NetworkManager(paths, port_mode=mode, upstreams=[]))
    net = f"cmpbench{os.getpid()}"
    sink: subprocess.Popen[bytes] | None = None
    try:
        engine.images.ensure_busybox()
        await engine.create_network(NetworkSpec(net))

        def spec(name: str, ports: tuple[PortBinding, ...] = ()) -> ContainerSpec:
            return ContainerSpec(name=name, image="busybox", command=("sleep", "600"),
                                 network_mode="bridge", ports=ports,
                                 networks=(NetworkAttachment(net, aliases=(name,)),))

        server = await engine.create_container(spec("sink", (PortBinding(9000, host_ip="127.0.0.1"),)))
        server = await engine.start_container(server.id)
        sink = subprocess.Popen(["nsenter", "-t", str(server.pid), "-n", sys.executable, "-c", SINK])
        await asyncio.sleep(0.5)
        if direct is None:
            client = await engine.create_container(spec("client"))
            client = await engine.start_container(client.id)
            dns_ms = float(await run("nsenter", "-t", str(client.pid), "-n", sys.executable, "-c",
                                     DNS_CLIENT, nameserver(client.pid), "sink", "1000"))
            rows.append(("dns answer, udp from a container (embedded dns)", f"{dns_ms:.3f} ms p50", "<= 1 ms"))
            ip = server.addresses[net]
            direct = float(await run(sys.executable, "-c", SENDER, ip, "9000", str(size)))
            rows.append(("throughput direct (host -> container ip)", f"{direct:.0f} MiB/s", ""))
        port = server.ports[0].host_port
        pub = float(await run(sys.executable, "-c", SENDER, "127.0.0.1", str(port), str(size)))
        label = "kernel DNAT" if mode == "nat" else "asyncio proxy"
        rows.append((f"throughput published, {label} (127.0.0.1)", f"{pub:.0f} MiB/s = {pub / direct:.2f}x", ">= 0.8x"))
        return direct
    finally:
        if sink is not None:
            sink.kill()
            sink.wait()
        for c in await engine.list_containers(all=True):
            with contextlib.suppress(Exception):
                await engine.remove_container(c.id, force=True)
        with contextlib.suppress(Exception):
            await engine.remove_network(net)
        await engine.close()


async def bench(size: int, workdir: Path | None = None) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    tmp = workdir or Path(tempfile.mkdtemp(prefix="cmpbench"))
    direct: float | None = None
    try:
        modes: tuple[PortMode, ...] = ("nat", "proxy")
        for mode in modes:
            try:
                direct = await one_mode(mode, size, tmp, rows, direct)
            finally:
                left = cleanup_state(tmp / mode / "root", tmp / mode / "run", tmp / mode)
                rows += [(f"leftover ({mode})", x, "") for x in left]
        rows.append(("host load average (1 min) during the run", f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cpus", ""))
    finally:
        if workdir is None:
            shutil.rmtree(tmp, ignore_errors=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gib", type=float, default=1.0)
    args = ap.parse_args()
    rows = asyncio.run(bench(int(args.gib * (1 << 30))))
    width = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(width)}  {'result':<32} target")
    for label, value, target in rows:
        print(f"{label.ljust(width)}  {value:<32} {target}")


if __name__ == "__main__":
    main()
