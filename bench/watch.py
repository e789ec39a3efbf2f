"""`python3 bench/watch.py [--edits N]` (root): how long an edit takes to reach a running
container under `composer watch`.

A busybox service has a `sync` rule (./data -> /app/data). `composer watch` runs as a
subprocess on a private state root. For each edit the bench writes a file on the host and
waits, with inotify on the container's own view of the target folder (/proc/<pid>/root/
app/data: its root and mounts as its processes see them), for the synced file to be
renamed into place. The time from before the host write to that event is one sample: it
includes inotify on the host, our 20 ms debounce, the tar, the call to composerd and the
write in the container. New files and rewrites of an existing file are measured apart.
Prints a table (median, p95, min, max in ms); everything is removed at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ours import ComposerCli  # noqa: E402
from bench.stats import percentile  # noqa: E402

STACK = """
services:
  app:
    image: busybox
    init: true
    command: sh -c 'mkdir -p /app/data && exec sleep 600'
    develop:
      watch:
        - action: sync
          path: ./data
          target: /app/data
"""
IN_CLOSE_WRITE, IN_MOVED_TO = 0x8, 0x80
EVENT = struct.Struct("iIII")
TARGET_MS = 100.0


class ContainerView:
    """inotify on a folder of the container, seen from the host through /proc/<pid>/root."""

    def __init__(self, path: str) -> None:
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_CLOEXEC)
        if self.fd < 0 or self.libc.inotify_add_watch(
                self.fd, path.encode(), IN_CLOSE_WRITE | IN_MOVED_TO) < 0:
            raise OSError(ctypes.get_errno(), f"cannot watch {path}")

    def wait_for(self, name: str, timeout: float = 10.0) -> float | None:
        """perf_counter() when `name` was written or renamed into the folder, None on timeout."""
        deadline = time.perf_counter() + timeout
        while (left := deadline - time.perf_counter()) > 0:
            if not select.select([self.fd], [], [], left)[0]:
                return None
            data = os.read(self.fd, 1 << 16)
            now = time.perf_counter()
            off = 0
            while off < len(data):
                _wd, _mask, _cookie, length = EVENT.unpack_from(data, off)
                got = data[off + EVENT.size: off + EVENT.size + length].rstrip(b"\0").decode()
                off += EVENT.size + length
                if got == name:
                    return now
        return None

    def close(self) -> None:
        os.close(self.fd)


def container_pid(cli: ComposerCli, project: str) -> int:
    async def pid() -> int:
        from runtime.client import Client

        async with Client(cli.run_dir / "composer.sock") as c:
            found = await c.list_containers(labels={"com.docker.compose.project": project})
            return found[0].pid

    return asyncio.run(pid())


def measure(edits: int) -> dict[str, list[float]]:
    work = Path(tempfile.mkdtemp(prefix="cmpwatch"))
    cli = ComposerCli(work)
    proj = work / "proj"
    (proj / "data").mkdir(parents=True)
    (proj / "compose.yaml").write_text(STACK)
    cli.projects.add((proj / "compose.yaml", "benchwatch"))
    samples: dict[str, list[float]] = {"new file": [], "rewrite": []}
    watch = None
    view = None
    try:
        watch = subprocess.Popen(
            [sys.executable, "-m", "composer.cli", "-p", "benchwatch", "watch"], cwd=proj,
            env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert watch.stdout is not None
        while "Watch enabled" not in watch.stdout.readline():
            if watch.poll() is not None:
                raise RuntimeError("composer watch ended before watching")
        view = ContainerView(f"/proc/{container_pid(cli, 'benchwatch')}/root/app/data")
        for i in range(edits + 2):  # the first two warm up (the first sync opens connections)
            for kind, name in (("new file", f"f{i}.txt"), ("rewrite", "same.txt")):
                t0 = time.perf_counter()
                (proj / "data" / name).write_text(f"edit {i}\n")
                t1 = view.wait_for(name)
                if t1 is None:
                    raise RuntimeError(f"{kind} {name}: not in the container after 10 s")
                if i >= 2:
                    samples[kind].append((t1 - t0) * 1000)
                time.sleep(0.15)  # each edit its own batch
    finally:
        if view is not None:
            view.close()
        if watch is not None:
            watch.send_signal(signal.SIGINT)
            try:
                watch.wait(timeout=15)
            except subprocess.TimeoutExpired:
                watch.kill()
        left = cli.close()
        if left:
            print(f"cleaned up leftovers: {', '.join(left)}", file=sys.stderr)
    return samples


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench/watch.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--edits", type=int, default=20, help="edits of each kind (default 20)")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("bench/watch.py needs root (it runs composerd)", file=sys.stderr)
        return 1
    samples = measure(args.edits)
    print(f"composer watch: host edit -> file in the running container (ms, {args.edits} edits each)")
    print(f"{'edit':<10} {'median':>8} {'p95':>8} {'min':>8} {'max':>8}  target")
    ok = True
    for kind, values in samples.items():
        med = statistics.median(values)
        ok = ok and med < TARGET_MS
        print(f"{kind:<10} {med:8.1f} {percentile(values, 95):8.1f} {min(values):8.1f} "
              f"{max(values):8.1f}  < {TARGET_MS:.0f} (median) {'ok' if med < TARGET_MS else 'MISSED'}")
    load = os.getloadavg()[0]
    print(f"load average {load:.1f} on {os.cpu_count()} cpus")
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
