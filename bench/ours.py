"""Our side of the scenarios: the Engine API in-process, and the `composer` CLI with its
own composerd on a private state root — both cleaned up to the last cgroup and mount."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.stats import Sample
from runtime.engine import Engine
from runtime.network import names
from runtime.network.firewall import table_name
from runtime.paths import Paths
from runtime.types import ContainerSpec, NetworkAttachment, NetworkSpec

REPO = Path(__file__).resolve().parents[1]
CGROUP_PARENT = "composer-bench"
CGROUP_ROOT = Path("/sys/fs/cgroup")


class BenchError(RuntimeError):
    pass


# ---------------------------------------------------------------- scenario 1: Engine API


async def engine_true(workdir: Path, runs: int, *, network: bool, warmup: int = 3) -> dict[str, Sample]:
    """create+start+wait of /bin/true, then remove, `runs` times in one process.

    network=False: network_mode "none" (a fresh netns with lo, as `runc spec` gives);
    network=True: attached to a bridge network (veth, address, DNS), as `podman run`."""
    paths = Paths(workdir / "root", workdir / "run")
    engine = await Engine.open(paths, cgroup_parent=CGROUP_PARENT)
    out = {k: Sample() for k in ("create", "start", "wait", "total", "remove")}
    net = f"cmpbench{os.getpid()}"
    try:
        engine.images.ensure_busybox()
        if network:
            await engine.create_network(NetworkSpec(net))
        for i in range(warmup + runs):
            spec = ContainerSpec(
                name=f"bench-true-{i}", image="busybox", command=("/bin/true",),
                network_mode="bridge" if network else "none",
                networks=(NetworkAttachment(net),) if network else ())
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
                                ("total", t0, t3), ("remove", t3, t4)):
                    out[k].values.append((b - a) * 1000)
    finally:
        for c in await engine.list_containers(all=True):
            with contextlib.suppress(Exception):
                await engine.remove_container(c.id, force=True)
        if network:
            with contextlib.suppress(Exception):
                await engine.remove_network(net)
        await engine.close()
    return out


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
        return dict(os.environ, COMPOSER_ROOT=str(self.root), COMPOSER_RUN=str(self.run_dir),
                    COMPOSER_CGROUP_PARENT=CGROUP_PARENT,
                    PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p))

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
