"""Scenarios 5–7 by calling the other benches: bench/network.py (published-port throughput
and DNS latency, from real containers of ours) and bench/load_stack.py (loading a
200-service stack file)."""
from __future__ import annotations

import asyncio
import re
import tempfile
import time
from pathlib import Path

from bench.stats import Sample

NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


def first_number(text: str) -> float:
    m = NUMBER.search(text)
    if m is None:
        raise ValueError(f"no number in {text!r}")
    return float(m.group())


def parse_network_rows(rows: list[tuple[str, str, str]]) -> dict[str, float]:
    """bench/network.py's rows (label, value text, target) -> the numbers we report."""
    out: dict[str, float] = {}
    for label, value, _ in rows:
        if label.startswith("attach") and "wall" in label:
            out["attach_ms"] = first_number(value)
        elif label.startswith("dns answer"):
            out["dns_ms"] = first_number(value)
        elif label.startswith("throughput direct"):
            out["direct_mibs"] = first_number(value)
        elif label.startswith("throughput published, kernel DNAT"):
            out["published_nat_mibs"] = first_number(value)
        elif label.startswith("throughput published, asyncio proxy"):
            out["published_proxy_mibs"] = first_number(value)
    return out


def network(size: int, workdir: Path) -> tuple[dict[str, float], list[tuple[str, str, str]]]:
    """bench/network.py's bench() (real containers of ours) with its state under `workdir`."""
    from bench import network as netbench

    workdir.mkdir(parents=True, exist_ok=True)
    rows = asyncio.run(netbench.bench(size, workdir))
    return parse_network_rows(rows), rows


def load_stack(services: int, runs: int) -> tuple[Sample, dict[str, int]]:
    """load_stack() + build_graph() of bench/load_stack.py's generated stack; ms per run."""
    from bench.load_stack import generate
    from composer.graph import build_graph
    from composer.spec import LoadOptions, load_stack

    s = Sample()
    with tempfile.TemporaryDirectory(prefix="cmpbench-load-") as tmp:
        path = Path(tmp) / "compose.yaml"
        path.write_text(generate(services))
        opts = LoadOptions(files=[str(path)], environ={}, working_dir=tmp)
        for i in range(runs + 1):
            t = time.perf_counter()
            stack = load_stack(opts)
            graph = build_graph(stack)
            ms = (time.perf_counter() - t) * 1000
            if i:  # the first run warms imports and caches
                s.values.append(ms)
        info = {"services": services, "file_bytes": path.stat().st_size,
                "generations": len(graph.generations())}
    return s, info
