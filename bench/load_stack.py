"""Benchmark: load + validate + graph a generated 200-service stack file.

Usage: python3 bench/load_stack.py [--services 200] [--runs 15]
Prints the median (and min/max) wall time of load_stack() + build_graph(), and the median
CPU time (less sensitive to other load on the machine); target < 200 ms.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from composer.graph import build_graph  # noqa: E402
from composer.spec import LoadOptions, load_stack  # noqa: E402


def generate(n: int) -> str:
    """A realistic stack: every service has ports, volumes, env, healthcheck, limits and deps."""
    lines = ["name: bench", "services:"]
    for i in range(n):
        deps = sorted({f"svc{j}" for j in (i - 1, i // 2) if 0 <= j < i})
        lines += [
            f"  svc{i}:",
            f"    image: registry.example/app{i % 7}:1.{i}",
            f"    command: [\"/bin/app\", \"--id\", \"{i}\", \"--port\", \"${{PORT:-80{i % 10}}}\"]",
            f"    environment: [ID={i}, \"MODE=${{MODE:-prod}}\", \"URL=http://svc{i}:80\"]",
            f"    labels: {{tier: t{i % 3}, index: \"{i}\"}}",
            f"    ports: [\"{10000 + i}:80\", \"127.0.0.1:{20000 + i}:443/tcp\"]",
            f"    volumes: [\"data{i % 10}:/data\", \"./conf/{i}:/etc/app:ro\", {{type: tmpfs, target: /tmp, tmpfs: {{size: 16m}}}}]",
            "    healthcheck: {test: [CMD, /bin/check], interval: 10s, timeout: 2s, retries: 3, start_period: 30s}",
            "    deploy: {resources: {limits: {cpus: '0.5', memory: 256m, pids: 100}}}",
            "    ulimits: {nofile: {soft: 1024, hard: 4096}}",
            f"    networks: [front, back{i % 2}]",
            "    restart: unless-stopped",
        ]
        if deps:
            lines.append("    depends_on:")
            for j, d in enumerate(deps):
                cond = "service_healthy" if j == 0 else "service_started"
                lines.append(f"      {d}: {{condition: {cond}}}")
    lines += ["networks: {front: {}, back0: {}, back1: {internal: true}}", "volumes:"]
    lines += [f"  data{k}: {{}}" for k in range(10)]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--services", type=int, default=200)
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "compose.yaml"
        path.write_text(generate(args.services))
        opts = LoadOptions(files=[str(path)], environ={}, working_dir=tmp)
        times, cpu = [], []
        for _ in range(args.runs + 1):
            start, start_cpu = time.perf_counter(), time.process_time()
            stack = load_stack(opts)
            graph = build_graph(stack)
            times.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
        times, cpu = times[1:], cpu[1:]  # the first run warms imports and caches
        gens = len(graph.generations())
        size = path.stat().st_size
    print(f"{'services':>8} {'file KiB':>8} {'generations':>11} {'median ms':>9} {'min ms':>7} "
          f"{'max ms':>7} {'cpu median ms':>13}")
    print(f"{args.services:>8} {size / 1024:>8.1f} {gens:>11} {statistics.median(times):>9.1f} "
          f"{min(times):>7.1f} {max(times):>7.1f} {statistics.median(cpu):>13.1f}")
    with open("/proc/loadavg") as f:
        print(f"(load average {f.read().split()[0]} on {os.cpu_count()} cpus: wall times include waiting for a cpu)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
