"""composerd's event loop answers the stack's DNS and runs builds: a build that copies a big
context must not hold up name resolution. A service is up; while `composer build` copies a
512 MiB context into a layer (hashing, copying and committing it), the host queries the
stack's DNS server for the service's name over and over and times each answer."""
from __future__ import annotations

import socket
import statistics
import time
from pathlib import Path

from dnslib import QTYPE, DNSRecord

from tests.e2e.conftest import Env, taken_down, write_stack

STACK = """
services:
  web:
    image: busybox
    command: sleep 300
  big:
    image: dns-under-build-big
    build:
      context: ./ctx
      dockerfile_inline: |
        FROM busybox
        COPY . /data
    profiles: [build]
"""
CONTEXT_MIB = 512
ANSWER_WITHIN = 0.005  # the bound for a query answered while a build runs (9 in 10 of them)
# the slowest answer: one stall of the loop shows here, not in the p90 (copying a 256 MiB
# context on the loop instead of in a thread stalled it 256 ms, so this one's ~500 ms); 200 ms
# leaves room for a loaded machine's scheduler (worst seen beside five other test runs: 86 ms)
WORST_WITHIN = 0.200


def _nameserver(env: Env, d: Path) -> str:
    conf = env.composer("exec", "-T", "web", "cat", "/etc/resolv.conf", cwd=d).stdout
    return next(line.split()[1] for line in conf.splitlines() if line.startswith("nameserver"))


def _query(sock: socket.socket, server: str, name: str) -> tuple[float, list[str]]:
    q = DNSRecord.question(name, "A")
    t = time.monotonic()
    sock.sendto(q.pack(), (server, 53))
    while True:
        data, _ = sock.recvfrom(4096)
        reply = DNSRecord.parse(data)
        if reply.header.id == q.header.id:
            break
    took = time.monotonic() - t
    return took, [str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A]


def test_dns_answers_within_5ms_while_a_big_context_builds(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "dnsb"
    write_stack(d, STACK)
    ctx = d / "ctx"
    ctx.mkdir()
    chunk = bytes(range(256)) * 4096  # 1 MiB, not sparse: the copy moves real data
    for i in range(CONTEXT_MIB // 16):
        with open(ctx / f"part{i:02}.bin", "wb") as f:
            for _ in range(16):
                f.write(chunk)
    with taken_down(env, d) as procs:
        env.composer("up", "-d", "web", cwd=d)
        server = _nameserver(env, d)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(2)
        try:
            _, idle_answer = _query(sock, server, "web")
            assert idle_answer, "the stack's DNS does not know web"
            build = env.popen("build", "big", cwd=d)
            procs.append(build)
            during: list[float] = []
            while build.poll() is None:
                took, answer = _query(sock, server, "web")
                assert answer == idle_answer
                during.append(took)
                time.sleep(0.002)
            out, err = build.communicate()
        finally:
            sock.close()
        assert build.returncode == 0, err
        assert env.composer("images", "-q", cwd=d, check=False).returncode == 0
        # the build really copied the context: the image holds every part
        listing = env.composer("run", "--rm", "-T", "--no-deps", "big", "ls", "/data",
                               cwd=d).stdout.split()
        assert len([n for n in listing if n.startswith("part")]) == CONTEXT_MIB // 16
    during.sort()
    assert len(during) >= 20, f"the build ended after {len(during)} queries: too small to measure"
    median = statistics.median(during)
    p90 = during[int(len(during) * 0.90)]
    print(f"{len(during)} queries during the build: median {median * 1e3:.2f} ms, "
          f"p90 {p90 * 1e3:.2f} ms, worst {during[-1] * 1e3:.2f} ms")
    assert p90 <= ANSWER_WITHIN, (median, p90, during[-1])
    assert during[-1] <= WORST_WITHIN, (median, p90, during[-1])
