"""Composer networks beside Debian's docker.io (dockerd 20.10), while it runs and after it stops.

dockerd is started as /work/shared/PEERS.md describes (containerd first; private data root,
exec root, socket and pidfile; a private --bip subnet) on a "host" that booted with
net.ipv4.ip_forward=0: it turns forwarding on, sets the iptables FORWARD policy to DROP,
makes bridged frames pass iptables and creates its chains, DOCKER-USER among them. Private
network namespace (see conftest.py); still, the fixture undoes exactly what dockerd changed
(its rules and chains, the FORWARD policy, docker0, ip_forward, bridge-nf-call-*), so the
tests after it see a fresh host again.
"""
from __future__ import annotations

import http.client
import logging
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from runtime.network.hostfw import IptablesFilter
from tests.integration.network.netns.conftest import sh

BIP = "10.203.77.1/24"  # docker0: a private subnet the (private) host does not use
SYSCTLS = ["/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/bridge/bridge-nf-call-iptables",
           "/proc/sys/net/bridge/bridge-nf-call-ip6tables"]


class _UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("docker", timeout=2)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(2)
        self.sock.connect(self.path)


def _ping(sock: Path) -> bool:
    conn = _UnixHTTP(str(sock))
    try:
        conn.request("GET", "/_ping")
        return conn.getresponse().read() == b"OK"
    except OSError:
        return False
    finally:
        conn.close()


def filter_table() -> IptablesFilter:
    return IptablesFilter.parse(sh("iptables", "-w", "-S"))


def saved_rules() -> dict[str, list[str]]:
    """iptables-save as {table: ["-A ..." / "-N ..." / "-P ..." lines]} (no counters)."""
    out: dict[str, list[str]] = {}
    for table in ("filter", "nat"):
        out[table] = sh("iptables", "-w", "-t", table, "-S").splitlines()
    return out


@dataclass
class Dockerd:
    base: Path
    containerd: subprocess.Popen[bytes] | None = None
    proc: subprocess.Popen[bytes] | None = None
    start_seconds: list[float] = field(default_factory=list)

    @property
    def sock(self) -> Path:
        return self.base / "docker.sock"

    def start(self) -> None:
        for tool in ("dockerd", "containerd"):
            if shutil.which(tool) is None:
                pytest.fail(f"{tool} not found: install docker.io (COMPOSER_TEST_PEERS=1 bash scripts/install-deps.sh)")
        if self.containerd is None:
            (self.base / "containerd.toml").write_text(
                "version = 2\n"
                f'root = "{self.base}/containerd-root"\nstate = "{self.base}/containerd-state"\n'
                'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
                f'[grpc]\n  address = "{self.base}/containerd.sock"\n'
            )
            with (self.base / "containerd.log").open("ab") as log:  # the child keeps its copy
                self.containerd = subprocess.Popen(
                    ["containerd", "-c", str(self.base / "containerd.toml")],
                    stdout=log, stderr=subprocess.STDOUT)
            self._wait(lambda: (self.base / "containerd.sock").exists(), "containerd")
        (self.base / "daemon.json").write_text("{}\n")
        t0 = time.monotonic()
        with (self.base / "dockerd.log").open("ab") as log:  # the child keeps its copy
            self.proc = subprocess.Popen(
                ["dockerd", "--config-file", str(self.base / "daemon.json"),
                 f"--containerd={self.base}/containerd.sock",
                 "--data-root", str(self.base / "data"), "--exec-root", str(self.base / "exec"),
                 "-H", f"unix://{self.sock}", "--pidfile", str(self.base / "docker.pid"),
                 "--bip", BIP, "--default-ulimit", "nofile=1024:1024",
                 "--default-ulimit", "nproc=1024:1024"],
                stdout=log, stderr=subprocess.STDOUT)
        self._wait(lambda: _ping(self.sock), "dockerd")
        self.start_seconds.append(time.monotonic() - t0)

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None

    def close(self) -> None:
        self.stop()
        if self.containerd is not None:
            _stop(self.containerd)
            self.containerd = None

    def _wait(self, ready, what: str) -> None:  # type: ignore[no-untyped-def]
        for _ in range(300):
            if ready():
                return
            time.sleep(0.05)
        log = (self.base / f"{what}.log").read_text()[-2000:]
        raise AssertionError(f"{what} did not start:\n{log}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def undo_dockerd(before: dict[str, list[str]], had_docker0: bool) -> None:
    """Remove exactly what dockerd added: its rules (those naming a DOCKER chain, docker0 or
    its subnet), then its chains, then the built-in policies it changed; and docker0."""
    after = saved_rules()
    bip_net = "10.203.77.0/24"
    for table in ("filter", "nat"):
        old = set(before[table])
        for line in after[table]:
            if line in old or not line.startswith("-A "):
                continue
            if "DOCKER" in line or "docker0" in line or bip_net in line:
                sh("iptables", "-w", "-t", table, "-D", *shlex.split(line)[1:])
        for line in after[table]:
            if line.startswith("-N DOCKER") and line not in old:
                sh("iptables", "-w", "-t", table, "-X", line.split()[1])
        for line in before[table]:
            if line.startswith("-P ") and line not in after[table]:
                sh("iptables", "-w", "-t", table, *line.split())
    if not had_docker0:
        subprocess.run(["ip", "link", "del", "docker0"], capture_output=True)


@pytest.fixture
def dockerd(tmp_path: Path) -> Iterator[Dockerd]:
    """A stopped dockerd on a host freshly booted (ip_forward=0); undone afterwards."""
    sysctls = {p: Path(p).read_text() for p in SYSCTLS}
    rules = saved_rules()
    had_docker0 = Path("/sys/class/net/docker0").exists()
    Path(SYSCTLS[0]).write_text("0")  # as a host boots
    d = Dockerd(tmp_path / "docker")
    d.base.mkdir()
    try:
        yield d
    finally:
        d.close()
        undo_dockerd(rules, had_docker0)
        for p, value in sysctls.items():
            Path(p).write_text(value)
        assert saved_rules() == rules
        subprocess.run(["rm", "-rf", str(d.base)], check=False)  # overlay/snapshot dirs: rm handles them


def docker_user(comment_of: str | None = None) -> list[str]:
    rules = filter_table().chain_rules("DOCKER-USER")
    return rules if comment_of is None else [r for r in rules if f"--comment {comment_of} " in r]


def without_ours(rules: dict[str, list[str]], table: str) -> dict[str, list[str]]:
    return {t: [r for r in lines if f"--comment {table} " not in r] for t, lines in rules.items()}


async def test_networks_beside_dockerd_and_after_it_stops(dockerd: Dockerd, manager, scene) -> None:
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    dockerd.start()
    fw = filter_table()
    assert fw.policies["FORWARD"] == "DROP" and fw.docker_user_usable()  # what users get
    assert Path(SYSCTLS[0]).read_text().strip() == "1"
    assert Path(SYSCTLS[1]).read_text().strip() == "1"
    docker_state = saved_rules()

    # while dockerd runs: a stack's networks, with our accept rules in DOCKER-USER
    running = await scene("dkr").create()
    assert running.warnings == []
    ours = docker_user(manager.table)
    assert len(ours) == 4, ours  # 3 for the normal network, 1 for the internal one
    assert docker_user()[:4] == ours  # at the top, before Docker's RETURN
    await running.start()
    await running.verify()
    timings["with dockerd"] = time.monotonic() - t0

    # nothing of Docker's was changed: its rules, chains and policy are as it made them
    assert without_ours(saved_rules(), manager.table) == docker_state

    # dockerd stops: the FORWARD policy stays DROP and the chains stay; our networks work on
    t1 = time.monotonic()
    dockerd.stop()
    assert filter_table().policies["FORWARD"] == "DROP"
    await running.verify()
    # a network made after dockerd stopped works too
    after = await scene("gone").create()
    assert after.warnings == []
    assert len(docker_user(manager.table)) == 8
    await after.start()
    await after.verify()
    await after.teardown()
    await running.teardown()
    timings["after dockerd stopped"] = time.monotonic() - t1
    # every rule of ours left with its network; Docker's state is as dockerd left it
    assert docker_user(manager.table) == []
    assert saved_rules() == docker_state
    print(f"dockerd started in {dockerd.start_seconds[0]:.2f}s; " +
          ", ".join(f"{k}: {v:.1f}s" for k, v in timings.items()))


async def test_docker_started_after_our_networks(dockerd: Dockerd, manager, scene, caplog) -> None:
    """Forwarding was on (ours) when dockerd started, so it leaves FORWARD alone; when our last
    network goes, ip_forward stays on for Docker instead of being turned off under it. A
    later `up` (create of an existing network) adds our rules to the DOCKER-USER chain that
    dockerd made meanwhile."""
    caplog.set_level(logging.INFO, logger="runtime.network")
    s = await scene("early").create()
    assert Path(SYSCTLS[0]).read_text().strip() == "1"
    dockerd.start()
    fw = filter_table()
    assert fw.policies["FORWARD"] == "ACCEPT" and "DOCKER-USER" in fw.chains
    assert docker_user(manager.table) == []  # dockerd came after our last sync
    assert s.front is not None
    again = await manager.create(s.front.spec)  # what `composer up` does for an existing network
    assert again.warnings == () and len(docker_user(manager.table)) == 4  # both networks' rules
    await s.start()
    await s.verify()
    await s.teardown()
    assert docker_user(manager.table) == []
    # our record said 0, but Docker runs on forwarding: it stays on
    assert Path(SYSCTLS[0]).read_text().strip() == "1"
    assert "net.ipv4.ip_forward stays on: other engines' firewall state is on this host (DOCKER" in caplog.text
    assert not list(Path("/run").glob("composer.ip_forward*"))
    dockerd.stop()
