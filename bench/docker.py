"""Debian's docker.io (dockerd 20.10 + containerd 1.6) and docker-compose 1.29 as peers.

Run as /work/shared/PEERS.md says, apart from anything of the host's: containerd on its own
socket, state and root; dockerd on a private socket (`-H unix://<dir>/docker.sock`), data
root, exec root and pidfile, `--bip` and `--default-address-pool` on private subnets the
host does not use, the default ulimits lowered to the host's hard limits, and its container
cgroups under the bench's peer parent (removed with the other peers'). The host's
/var/run/docker.sock, /var/lib/docker and any system containerd are never used.

What dockerd changes on the host (its iptables chains and rules, `docker0`, the FORWARD
policy when forwarding was off, `ip_forward`, `bridge-nf-call-*`) is undone by the bench's
HostGuard around it; `Docker.teardown` removes the containers, stops dockerd and containerd
by their pids, ends any shim of this containerd and removes the private directories.
"""
from __future__ import annotations

import contextlib
import http.client
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench.peers import PeerError, peer_cli, pids_of
from bench.rootfs import PEER_CGROUP

BIP = "10.247.77.1/24"  # docker0
ADDRESS_POOL = "10.247.128.0/17"  # the networks docker-compose makes (a /24 each)
APT_PACKAGES = ("docker.io", "docker-compose")


def docker_cli() -> str | None:
    """Debian's docker CLI (/usr/bin/docker), not another one earlier on PATH."""
    for candidate in ("/usr/bin/docker", shutil.which("docker")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def installed() -> bool:
    return all(shutil.which(t) for t in ("dockerd", "containerd")) and docker_cli() is not None


def host_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """IPv4 networks on the host: every address's network and every route's destination."""
    nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    addrs = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True).stdout
    for line in addrs.split("\n"):
        parts = line.split()
        if "inet" in parts:
            nets.append(ipaddress.ip_interface(parts[parts.index("inet") + 1]).network)
    routes = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True,
                            text=True).stdout
    for line in routes.splitlines():
        first = line.split()[0] if line.split() else ""
        if first in ("local", "broadcast", "unreachable", "prohibit", "blackhole"):
            first = line.split()[1]
        if first and first != "default":
            with contextlib.suppress(ValueError):
                nets.append(ipaddress.ip_network(first, strict=False))
    return nets


def check_free(*subnets: str) -> None:
    """PeerError when one of `subnets` overlaps a network of the host."""
    used = host_networks()
    for s in subnets:
        net = ipaddress.ip_network(s, strict=False)
        clash = [str(u) for u in used if u.overlaps(net) and u.prefixlen > 0]
        if clash:
            raise PeerError(f"docker subnet {net} overlaps the host's {', '.join(clash)}: "
                            "change bench/docker.py BIP / ADDRESS_POOL")


def _ping(sock: Path) -> bool:
    class Conn(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(2)
            self.sock.connect(str(sock))

    try:
        c = Conn("docker", timeout=2)
        c.request("GET", "/_ping")
        return c.getresponse().read() == b"OK"
    except OSError:
        return False


def _stop(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class Docker:
    """containerd + dockerd with every path under `dir`; `start` then `teardown`."""
    dir: Path
    containerd: subprocess.Popen[bytes] | None = None
    dockerd: subprocess.Popen[bytes] | None = None

    @property
    def sock(self) -> Path:
        return self.dir / "docker.sock"

    @property
    def containerd_sock(self) -> Path:
        return self.dir / "containerd.sock"

    @property
    def env(self) -> dict[str, str]:
        """For the docker CLI and docker-compose: our daemon, a private CLI config dir."""
        return dict(os.environ, DOCKER_HOST=f"unix://{self.sock}",
                    DOCKER_CONFIG=str(self.dir / "cli"), COMPOSE_INTERACTIVE_NO_CLI="1")

    @property
    def cli(self) -> str:
        cli = docker_cli()
        if cli is None:
            raise PeerError("docker CLI not found (apt-get install docker.io)")
        return cli

    def start(self) -> None:
        if not installed():
            raise PeerError("dockerd/containerd not installed (apt-get install docker.io)")
        check_free(BIP, ADDRESS_POOL)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "cli").mkdir(exist_ok=True)
        (self.dir / "containerd.toml").write_text(
            "version = 2\n"
            f'root = "{self.dir}/containerd-root"\nstate = "{self.dir}/containerd-state"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            f'[grpc]\n  address = "{self.containerd_sock}"\n'
            f'[ttrpc]\n  address = "{self.containerd_sock}.ttrpc"\n')
        # own sessions: a Ctrl-C at the terminal reaches the bench, whose teardown stops
        # them in order (containers, dockerd, containerd), not the daemons all at once
        self.containerd = subprocess.Popen(
            ["containerd", "-c", str(self.dir / "containerd.toml")], stdin=subprocess.DEVNULL,
            stdout=(self.dir / "containerd.log").open("ab"), stderr=subprocess.STDOUT,
            start_new_session=True)
        self._wait(self.containerd_sock.exists, "containerd", self.containerd)
        (self.dir / "daemon.json").write_text("{}\n")
        self.dockerd = subprocess.Popen(
            ["dockerd", "--config-file", str(self.dir / "daemon.json"),
             f"--containerd={self.containerd_sock}",
             "--data-root", str(self.dir / "data"), "--exec-root", str(self.dir / "exec"),
             "-H", f"unix://{self.sock}", "--pidfile", str(self.dir / "docker.pid"),
             "--bip", BIP, "--default-address-pool", f"base={ADDRESS_POOL},size=24",
             "--cgroup-parent", f"/{PEER_CGROUP}",
             "--default-ulimit", "nofile=1024:1024", "--default-ulimit", "nproc=1024:1024"],
            stdin=subprocess.DEVNULL, stdout=(self.dir / "dockerd.log").open("ab"),
            stderr=subprocess.STDOUT, start_new_session=True)
        self._wait(lambda: _ping(self.sock), "dockerd", self.dockerd)

    def _wait(self, ready: object, what: str, proc: subprocess.Popen[bytes]) -> None:
        assert callable(ready)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if ready():
                return
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        log = (self.dir / f"{what}.log").read_text(errors="replace")[-600:]
        raise PeerError(f"{what} did not start: {log}")

    def docker(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return peer_cli([self.cli, *args], self.env, check=check, timeout=timeout)

    def setup(self, tarball: Path) -> None:
        """Start the daemons and `docker import` the bench's busybox rootfs as `busybox`."""
        self.start()
        self.docker("import", str(tarball), "busybox")

    def running(self) -> int:
        return len(self.docker("ps", "-q").stdout.split())

    def teardown(self) -> list[str]:
        """Containers and networks removed, dockerd then containerd stopped by their pids,
        any shim of this containerd ended, mounts under `dir` undone, `dir` removed.
        Returns what had to be forced (a leftover is a finding, not silence)."""
        forced: list[str] = []
        if self.dockerd is not None and self.dockerd.poll() is None:
            with contextlib.suppress(PeerError, subprocess.TimeoutExpired):
                ids = self.docker("ps", "-aq", check=False).stdout.split()
                if ids:
                    self.docker("rm", "-f", *ids, check=False)
                self.docker("network", "prune", "-f", check=False)
        for proc in (self.dockerd, self.containerd):
            if proc is not None:
                _stop(proc)
        self.dockerd = self.containerd = None
        for pid in self.shim_pids():
            forced.append(f"shim {pid} killed")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        prefix = str(self.dir).rstrip("/") + "/"
        with open("/proc/self/mounts") as f:
            mounts = [line.split()[1] for line in f if line.split()[1].startswith(prefix)]
        for m in sorted(mounts, key=len, reverse=True):
            forced.append(f"mount {m}")
            subprocess.run(["umount", "-l", m], capture_output=True)
        # overlay work dirs hold d--------- entries; rm copes where rmtree may not
        subprocess.run(["rm", "-rf", str(self.dir)], capture_output=True)
        return forced

    def shim_pids(self) -> list[int]:
        """containerd-shim-runc-v2 processes of this containerd (`-address <our socket>`)."""
        return pids_of(lambda argv0: b"containerd-shim" in argv0, str(self.containerd_sock))

    def daemon_pids(self) -> dict[str, list[int]]:
        return {name: [p.pid] for name, p in (("dockerd", self.dockerd), ("containerd", self.containerd))
                if p is not None and p.poll() is None}
