"""Containers on a systemd-resolved host resolve through the real upstream, not the stub.

Installs systemd-resolved in the VM (apt): Debian's package points /etc/resolv.conf at the
stub (`nameserver 127.0.0.53`), and resolved learns the VM's upstream, QEMU's 10.0.2.3, from
systemd-networkd. A container on a bridge network then resolves deb.debian.org (a name no
hosts file knows) through the embedded DNS, which must forward it to 10.0.2.3 itself: the
proof is resolved's own statistics, which count every query the stub answers and do not move,
while the same lookup from the host through the stub does move them (the control).
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
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def resolved_queries() -> int:
    """Queries resolved answered (cache hits + misses), from `resolvectl statistics`."""
    out = run("resolvectl", "statistics")
    hits = int(re.search(r"Cache Hits:\s*(\d+)", out).group(1))  # type: ignore[union-attr]
    misses = int(re.search(r"Cache Misses:\s*(\d+)", out).group(1))  # type: ignore[union-attr]
    return hits + misses


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


async def output(eng: Engine, name: str) -> str:
    await eng.wait_container(name)
    return "".join([line.data async for line in eng.logs(name)])


async def test_container_resolves_through_resolveds_upstream(resolved: None, engine: Engine) -> None:  # noqa: F811
    # the host as systemd-resolved leaves it
    assert re.findall(r"^nameserver (\S+)", Path("/etc/resolv.conf").read_text(), re.M) == ["127.0.0.53"]
    assert "nameserver 10.0.2.3" in Path("/run/systemd/resolve/resolv.conf").read_text()
    assert NAME not in Path("/etc/hosts").read_text()

    net = await engine.create_network(NetworkSpec(name="hr_net"))
    before = resolved_queries()
    await engine.create_container(ContainerSpec(
        name="hr-dig-1", image="busybox", networks=(NetworkAttachment("hr_net"),),
        command=("sh", "-c", f"cat /etc/resolv.conf; nslookup {NAME}")))
    await engine.start_container("hr-dig-1")
    out = await output(engine, "hr-dig-1")
    assert f"nameserver {net.gateway}" in out  # the embedded DNS server
    assert re.search(rf"Name:\s*{re.escape(NAME)}", out) and re.search(r"Address:\s*\d+\.\d+\.\d+\.\d+", out.split(NAME, 1)[1]), out
    assert resolved_queries() == before  # the stub never saw it: it went to 10.0.2.3
    assert engine.networks.resolver.upstreams_for("hr_net", None) == ["10.0.2.3"]

    # control: the same lookup from the host, through the stub, is counted
    run("getent", "ahosts", NAME)
    assert resolved_queries() > before

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
    assert re.search(rf"Name:\s*{re.escape(NAME)}", out), out
