"""Our side of the scenarios: the Engine API in-process, and the `composer` CLI with its
own composerd on a private state root — both cleaned up to the last cgroup and mount."""
from __future__ import annotations

import contextlib
import inspect
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.stats import Sample
from runtime.engine import Engine
from runtime.network import names
from runtime.network.firewall import table_name
from runtime.paths import Paths
from runtime.types import ContainerSpec, NetworkAttachment, NetworkSpec

REPO = Path(__file__).resolve().parents[1]
# one per bench run: developers share the host, and another run's containers (or its
# clean-up) must never be taken for ours
CGROUP_PARENT = f"composer-bench-{os.getpid()}"
CGROUP_ROOT = Path("/sys/fs/cgroup")


class BenchError(RuntimeError):
    pass


# ---------------------------------------------------------------- scenario 1: Engine API


PHASES = ("create", "start", "wait", "remove")
# inside start: what the engine does before the launch (rootfs dirs, mounts, /etc files,
# the launch config, the cgroup: made before the launch since a v2 one receives the init at
# its clone), the launch (monitor -> launch child -> init, namespaces, overlay, seccomp,
# until execve), and within the launch the engine's prepare step: lo up (by an older monitor's
# engine; the init does it now) or the bridge attach
START_PHASES = ("start: before launch", "start: launch", "start: before launch: cgroup",
                "start: launch: lo up / attach")


class PhaseClock:
    """Times calls of some of an engine's own methods (wrapped on the instance, in this
    process only) into the current run's phases."""

    def __init__(self) -> None:
        self.now: dict[str, float] = {}

    def wrap(self, obj: Any, attr: str, phase: str) -> None:
        inner = getattr(obj, attr)
        now = self.now

        if inspect.iscoroutinefunction(inner):
            async def timed_async(*a: Any, **kw: Any) -> Any:
                t = time.perf_counter()
                try:
                    return await inner(*a, **kw)
                finally:
                    now[phase] = now.get(phase, 0.0) + (time.perf_counter() - t) * 1000
            setattr(obj, attr, timed_async)
        else:
            def timed_sync(*a: Any, **kw: Any) -> Any:
                t = time.perf_counter()
                try:
                    return inner(*a, **kw)
                finally:
                    now[phase] = now.get(phase, 0.0) + (time.perf_counter() - t) * 1000
            setattr(obj, attr, timed_sync)


async def engine_true(workdir: Path, runs: int, *, network: bool, warmup: int = 3,
                      probe: bool = False,
                      between: Callable[[int], None] | None = None) -> dict[str, Sample]:
    """create+start+wait+remove of /bin/true, `runs` times in one process; "total" is all
    four, as a peer's `run` (which deletes its container) is. Phases apart, and inside start.

    network=False: network_mode "none" (a fresh netns with lo up, as runc/crun make it);
    network=True: attached to a bridge network (veth, address, DNS), as `podman run`.
    probe=True: first run PROBE-like checks in one container (lo, seccomp, cgroupns, root
    fs type) and return them as the notes of a "probe" sample.
    between(i): called after run i (warm-ups included), outside every timing: the peers' runs
    interleaved with ours, so that the host's load hits both alike."""
    paths = Paths(workdir / "root", workdir / "run")
    engine = await Engine.open(paths, cgroup_parent=CGROUP_PARENT)
    out = {k: Sample() for k in ("total", *PHASES, *START_PHASES)}
    net = f"cmpbench{os.getpid()}"
    clock = PhaseClock()
    clock.wrap(engine.launcher, "launch", "start: launch")
    clock.wrap(engine.cgroups, "create", "start: before launch: cgroup")
    clock.wrap(engine.networks, "setup_loopback", "start: launch: lo up / attach")
    clock.wrap(engine.networks, "attach", "start: launch: lo up / attach")
    try:
        engine.images.ensure_busybox()
        if network:
            await engine.create_network(NetworkSpec(net))
        if probe:
            out["probe"] = Sample(note=await _probe(engine, network, net))
        for i in range(warmup + runs):
            spec = ContainerSpec(
                name=f"bench-true-{i}", image="busybox", command=("/bin/true",),
                network_mode="bridge" if network else "none",
                networks=(NetworkAttachment(net),) if network else ())
            clock.now.clear()
            t0 = time.perf_counter()
            info = await engine.create_container(spec)
            t1 = time.perf_counter()
            await engine.start_container(info.id)
            t2 = time.perf_counter()
            code = await engine.wait_container(info.id)
            t3 = time.perf_counter()
            await engine.remove_container(info.id, force=True)
            t4 = time.perf_counter()
            if code != 0:
                raise BenchError(f"/bin/true exited {code} in {info.name}")
            if i >= warmup:
                for k, a, b in (("create", t0, t1), ("start", t1, t2), ("wait", t2, t3),
                                ("remove", t3, t4), ("total", t0, t4)):
                    out[k].values.append((b - a) * 1000)
                launch = clock.now.get("start: launch", 0.0)
                out["start: before launch"].values.append((t2 - t1) * 1000 - launch)
                for k in START_PHASES[1:]:
                    out[k].values.append(clock.now.get(k, 0.0))
            if between is not None:
                between(i)
    finally:
        for c in await engine.list_containers(all=True):
            with contextlib.suppress(Exception):
                await engine.remove_container(c.id, force=True)
        if network:
            with contextlib.suppress(Exception):
                await engine.remove_network(net)
        await engine.close()
    return out


PROBE = ("cat /sys/class/net/lo/flags; grep ^Seccomp: /proc/self/status; "
         "readlink /proc/self/ns/cgroup; grep ' / / ' /proc/self/mountinfo")


async def _probe(engine: Engine, network: bool, net: str) -> str:
    """What our container gets, seen from inside (as bench.peers.probe_oci for the peers)."""
    spec = ContainerSpec(name="bench-probe", image="busybox", command=("/bin/sh", "-c", PROBE),
                         network_mode="bridge" if network else "none",
                         networks=(NetworkAttachment(net),) if network else ())
    info = await engine.create_container(spec)
    try:
        await engine.start_container(info.id)
        await engine.wait_container(info.id)
        text = "".join([e.data async for e in engine.logs(info.id)])
    finally:
        await engine.remove_container(info.id, force=True)
    lines = text.splitlines() + [""] * 4
    root = lines[3].split(" - ")[1].split()[0] if " - " in lines[3] else "?"
    return (f"lo_flags={lines[0].strip()} seccomp={lines[1].split(':')[-1].strip()} "
            f"cgroup_ns={'own' if lines[2].strip() != os.readlink('/proc/self/ns/cgroup') else 'host'} "
            f"root_fstype={root}")


# ---------------------------------------------------------------- the CLI and its daemon


@dataclass
class ComposerCli:
    """`python -m composer.cli` on a private state root; composerd started by the first call."""
    workdir: Path
    projects: set[tuple[Path, str]] = field(default_factory=set)

    @property
    def root(self) -> Path:
        return self.workdir / "root"

    @property
    def run_dir(self) -> Path:
        return self.workdir / "run"

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ, COMPOSER_ROOT=str(self.root), COMPOSER_RUN=str(self.run_dir),
                   COMPOSER_CGROUP_PARENT=CGROUP_PARENT,
                   PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p))
        # the CLI as installed, its modules byte-compiled (pip does it): with a
        # PYTHONDONTWRITEBYTECODE=1 from the caller's environment every command compiled the
        # ~70 modules it imports from source again (~50-60 ms of each `up`, `down`, `ps`)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        return env

    def __call__(self, file: Path, project: str, *verb: str, timeout: float = 300) -> float:
        """Run one CLI command; wall time in ms. Raises BenchError on a non-zero exit."""
        self.projects.add((file, project))
        argv = [sys.executable, "-m", "composer.cli", "-f", str(file), "-p", project, *verb]
        t = time.perf_counter()
        p = subprocess.run(argv, env=self.env, cwd=REPO, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout)
        dt = (time.perf_counter() - t) * 1000
        if p.returncode != 0:
            raise BenchError(f"composer {' '.join(verb)} ({project}) exited {p.returncode}: "
                             f"{p.stderr.decode(errors='replace').strip()[-400:]}")
        return dt

    def output(self, file: Path, project: str, *verb: str, timeout: float = 60) -> str:
        """One CLI command's stdout (not timed: what the bench reads, e.g. `events --json`)."""
        argv = [sys.executable, "-m", "composer.cli", "-f", str(file), "-p", project, *verb]
        p = subprocess.run(argv, env=self.env, cwd=REPO, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=timeout)
        if p.returncode != 0:
            raise BenchError(f"composer {' '.join(verb)} ({project}) exited {p.returncode}: "
                             f"{p.stderr.decode(errors='replace').strip()[-400:]}")
        return p.stdout.decode()

    def bare(self, *argv: str, timeout: float = 60) -> float:
        """`composer ARGV` with no stack options (`--help`, `version`); wall time in ms."""
        t = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "composer.cli", *argv], env=self.env,
                           cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=timeout)
        dt = (time.perf_counter() - t) * 1000
        if p.returncode != 0:
            raise BenchError(f"composer {' '.join(argv)} exited {p.returncode}: "
                             f"{p.stderr.decode(errors='replace').strip()[-400:]}")
        return dt

    def daemon_pid(self) -> int | None:
        try:
            return int((self.run_dir / "composerd.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def close(self) -> list[str]:
        """down every project, stop composerd by its pid, and check what is left; returns
        the leftovers it found (and removed)."""
        for file, project in sorted(self.projects):
            with contextlib.suppress(BenchError, subprocess.TimeoutExpired):
                self(file, project, "down", "-t", "1")
        pid = self.daemon_pid()
        if pid is not None:
            stop_pid(pid)
        leftovers = cleanup_state(self.root, self.run_dir, self.workdir)
        links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
        for _, project in sorted(self.projects):
            bridge = bridge_of(project)
            if f" {bridge}:" in links:
                leftovers.append(f"bridge {bridge}")
                subprocess.run(["ip", "link", "del", bridge], capture_output=True)
        return leftovers


def stop_pid(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM, wait, SIGKILL: the one process `pid`."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            if _zombie(pid):
                return
            time.sleep(0.02)
        os.kill(pid, signal.SIGKILL)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def processes_under(marker: str) -> list[int]:
    """Processes whose command line mentions `marker` (our private run dir)."""
    out = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmd:
            out.append(int(proc.name))
    return out


def cleanup_state(root: Path, run: Path, workdir: Path) -> list[str]:
    """Remove our private state root, run dir and cgroups; report anything found left over
    (leftover processes, mounts, the nft table, bridges)."""
    leftovers = []
    for pid in processes_under(str(run)):
        leftovers.append(f"process {pid}")
        stop_pid(pid, 2.0)
    prefix = str(workdir).rstrip("/") + "/"
    with open("/proc/self/mounts") as f:
        mounts = [line.split()[1] for line in f if line.split()[1].startswith(prefix)]
    for m in sorted(mounts, key=len, reverse=True):
        leftovers.append(f"mount {m}")
        subprocess.run(["umount", "-l", m], capture_output=True)
    table = table_name(root)
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    if f"table ip {table}" in tables.splitlines():
        leftovers.append(f"nft table {table}")
        subprocess.run(["nft", "delete", "table", "ip", table], capture_output=True)
    leftovers += remove_cgroup_parent()
    shutil.rmtree(workdir, ignore_errors=True)
    return leftovers


def remove_cgroup_parent() -> list[str]:
    """rmdir what is left under this run's CGROUP_PARENT; returns it (a leftover is ours)."""
    left = []
    for d in CGROUP_ROOT.glob(f"*/{CGROUP_PARENT}"):
        for sub in sorted((p for p in d.iterdir() if p.is_dir()), reverse=True):
            left.append(f"cgroup {sub}")
            with contextlib.suppress(OSError):
                sub.rmdir()
        with contextlib.suppress(OSError):
            d.rmdir()
    return left


def bridge_of(project: str) -> str:
    return names.bridge_name(f"{project}_default")
