"""Benchmark: how fast container output reaches the terminal, and how fast `exec` moves bytes.

    sudo python3 bench/stream.py [--lines 1000] [--mib 100] [--runs 3]

Through the real CLI and a composerd of its own (temp state root, removed at the end):

* latency of a line: the container runs `while read l; do echo "$l"; done < /fifo`, the FIFO
  bind-mounted from here; we write line N into it at t0 and take the time it comes out of
  an attached `composer up` and of `composer logs -f --tail 0` (each its own phase, lines
  5 ms apart so that we measure the way, not a queue). p50/p95/max over --lines lines. The
  container's own part (read + echo) is microseconds.
* `exec -T` throughput on a --mib MiB file: `exec -T app sh -c 'cat > /dev/null' < file`
  (our stdin into the container), `exec -T app cat < file > /dev/null` (in and back out), and
  the same bytes made and moved inside the container (`dd if=/dev/zero | cat > /dev/null`)
  as the baseline. Timed by the container's clock from the command's start to its end (the
  CLI's start-up, seconds on a busy machine, would drown the copy); median of --runs.
  The whole command's wall time is printed beside it.
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

STACK = """\
services:
  echo:
    image: busybox
    init: true
    command: sh -c 'while true; do while read l; do echo "$$l"; done < /fifo; done'
    volumes: ["./fifo:/fifo"]
  app:
    image: busybox
    init: true
    command: sleep 100000
"""


class Rig:
    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="cmpbench"))
        self.dir = self.base / "stack"
        self.dir.mkdir()
        (self.dir / "compose.yaml").write_text(STACK)
        os.mkfifo(self.dir / "fifo")
        self.cgroup_parent = f"composer-bench-{os.getpid()}"
        self.env = dict(os.environ, COMPOSER_ROOT=str(self.base / "root"),
                        COMPOSER_RUN=str(self.base / "run"), PYTHONPATH=str(REPO),
                        COMPOSER_CGROUP_PARENT=self.cgroup_parent)

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "composer.cli", *args]

    def cli(self, *args: str, **kw: object) -> subprocess.CompletedProcess[bytes]:
        done: subprocess.CompletedProcess[bytes] = subprocess.run(  # type: ignore[call-overload]
            self.argv(*args), cwd=self.dir, env=self.env, check=True, **kw)
        return done

    def popen(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.argv(*args), cwd=self.dir, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def close(self) -> None:
        subprocess.run(self.argv("down", "-t", "0"), cwd=self.dir, env=self.env,
                       capture_output=True)
        try:
            pid = int((self.base / "run" / "composerd.pid").read_text().split()[0])
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.05)
        except (OSError, ValueError):
            pass
        subprocess.run([sys.executable, "-c", "from runtime.cgroups import open_manager; "
                        f"open_manager(parent={self.cgroup_parent!r}).remove_parent()"],
                       env=self.env, capture_output=True)
        subprocess.run(["rm", "-rf", str(self.base)])


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def latency(rig: Rig, reader: subprocess.Popen[bytes], lines: int, tag: str) -> list[float]:
    """ms from writing line N into the FIFO to reading it on `reader`'s stdout."""
    seen: dict[int, float] = {}
    prefix = f"{tag}-".encode()

    def read() -> None:
        assert reader.stdout is not None
        for raw in iter(reader.stdout.readline, b""):
            t = time.perf_counter()
            at = raw.find(prefix)
            if at >= 0:
                seen.setdefault(int(raw[at + len(prefix):].split()[0]), t)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    sent: dict[int, float] = {}
    with open(rig.dir / "fifo", "w") as fifo:  # blocks until the container opens it
        warm = -1
        deadline = time.time() + 120
        while not any(n < 0 for n in seen) and time.time() < deadline:
            fifo.write(f"{tag}-{warm}\n")  # until the reader shows them: it is attached
            fifo.flush()
            warm -= 1
            time.sleep(0.1)
        time.sleep(0.5)
        for n in range(lines):
            sent[n] = time.perf_counter()
            fifo.write(f"{tag}-{n}\n")
            fifo.flush()
            time.sleep(0.005)
        deadline = time.time() + 30
        while len([n for n in sent if n in seen]) < lines and time.time() < deadline:
            time.sleep(0.05)
    missing = [n for n in sent if n not in seen]
    if missing:
        print(f"{tag}: {len(missing)} lines never came: {missing[:10]}...", file=sys.stderr)
    return [(seen[n] - sent[n]) * 1000 for n in sent if n in seen]


def timed(rig: Rig, *args: str, stdin: Path | None = None) -> tuple[float, str]:
    """(wall seconds, what the command said on stderr)."""
    f = open(stdin, "rb") if stdin else subprocess.DEVNULL  # noqa: SIM115
    try:
        t0 = time.perf_counter()
        p = rig.cli(*args, stdin=f, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return time.perf_counter() - t0, p.stderr.decode()
    finally:
        if stdin:
            f.close()  # type: ignore[union-attr]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1000)
    ap.add_argument("--mib", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/stream.py needs root (it runs composerd)")
    rig = Rig()
    try:
        rig.cli("up", "-d", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rows = []
        logs = rig.popen("logs", "-f", "--tail", "0", "echo")
        lat_logs = latency(rig, logs, args.lines, "logs")
        logs.terminate()
        logs.wait()
        up = rig.popen("up", "echo")  # attached; the running container is reused
        lat_up = latency(rig, up, args.lines, "up")
        up.send_signal(signal.SIGINT)
        try:
            up.wait(60)
        except subprocess.TimeoutExpired:
            up.kill()
        for name, lat in (("attached up", lat_up), ("logs -f", lat_logs)):
            rows.append(f"| {name} | {len(lat)}/{args.lines} | {statistics.median(lat):.1f} | "
                        f"{pct(lat, 95):.1f} | {max(lat):.1f} |")
        print(f"line written in the container -> on our stdout (ms); load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print("| reader | lines | p50 | p95 | max |\n|---|---|---|---|---|")
        print("\n".join(rows))

        rig.cli("up", "-d", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        data = rig.base / "data.bin"
        with open(data, "wb") as f:
            block = os.urandom(1 << 20)
            for _ in range(args.mib):
                f.write(block)
        noop = statistics.median(timed(rig, "exec", "-T", "app", "true")[0]
                                 for _ in range(args.runs))
        clock = "cut -d' ' -f1 /proc/uptime"
        inside = f"a=$({clock}); {{}}; b=$({clock}); echo $a $b >&2"
        cases = [
            ("exec -T app sh -c 'cat > /dev/null' < file",
             ("exec", "-T", "app", "sh", "-c", inside.format("cat > /dev/null")), data),
            ("exec -T app cat < file > /dev/null",
             ("exec", "-T", "app", "sh", "-c", inside.format("cat")), data),
            ("in the container: dd if=/dev/zero bs=64k | cat > /dev/null",
             ("exec", "-T", "app", "sh", "-c", inside.format(
                 f"dd if=/dev/zero bs=64k count={args.mib * 16} 2>/dev/null | cat > /dev/null")),
             None),
        ]
        print(f"\nexec -T throughput, {args.mib} MiB, median of {args.runs}: MiB/s from the "
              "command's start to its end by the container's clock (/proc/uptime, 10 ms); "
              f"whole = the CLI's wall time (`exec -T app true` alone: {noop:.2f} s)")
        print("| what | MiB/s | whole command, s |\n|---|---|---|")
        for name, argv, stdin in cases:
            walls, insides = [], []
            for _ in range(args.runs):
                wall, err = timed(rig, *argv, stdin=stdin)
                walls.append(wall)
                nums = err.split()
                if len(nums) == 2:
                    insides.append(float(nums[1]) - float(nums[0]))
            i = f"{args.mib / max(statistics.median(insides), 0.01):.0f}" if insides else "-"
            print(f"| `{name}` | {i} | {statistics.median(walls):.2f} |")
    finally:
        rig.close()


if __name__ == "__main__":
    main()
