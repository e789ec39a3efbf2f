"""`python -m bench [--quick] [--out results.json] [--install-peers] [--no-peers]`

Runs the scenarios (root), prints one table (scenario, ours p50/p95, each peer's p50 and
ours/peer, target) and writes every sample as JSON. A timing never fails the run; a broken
scenario becomes a note. Everything made on the host is removed at the end.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import peers  # noqa: E402
from bench.hostguard import IP_FORWARD  # noqa: E402
from bench.oci import unmount_all  # noqa: E402
from bench.ours import CGROUP_PARENT  # noqa: E402
from bench.rootfs import PEER_CGROUP  # noqa: E402
from bench.scenarios import SCENARIOS, Context  # noqa: E402
from bench.stats import Row, markdown, table  # noqa: E402


def machine() -> dict[str, str]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    os_name = ""
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return {"kernel": platform.release(), "os": os_name, "cpu": cpu, "cpus": str(os.cpu_count()),
            "memory": mem, "python": platform.python_version()}


def versions() -> dict[str, str]:
    out = {}
    for tool, args in (("runc", ["--version"]), ("crun", ["--version"]), ("podman", ["--version"]),
                       ("podman-compose", ["--version"]), ("systemd-nspawn", ["--version"]),
                       ("dockerd", ["--version"]), ("containerd", ["--version"]),
                       ("docker-compose", ["version", "--short"])):
        if shutil.which(tool):
            p = subprocess.run([tool, *args], capture_output=True, text=True)
            lines = [ln for ln in (p.stdout + p.stderr).splitlines()
                     if ln.strip() and not ln.startswith("exit code")]
            if tool == "podman-compose":
                lines = [ln for ln in lines if ln.startswith("podman-compose")] or lines
            out[tool] = lines[0] if lines else "?"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer runs, no slow peers (< 2 min)")
    ap.add_argument("--out", type=Path, help="write the results as JSON to this file")
    ap.add_argument("--markdown", type=Path, help="also write the table as Markdown here")
    ap.add_argument("--install-peers", action="store_true",
                    help="apt-get install the peers' Debian packages (bench/peers.py APT_PACKAGES)")
    ap.add_argument("--no-peers", action="store_true", help="measure composer only")
    ap.add_argument("--only", action="append", choices=sorted(SCENARIOS), default=None,
                    help="run only these scenarios (repeat)")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("error: the bench needs root (namespaces, cgroups, mounts)", file=sys.stderr)
        return 2

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    if args.install_peers:
        peers.install_peers(log)
    started = time.time()
    workdir = Path(tempfile.mkdtemp(prefix="cmpbench-"))
    ip_forward = IP_FORWARD.read_text().strip()
    load_start = os.getloadavg()[0]
    ctx = Context(workdir, args.quick, not args.no_peers, log)
    rows: list[Row] = []
    errors: dict[str, str] = {}
    try:
        for name, scenario in SCENARIOS.items():
            if args.only and name not in args.only:
                continue
            try:
                rows += scenario(ctx)
            except Exception as e:  # noqa: BLE001 - a scenario must not end the bench
                errors[name] = f"{type(e).__name__}: {e}"
                log(f"scenario {name} failed: {errors[name]}")
    finally:
        # an OCI peer's overlay root, if a Ctrl-C came between its mount and its unmount
        ctx.cleanup += [f"mount {m} (left)" for m in unmount_all(workdir)]
        shutil.rmtree(workdir, ignore_errors=True)
        left = peers.remove_peer_cgroups()
        ctx.cleanup += [f"peer cgroup left: {p}" for p in left]
        if IP_FORWARD.read_text().strip() != ip_forward:
            IP_FORWARD.write_text(ip_forward + "\n")
            ctx.cleanup.append(f"ip_forward restored to {ip_forward}")

    print(table(rows))
    elapsed = time.time() - started
    print(f"\n{'quick' if args.quick else 'full'} run, {elapsed:.0f} s, "
          f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; cleanup: {len(ctx.cleanup)} action(s)")
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "elapsed_s": round(elapsed, 1),
        "workdir": str(workdir),  # removed at the end: the tests check nothing is left under it
        "cgroup_parents": [CGROUP_PARENT, PEER_CGROUP],  # this run's, removed at the end
        "machine": machine(),
        "loadavg_1min": {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2)},
        "peer_versions": versions(),
        "rows": [r.to_json() for r in rows],
        "extra": ctx.extra,
        "cleanup": ctx.cleanup,
        "errors": errors,
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    if args.markdown:
        args.markdown.write_text(markdown(rows) + "\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # everything was put back on the way out (the finally blocks)
        print("bench: interrupted; what it had made is removed", file=sys.stderr)
        sys.exit(130)
