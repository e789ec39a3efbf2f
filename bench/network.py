"""Network benchmarks (root): attach latency, DNS latency, published-port throughput.

    sudo python3 bench/network.py [--runs 50] [--gib 1]

Prints one table. Targets: attach p50 <= 15 ms, DNS p50 <= 1 ms, published >= 0.8x direct.
Everything it creates (netns processes, networks, nft table, temp state root) is removed.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runtime.network import NetworkManager  # noqa: E402
from runtime.paths import Paths  # noqa: E402
from runtime.types import NetworkAttachment, NetworkSpec, PortBinding  # noqa: E402

DNS_CLIENT = r"""
import socket, sys, time, statistics
from dnslib import DNSRecord
server, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
q = DNSRecord.question(name).pack()
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


def spawn() -> subprocess.Popen[bytes]:
    p = subprocess.Popen(["unshare", "--net", "sleep", "1000"])
    for _ in range(400):
        try:
            if os.readlink(f"/proc/{p.pid}/ns/net") != os.readlink("/proc/self/ns/net"):
                return p
        except FileNotFoundError:
            pass
        time.sleep(0.005)
    raise RuntimeError("unshare did not start")


async def run(*argv: str) -> str:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:4]} failed")
    return out.decode().strip()


async def bench(runs: int, size: int) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    tmp = Path(tempfile.mkdtemp(prefix="cmpbench"))
    procs: list[subprocess.Popen[bytes]] = []
    name = f"bench{os.getpid()}"
    managers = {mode: NetworkManager(Paths(tmp / mode, tmp / f"run-{mode}"), upstreams=[], port_mode=mode) for mode in ("nat", "proxy")}
    nat = managers["nat"]
    try:
        net = await nat.create(NetworkSpec(name))
        times: list[float] = []
        cpus: list[float] = []
        for i in range(runs):
            p = spawn()  # as the launcher does: a fresh netns right before attach
            procs.append(p)
            t, cpu = time.perf_counter(), time.process_time()
            await nat.attach(f"c{i}", p.pid, [NetworkAttachment(name, aliases=(f"alias{i}",))], [f"svc{i}", f"{name}-svc-{i}"])
            times.append((time.perf_counter() - t) * 1000)
            cpus.append((time.process_time() - cpu) * 1000)
        p90 = sorted(times)[int(len(times) * 0.9)]
        rows.append(("attach (veth+addr+route+dns), wall", f"{statistics.median(times):.2f} ms p50 (p90 {p90:.2f})", "<= 15 ms"))
        rows.append(("attach, daemon cpu time", f"{statistics.median(cpus):.2f} ms p50", ""))
        rows.append(("host load average (1 min) during the run", f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cpus", ""))

        dns_ms = float(await run("nsenter", "-t", str(procs[1].pid), "-n", "python3", "-c", DNS_CLIENT, net.gateway, "svc0", "1000"))
        rows.append(("dns answer, udp from a container", f"{dns_ms:.3f} ms p50", "<= 1 ms"))

        sink = subprocess.Popen(["nsenter", "-t", str(procs[0].pid), "-n", "python3", "-c", SINK])
        procs.append(sink)
        await asyncio.sleep(0.5)
        ip = nat.store.load().containers["c0"].endpoints[0].ip
        direct = float(await run("python3", "-c", SENDER, ip, "9000", str(size)))
        rows.append(("throughput direct (host -> container ip)", f"{direct:.0f} MiB/s", ""))
        bound = await nat.publish("c0", ip, [PortBinding(9000, host_ip="127.0.0.1")])
        pub = float(await run("python3", "-c", SENDER, "127.0.0.1", str(bound[0].host_port), str(size)))
        rows.append(("throughput published, kernel DNAT (127.0.0.1)", f"{pub:.0f} MiB/s = {pub / direct:.2f}x", ">= 0.8x"))
        await nat.unpublish("c0")
        proxy = managers["proxy"]
        bound = await proxy.publish("c0", ip, [PortBinding(9000, host_ip="127.0.0.1")])
        prx = float(await run("python3", "-c", SENDER, "127.0.0.1", str(bound[0].host_port), str(size)))
        rows.append(("throughput published, asyncio proxy (127.0.0.1)", f"{prx:.0f} MiB/s = {prx / direct:.2f}x", ">= 0.8x"))
        await proxy.unpublish("c0")
    finally:
        for p in procs:
            p.kill()
            p.wait()
        for m in managers.values():
            for cid in list(m.store.load().containers):
                await m.detach(cid)
            for n in list(m.store.load().networks):
                await m.remove(n)
            await m.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--gib", type=float, default=1.0)
    args = ap.parse_args()
    rows = asyncio.run(bench(args.runs, int(args.gib * (1 << 30))))
    width = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(width)}  {'result':<32} target")
    for label, value, target in rows:
        print(f"{label.ljust(width)}  {value:<32} {target}")


if __name__ == "__main__":
    main()
