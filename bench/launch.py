"""Benchmark: create+start+wait of /bin/true through the warm monitor.

    python3 bench/launch.py [runs]      (root; makes a busybox overlay rootfs in a temp dir)

Prints p50/p95 of launch (until execve), wait, and the total, in milliseconds, and the
interpreter start-up (`python -c pass`) for comparison.
"""
from __future__ import annotations

import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtime.images.busybox import populate_rootfs  # noqa: E402
from runtime.process.config import LaunchConfig  # noqa: E402
from runtime.process.launcher import Launcher  # noqa: E402


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


async def run(runs: int, namespaces: tuple[str, ...]) -> dict[str, list[float]]:
    tmp = Path(tempfile.mkdtemp(prefix="cmpbench"))
    rootfs = populate_rootfs(tmp / "rootfs")
    launcher = Launcher(str(tmp / "monitor.sock"))
    await launcher.start_server()
    out: dict[str, list[float]] = {"launch": [], "wait": [], "total": []}
    try:
        for i in range(runs + 3):
            d = tmp / f"c{i}"
            for sub in ("upper", "work", "merged", "state"):
                (d / sub).mkdir(parents=True)
            cfg = LaunchConfig(id=f"b{i}", argv=("/bin/true",), state_dir=str(d / "state"),
                               mergeddir=str(d / "merged"), lowerdirs=(str(rootfs),),
                               upperdir=str(d / "upper"), workdir=str(d / "work"),
                               namespaces=namespaces)
            t0 = time.perf_counter()
            launched = await launcher.launch(cfg)
            t1 = time.perf_counter()
            status = await launcher.wait(launched)
            t2 = time.perf_counter()
            assert status.code == 0, status
            if i >= 3:  # warm-up runs are not counted
                out["launch"].append((t1 - t0) * 1000)
                out["wait"].append((t2 - t1) * 1000)
                out["total"].append((t2 - t0) * 1000)
    finally:
        await launcher.close()
        shutil.rmtree(tmp)
    return out


def python_startup(runs: int = 20) -> list[float]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append((time.perf_counter() - t) * 1000)
    return times


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    print(f"{'case':<38}{'p50 ms':>9}{'p95 ms':>9}")
    for label, ns in (("all namespaces (mnt uts ipc pid net cgroup)",
                       ("mnt", "uts", "ipc", "pid", "net", "cgroup")),
                      ("no net namespace (host network)", ("mnt", "uts", "ipc", "pid", "cgroup"))):
        res = asyncio.run(run(runs, ns))
        print(label)
        for k in ("launch", "wait", "total"):
            print(f"  {k:<36}{statistics.median(res[k]):9.1f}{pct(res[k], 95):9.1f}")
    py = python_startup()
    print(f"{'python -c pass':<38}{statistics.median(py):9.1f}{pct(py, 95):9.1f}")


if __name__ == "__main__":
    main()
