"""Containers on a systemd-resolved host resolve through the real upstream, not the stub.

Installs systemd-resolved in the VM (apt): Debian's package points /etc/resolv.conf at the
stub (`nameserver 127.0.0.53`), and resolved learns the VM's upstream, QEMU's 10.0.2.3, from
systemd-networkd. A container on a bridge network then resolves deb.debian.org (a name no
hosts file knows) through the embedded DNS, which must forward it to 10.0.2.3 itself. The
proof is packets: nft counters in the VM's output hook count DNS queries sent to 10.0.2.3 and
to the stub; during the container's lookup the first moves and the second does not, while the
same lookup from the host (the control) goes to the stub.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.engine import Engine
from runtime.types import ContainerSpec, NetworkAttachment, NetworkSpec
from tests.integration.engine.conftest import engine  # noqa: F401  (the fixture)

NAME = "deb.debian.org"


def run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(argv)}: {done.stderr.strip()}"
    return done.stdout


COUNTERS = """
table inet cmpt_dnscount {
  chain out {
    type filter hook output priority filter; policy accept;
    ip daddr 10.0.2.3 udp dport 53 counter
    ip daddr 127.0.0.53 udp dport 53 counter
  }
}
"""


def queries() -> tuple[int, int]:
    """DNS packets sent so far from this host's namespace: (to 10.0.2.3, to the stub)."""
    out = run("nft", "list", "chain", "inet", "cmpt_dnscount", "out")
    found = dict(re.findall(r"ip daddr (\S+) udp dport 53 counter packets (\d+)", out))
    return int(found["10.0.2.3"]), int(found["127.0.0.53"])


@pytest.fixture
def counters() -> Iterator[None]:
    subprocess.run(["nft", "-f", "-"], input=COUNTERS, text=True, check=True)
    yield
    subprocess.run(["nft", "delete", "table", "inet", "cmpt_dnscount"], check=True)


@pytest.fixture(scope="module")
def resolved() -> Iterator[None]:
    if not shutil.which("resolvectl"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "systemd-resolved"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, capture_output=True)
    run("systemctl", "start", "systemd-resolved")
    for _ in range(100):  # resolved takes the link's DNS= from networkd's state
        upstream = Path("/run/systemd/resolve/resolv.conf")
        if upstream.exists() and "nameserver 10.0.2.3" in upstream.read_text():
            break
        time.sleep(0.1)
    yield


def answered(nslookup: str) -> bool:
    """busybox nslookup printed an IPv4 address in its answer (deb.debian.org is a CNAME: the
    `Name:` line shows the canonical name)."""
    answer = nslookup.split("Non-authoritative answer:", 1)
    return len(answer) == 2 and re.search(r"Address:\s*\d+\.\d+\.\d+\.\d+", answer[1]) is not None


async def output(eng: Engine, name: str) -> str:
    await eng.wait_container(name)
    return "".join([line.data async for line in eng.logs(name)])


async def test_container_resolves_through_resolveds_upstream(resolved: None, counters: None, engine: Engine) -> None:  # noqa: F811, E501
    # the host as systemd-resolved leaves it
    assert re.findall(r"^nameserver (\S+)", Path("/etc/resolv.conf").read_text(), re.M) == ["127.0.0.53"]
    assert "nameserver 10.0.2.3" in Path("/run/systemd/resolve/resolv.conf").read_text()
    assert NAME not in Path("/etc/hosts").read_text()

    net = await engine.create_network(NetworkSpec(name="hr_net"))
    upstream, stub = queries()
    await engine.create_container(ContainerSpec(
        name="hr-dig-1", image="busybox", networks=(NetworkAttachment("hr_net"),),
        command=("sh", "-c", f"cat /etc/resolv.conf; nslookup {NAME}")))
    await engine.start_container("hr-dig-1")
    out = await output(engine, "hr-dig-1")
    assert f"nameserver {net.gateway}" in out  # the embedded DNS server
    assert answered(out), out
    now = queries()
    assert now[0] > upstream and now[1] == stub, now  # straight to 10.0.2.3; the stub never asked
    assert engine.networks.resolver.upstreams_for("hr_net", None) == ["10.0.2.3"]

    # control: the same kind of lookup from the host (its resolv.conf, over UDP) goes to the stub
    run("busybox", "nslookup", "security.debian.org")
    assert queries()[1] > now[1]

    # network_mode none: resolved's upstream (no stub inside); host: the host's file as it is
    await engine.create_container(ContainerSpec(
        name="hr-none-1", image="busybox", network_mode="none", command=("cat", "/etc/resolv.conf")))
    await engine.start_container("hr-none-1")
    assert re.findall(r"^nameserver (\S+)", await output(engine, "hr-none-1"), re.M) == ["10.0.2.3"]
    await engine.create_container(ContainerSpec(
        name="hr-host-1", image="busybox", network_mode="host",
        command=("sh", "-c", f"cat /etc/resolv.conf; nslookup {NAME}")))
    await engine.start_container("hr-host-1")
    out = await output(engine, "hr-host-1")
    assert re.findall(r"^nameserver (\S+)", out, re.M) == ["127.0.0.53"]  # the host's loopback: works
    assert answered(out), out
