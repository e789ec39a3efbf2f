"""The peers: runc, crun, systemd-nspawn, podman, podman-compose — set up, run, cleaned up
(docker.io and docker-compose: bench/docker.py).

Facts (shared/PEERS.md): crun refuses a "hybrid" host while cgroup2 still holds hugetlb,
so runc and crun run from bench/peerns.py's server, in a mount namespace of its own with a v1
hugetlb hierarchy mounted (never on the host: composerds there would use it); podman needs its default
ulimits lowered and runc as runtime, given here through a private containers.conf and a
private storage.conf so the host's /var/lib/containers is never used.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.oci import MERGED, overlay_root
from bench.rootfs import PEER_CGROUP, Bundle
from bench.stats import Sample

CGROUP_ROOT = Path("/sys/fs/cgroup")
UNIFIED = CGROUP_ROOT / "unified"
# catatonit: podman's `--init` (`init: true`); without it podman-compose 1.0.3 still exits 0
APT_PACKAGES = ("runc", "crun", "podman", "podman-compose", "catatonit", "systemd-container",
                "docker.io", "docker-compose")
PODMAN_SUBNET = "10.231.77.0/24"  # not on this host (checked by `free_subnet`)
PEER_TOOLS = ("runc", "crun", "podman", "podman-compose", "systemd-nspawn", "dockerd",
              "containerd", "docker-compose")


class PeerError(RuntimeError):
    pass


def install_peers(log: Callable[[str], None]) -> None:
    """apt-get install the peers that are missing (Debian packages)."""
    missing = [t for t in PEER_TOOLS if shutil.which(t) is None]
    if not Path("/usr/libexec/podman/catatonit").exists():
        missing.append("catatonit")
    if not missing:
        log("peers: all installed")
        return
    log(f"peers: installing {' '.join(APT_PACKAGES)} (missing: {' '.join(missing)})")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update"], env=env, capture_output=True)
    p = subprocess.run(["apt-get", "install", "-y", *APT_PACKAGES], env=env,
                       capture_output=True, text=True)
    if p.returncode != 0:
        log(f"peers: apt-get install failed: {p.stderr.strip().splitlines()[-1:]}")


def peer_cli(argv: list[str], env: dict[str, str], *, check: bool = True,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """A peer's CLI (`podman ...`, `docker ...`) with its private environment; PeerError on a
    non-zero exit when `check`."""
    p = subprocess.run(argv, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise PeerError(f"{os.path.basename(argv[0])} {' '.join(argv[1:3])} failed: "
                        f"{p.stderr.strip()[-300:]}")
    return p


def pids_of(argv0: Callable[[bytes], bool], mark: str) -> list[int]:
    """Processes whose argv[0] passes `argv0` and whose command line names `mark` (a peer's
    private dir or socket): a peer's helpers (conmon, containerd-shim), never the host's."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmd and argv0(cmd[0]) and any(mark.encode() in c for c in cmd):
            pids.append(int(proc.name))
    return pids


def timed(argv: list[str], env: dict[str, str] | None = None, timeout: float = 120) -> float:
    """Run argv to completion; wall time in ms. Raises PeerError on a non-zero exit."""
    t = time.perf_counter()
    p = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=timeout)
    dt = (time.perf_counter() - t) * 1000
    if p.returncode != 0:
        raise PeerError(f"{' '.join(argv[:3])}... exited {p.returncode}: "
                        f"{p.stderr.decode(errors='replace').strip()[-300:]}")
    return dt


def sample(run: Callable[[int], float], runs: int, warmup: int = 2) -> Sample:
    """`run(i)` timed `runs` times after `warmup` uncounted runs; a failure ends the sample
    with a note instead of failing the bench."""
    s = Sample()
    try:
        for i in range(warmup + runs):
            ms = run(i)
            if i >= warmup:
                s.values.append(ms)
    except (PeerError, subprocess.TimeoutExpired, OSError) as e:
        s.note = f"failed: {e}"
    return s


# ---------------------------------------------------------------- cgroups of the peers


def hybrid_hugetlb() -> bool:
    """True when cgroup2 (the hybrid host's `unified`) still carries hugetlb: crun refuses."""
    try:
        return "hugetlb" in (UNIFIED / "cgroup.controllers").read_text().split()
    except OSError:
        return False


def hugetlb_lingering() -> bool:
    """True when a v1 hugetlb hierarchy still exists but is mounted nowhere: after the last
    unmount of one that had child cgroups the kernel keeps it (and hugetlb off cgroup2) for
    minutes. /proc/self/cgroup still lists it, so crun in a cgroup namespace tries to mount
    it and fails (EPERM: a new v1 hierarchy cannot be made from a non-initial cgroupns);
    mounting it again (the kernel reuses the hierarchy) is what makes crun run."""
    try:
        listed = any(line.split(":")[1] == "hugetlb"
                     for line in Path("/proc/self/cgroup").read_text().splitlines())
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except (OSError, IndexError):
        return False
    mounted = any(m.split()[2] == "cgroup" and "hugetlb" in m.split()[3].split(",") for m in mounts)
    return listed and not mounted


def rmdir_cgroups(top: Path) -> list[str]:
    """rmdir the (empty) cgroups below `top`, deepest first, then `top`; what is left."""
    for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        with contextlib.suppress(OSError):
            d.rmdir()
    try:
        top.rmdir()
    except OSError:
        return [str(top)]
    return []


def remove_peer_cgroups() -> list[str]:
    """rmdir this run's (empty) PEER_CGROUP parent in every hierarchy; returns what is left."""
    return [x for d in CGROUP_ROOT.glob(f"*/{PEER_CGROUP}") for x in rmdir_cgroups(d)]


# ---------------------------------------------------------------- scenario 1: one-shot runs


def oci_once(tool: str, bundle: Bundle, state: Path, i: int) -> float:
    """One `<tool> run` of /bin/true on the bundle (`run` without -d deletes the container)
    on a fresh overlay root mounted before and unmounted and removed after: all timed, ms."""
    state.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    with overlay_root(bundle.rootfs, bundle.dir, f"{tool}-{i}"):
        timed([tool, "--root", str(state), "run", "--bundle", str(bundle.dir),
               f"cmpbench-{tool}-{os.getpid()}-{i}"])
    return (time.perf_counter() - t) * 1000


@dataclass
class Interleaved:
    """Peers' runs called between ours (`__call__(i)` after our run i): one run of each
    tool per round, `warmup` rounds uncounted; a tool that fails gets its note and leaves."""
    runs: dict[str, Callable[[int], float]]
    warmup: int
    samples: dict[str, Sample] = field(default_factory=dict)

    def __call__(self, i: int) -> None:
        for tool, run in self.runs.items():
            s = self.samples.setdefault(tool, Sample())
            if s.note:
                continue
            try:
                ms = run(i)
            except (PeerError, subprocess.TimeoutExpired, OSError) as e:
                s.note = f"failed: {e}"
                continue
            if i >= self.warmup:
                s.values.append(ms)


PROBE = ("cat /sys/class/net/lo/flags; grep ^Seccomp: /proc/self/status; "
         "readlink /proc/self/ns/cgroup; grep ' / / ' /proc/self/mountinfo; cat /etc/hostname")


def probe_oci(tool: str, bundle: Bundle, state: Path) -> dict[str, str]:
    """What the bundle gives a container under `tool`, seen from inside: lo's flags (0x9 = up),
    the seccomp mode (2 = filter), the cgroup namespace (beside ours), the root mount's type."""
    state.mkdir(parents=True, exist_ok=True)
    d = bundle.dir / f"probe-{tool}"
    d.mkdir(exist_ok=True)
    cfg = json.loads((bundle.dir / "config.json").read_text())
    cfg["process"]["args"] = ["/bin/sh", "-c", PROBE]
    cfg["root"]["path"] = str(bundle.dir / MERGED)
    (d / "config.json").write_text(json.dumps(cfg))
    with overlay_root(bundle.rootfs, bundle.dir, f"probe-{tool}"):
        p = subprocess.run([tool, "--root", str(state), "run", "--bundle", str(d),
                            f"cmpbench-probe-{tool}-{os.getpid()}"], capture_output=True,
                           text=True, stdin=subprocess.DEVNULL, timeout=60)
    if p.returncode != 0:
        raise PeerError(f"{tool} probe exited {p.returncode}: {p.stderr.strip()[-300:]}")
    lines = p.stdout.splitlines() + [""] * 5
    root = lines[3].split(" - ")[1].split()[0] if " - " in lines[3] else "?"
    return {"lo_flags": lines[0].strip(), "seccomp": lines[1].split(":")[-1].strip(),
            "cgroup_ns": lines[2].strip(),
            "host_cgroup_ns": os.readlink("/proc/self/ns/cgroup"), "root_fstype": root,
            "hostname": lines[4].strip()}


def run_nspawn(bundle: Bundle, runs: int) -> Sample:
    nspawn_dir = Path("/run/systemd/nspawn")
    existed = nspawn_dir.exists()
    try:
        return sample(lambda i: timed(["systemd-nspawn", "--register=no", "--keep-unit", "-q",
                                       "-D", str(bundle.rootfs), "/bin/true"]), runs)
    finally:
        if not existed:  # it leaves empty propagate/ and locks/ behind
            for d in sorted(nspawn_dir.glob("**/"), key=lambda p: -len(p.parts)):
                with contextlib.suppress(OSError):
                    d.rmdir()


# ---------------------------------------------------------------- podman


@dataclass(frozen=True)
class Podman:
    """A podman with private storage and configuration under `dir`."""
    dir: Path

    @property
    def env(self) -> dict[str, str]:
        return dict(os.environ, CONTAINERS_STORAGE_CONF=str(self.dir / "storage.conf"),
                    CONTAINERS_CONF=str(self.dir / "containers.conf"))

    def write_config(self) -> None:
        for sub in ("graph", "runroot", "tmp", "volumes", "networks"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        (self.dir / "storage.conf").write_text(
            '[storage]\ndriver = "overlay"\n'
            f'graphroot = "{self.dir / "graph"}"\nrunroot = "{self.dir / "runroot"}"\n')
        # static_dir is left at its default (under graphroot): setting it made every
        # `podman run --rm` hang 20 s for the "conmon timeout" with podman 4.3.1.
        (self.dir / "containers.conf").write_text(
            '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n'
            f'[network]\nnetwork_config_dir = "{self.dir / "networks"}"\n'
            f'default_subnet = "{PODMAN_SUBNET}"\n'
            '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
            f'tmp_dir = "{self.dir / "tmp"}"\nvolume_path = "{self.dir / "volumes"}"\n')

    def podman(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return peer_cli(["podman", *args], self.env, check=check, timeout=300)

    def setup(self, tarball: Path) -> None:
        self.write_config()
        self.podman("import", str(tarball), "busybox")

    def running(self) -> int:
        return len(self.podman("ps", "-q").stdout.split())

    def teardown(self) -> None:
        """Every container gone, storage reset (unmounts its overlays), conmons ended."""
        self.podman("rm", "-af", "-t", "0", check=False)
        self.podman("system", "reset", "-f", check=False)
        for pid in self.conmon_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)

    def conmon_pids(self) -> list[int]:
        """conmon processes serving this podman (their command line names our runroot)."""
        return pids_of(lambda argv0: argv0.endswith(b"conmon"), str(self.dir))


def run_podman(pm: Podman, runs: int, network_none: bool) -> Sample:
    argv = ["podman", "run", "--rm", *(["--network", "none"] if network_none else []),
            "busybox", "/bin/true"]
    return sample(lambda i: timed(argv, env=pm.env), runs)
