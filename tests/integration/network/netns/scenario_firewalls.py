"""Composer networks beside podman's netavark, an nftables-only host firewall, an iptables
FORWARD DROP without DOCKER-USER, an iptables table iptables cannot read, and without
br_netfilter. Private network namespace (see conftest.py): the other programs' states are
written under their real names, as they would be on a host.

netavark is not installed: its state is reproduced from its source (v1.4.0's iptables driver,
the one Debian 12's podman 4.3 uses, and the nftables driver of later releases), with the same
chains, rules, positions and a bridge `podman1` carrying its subnet, as after `podman run`
with one published port.
"""
from __future__ import annotations

import logging
import re
import subprocess
from pathlib import Path

import pytest

from tests.integration.network.netns.conftest import ask, sh

BRIDGE_NF = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")

NETAVARK_IPTABLES = [
    # netavark 1.4.0, src/firewall/varktables/types.rs: network podman1, 10.89.0.0/24, isolate,
    # one published port 8088 -> 10.89.0.2:80
    "-t filter -N NETAVARK_ISOLATION_1",
    "-t filter -N NETAVARK_ISOLATION_2",
    "-t filter -I FORWARD 1 -j NETAVARK_ISOLATION_1",
    "-t filter -I NETAVARK_ISOLATION_1 1 -i podman1 ! -o podman1 -j NETAVARK_ISOLATION_2",
    "-t filter -I NETAVARK_ISOLATION_2 1 -o podman1 -j DROP",
    "-t filter -N NETAVARK_FORWARD",
    "-t filter -I FORWARD 2 -m comment --comment 'netavark firewall plugin rules' -j NETAVARK_FORWARD",
    "-t filter -A NETAVARK_FORWARD -d 10.89.0.0/24 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    "-t filter -A NETAVARK_FORWARD -s 10.89.0.0/24 -j ACCEPT",
    "-t nat -N NETAVARK-1D8721804F16F",
    "-t nat -A NETAVARK-1D8721804F16F -d 10.89.0.0/24 -j ACCEPT",
    "-t nat -A NETAVARK-1D8721804F16F ! -d 224.0.0.0/4 -j MASQUERADE",
    "-t nat -A POSTROUTING -s 10.89.0.0/24 -j NETAVARK-1D8721804F16F",
    "-t nat -N NETAVARK-HOSTPORT-DNAT",
    "-t nat -N NETAVARK-HOSTPORT-SETMARK",
    "-t nat -N NETAVARK-HOSTPORT-MASQ",
    "-t nat -N NETAVARK-DN-1D8721804F16F",
    "-t nat -A PREROUTING -j NETAVARK-HOSTPORT-DNAT -m addrtype --dst-type LOCAL",
    "-t nat -A OUTPUT -j NETAVARK-HOSTPORT-DNAT -m addrtype --dst-type LOCAL",
    "-t nat -A NETAVARK-HOSTPORT-SETMARK -j MARK --set-xmark 0x2000/0x2000",
    "-t nat -A NETAVARK-HOSTPORT-MASQ -j MASQUERADE -m comment --comment 'netavark portfw masq mark' "
    "-m mark --mark 0x2000/0x2000",
    "-t nat -I POSTROUTING 1 -j NETAVARK-HOSTPORT-MASQ",
    "-t nat -A NETAVARK-DN-1D8721804F16F -j NETAVARK-HOSTPORT-SETMARK -s 10.89.0.0/24 -p tcp --dport 8088",
    "-t nat -A NETAVARK-DN-1D8721804F16F -j NETAVARK-HOSTPORT-SETMARK -s 127.0.0.1 -p tcp --dport 8088",
    "-t nat -A NETAVARK-DN-1D8721804F16F -j DNAT -p tcp --to-destination 10.89.0.2:80 --destination-port 8088",
    "-t nat -A NETAVARK-HOSTPORT-DNAT -j NETAVARK-DN-1D8721804F16F -p tcp --dport 8088 "
    "-m comment --comment 'dnat name: podman1 id: 4f8c1e0e'",
]

# netavark's nftables driver (src/firewall/nft.rs), same network
NETAVARK_NFT = """
table inet netavark {
  chain INPUT {
    type filter hook input priority filter; policy accept;
    ip saddr 10.89.0.0/24 meta l4proto { tcp, udp } th dport 53 accept
  }
  chain FORWARD {
    type filter hook forward priority filter; policy accept;
    ct state invalid drop
    ct mark & 0x00001000 == 0x00001000 accept
    jump NETAVARK-ISOLATION-1
    ip daddr 10.89.0.0/24 ct state established,related accept
    ip saddr 10.89.0.0/24 accept
  }
  chain POSTROUTING {
    type nat hook postrouting priority srcnat; policy accept;
    meta mark & 0x00002000 == 0x00002000 masquerade
    ip saddr 10.89.0.0/24 jump nv_1d872180_10_89_0_0_nm24
  }
  chain PREROUTING {
    type nat hook prerouting priority dstnat; policy accept;
    fib daddr type local jump NETAVARK-HOSTPORT-DNAT
  }
  chain OUTPUT {
    type nat hook output priority -100; policy accept;
    fib daddr type local jump NETAVARK-HOSTPORT-DNAT
  }
  chain NETAVARK-HOSTPORT-DNAT {
    tcp dport 8089 jump nv_1d872180_10_89_0_0_nm24_dnat
  }
  chain NETAVARK-HOSTPORT-SETMARK {
    meta mark set meta mark | 0x00002000
  }
  chain NETAVARK-ISOLATION-1 {
    iifname "podman1" oifname != "podman1" jump NETAVARK-ISOLATION-3
  }
  chain NETAVARK-ISOLATION-2 {
    oifname "podman1" drop
  }
  chain NETAVARK-ISOLATION-3 {
    jump NETAVARK-ISOLATION-2
  }
  chain nv_1d872180_10_89_0_0_nm24 {
    ip daddr 10.89.0.0/24 accept
    ip daddr != 224.0.0.0/4 masquerade
  }
  chain nv_1d872180_10_89_0_0_nm24_dnat {
    ip saddr 10.89.0.0/24 tcp dport 8089 jump NETAVARK-HOSTPORT-SETMARK
    ip saddr 127.0.0.1 tcp dport 8089 jump NETAVARK-HOSTPORT-SETMARK
    tcp dport 8089 dnat ip to 10.89.0.2:80
  }
}
"""

# Debian's /etc/nftables.conf, with the forward policy turned to drop as a hardened host has it
HOST_NFT = """
table inet filter {
  chain input {
    type filter hook input priority filter;
  }
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
  }
  chain output {
    type filter hook output priority filter;
  }
}
"""


def iptables(*spec: str) -> None:
    import shlex

    for line in spec:
        sh("iptables", "-w", *shlex.split(line))


def iptables_save() -> str:
    """iptables-save without comments and counters: what the rules are."""
    out = sh("iptables-save")
    return "\n".join(re.sub(r" \[\d+:\d+\]$", "", line) for line in out.splitlines() if not line.startswith("#"))


def nft_table(family: str, name: str) -> str:
    return sh("nft", "list", "table", family, name)


def advice(warning: str) -> str:
    return warning.rsplit(": ", 1)[1]


@pytest.fixture
def podman_bridge():
    sh("ip", "link", "add", "podman1", "type", "bridge")
    sh("ip", "addr", "add", "10.89.0.1/24", "dev", "podman1")
    sh("ip", "link", "set", "podman1", "up")
    yield
    sh("ip", "link", "del", "podman1")


@pytest.fixture
def restore_iptables():
    """Whatever a test does to the iptables/nft state of this namespace, undo it."""
    saved = sh("iptables-save")
    yield
    sh("nft", "flush", "ruleset")
    sh("iptables-restore", stdin=saved)


async def test_plain_host(scene, caplog) -> None:
    caplog.set_level(logging.INFO, logger="runtime.network")
    s = await scene("plain").create()
    assert s.warnings == []
    await s.start()
    await s.verify()
    await s.teardown()
    assert "br_netfilter" not in caplog.text  # active here


async def test_beside_netavark_both_drivers(scene, podman_bridge, restore_iptables) -> None:
    iptables(*NETAVARK_IPTABLES)
    sh("nft", "-f", "-", stdin=NETAVARK_NFT)
    ipt_before, nft_before = iptables_save(), nft_table("inet", "netavark")
    s = await scene("nvk").create()
    assert s.warnings == []  # nothing of netavark's drops our traffic
    await s.start()
    await s.verify()
    assert nft_table("inet", "netavark") == nft_before
    await s.teardown()
    assert iptables_save() == ipt_before  # not one rule of netavark's touched, none of ours left
    assert nft_table("inet", "netavark") == nft_before


async def test_nftables_only_firewall_with_forward_drop(scene, restore_iptables, caplog) -> None:
    sh("nft", "-f", "-", stdin=HOST_NFT)
    host_table = nft_table("inet", "filter")
    s = await scene("nftfw").create()
    assert s.front is not None and s.back is not None
    # one line per network, naming the chain and the rules to add there
    assert len(s.front.warnings) == 1 and len(s.back.warnings) == 1, s.warnings
    front, back = s.front.warnings[0], s.back.warnings[0]
    assert 'the nft chain "inet filter forward" has policy drop' in front and s.front.bridge in front
    assert advice(front) == (
        f'iifname "{s.front.bridge}" accept; oifname "{s.front.bridge}" ct state established,related accept; '
        f'oifname "{s.front.bridge}" ct status dnat accept'
    )
    assert advice(back) == f'iifname "{s.back.bridge}" oifname "{s.back.bridge}" accept'
    assert front in caplog.text  # also in the daemon's log
    assert nft_table("inet", "filter") == host_table  # composer added nothing there
    await s.start()
    # the line is true: the host's chain drops the traffic
    rc, _ = await ask(s.pids["cli"], s.uplink.internet_ip, 8080, timeout=1.5)
    assert rc != 0
    # and its advice is enough: added as the user would, every property holds
    for line in (front, back):
        for rule in advice(line).split("; "):
            sh("nft", "add", "rule", "inet", "filter", "forward", *rule.split())
    await s.verify()
    # answered: the next `up` (create again) has nothing more to say
    assert (await s.manager.create(s.front.spec)).warnings == ()
    assert (await s.manager.create(s.back.spec)).warnings == ()
    await s.teardown()
    assert "composer" not in sh("nft", "list", "ruleset")


async def test_iptables_forward_drop_without_docker_user(scene, restore_iptables) -> None:
    iptables("-P FORWARD DROP")
    before = iptables_save()
    s = await scene("fwdrop").create()
    assert s.front is not None and s.back is not None
    assert len(s.front.warnings) == 1 and len(s.back.warnings) == 1, s.warnings
    front = s.front.warnings[0]
    assert "the iptables FORWARD chain has policy DROP and there is no DOCKER-USER chain" in front
    assert advice(front).startswith(f"iptables -I FORWARD -i {s.front.bridge} -j ACCEPT; ")
    assert iptables_save() == before  # composer changed nothing of iptables'
    await s.start()
    rc, _ = await ask(s.pids["cli"], s.uplink.internet_ip, 8080, timeout=1.5)
    assert rc != 0  # dropped, as the line says
    for line in s.warnings:
        for cmd in advice(line).split("; "):
            sh(*cmd.split())
    await s.verify()
    assert (await s.manager.create(s.front.spec)).warnings == ()
    assert (await s.manager.create(s.back.spec)).warnings == ()
    await s.teardown()


async def test_docker_user_not_reached_from_forward(scene, restore_iptables) -> None:
    # moby#48560: a DOCKER-USER chain restored from a rules file before dockerd starts may be
    # left out of FORWARD; our rules there would do nothing, so composer says so instead
    iptables("-P FORWARD DROP", "-N DOCKER-USER", "-A DOCKER-USER -j RETURN")
    s = await scene("unreached").create()
    assert s.front is not None
    assert len(s.front.warnings) == 1
    assert "its DOCKER-USER chain is not reached from FORWARD" in s.front.warnings[0]
    await s.teardown()
    assert "composer" not in iptables_save()


async def test_iptables_cannot_read_its_table(scene, restore_iptables) -> None:
    # a native nft rule in iptables-nft's FORWARD (as some guides suggest) makes iptables
    # refuse the whole table: composer cannot know or use DOCKER-USER, and says so
    iptables("-P FORWARD DROP", "-N DOCKER-USER", "-A DOCKER-USER -j RETURN", "-I FORWARD -j DOCKER-USER")
    sh("nft", "insert", "rule", "ip", "filter", "FORWARD", "iifname", "podman9", "ct", "state", "new", "accept")
    assert subprocess.run(["iptables", "-S"], capture_output=True).returncode != 0
    s = await scene("unread").create()
    assert s.front is not None
    assert len(s.front.warnings) == 1
    line = s.front.warnings[0]
    assert line.startswith("cannot read the iptables filter table (iptables v")
    assert 'its FORWARD chain ("ip filter FORWARD") has policy drop' in line
    assert advice(line).startswith(f'iifname "{s.front.bridge}" accept; ')
    assert "composer" not in sh("nft", "list", "chain", "ip", "filter", "DOCKER-USER")
    await s.teardown()


async def test_no_br_netfilter(scene, caplog) -> None:
    caplog.set_level(logging.INFO, logger="runtime.network")
    BRIDGE_NF.write_text("0")  # this namespace only: as a host where br_netfilter is not loaded
    try:
        s = await scene("nobrnf").create()
        assert s.warnings == []
        await s.start()
        await s.verify()  # hairpin to a published port included: masqueraded
        await s.teardown()
    finally:
        BRIDGE_NF.write_text("1")
    lines = [r.getMessage() for r in caplog.records if "br_netfilter" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("br_netfilter is not active here"), lines
