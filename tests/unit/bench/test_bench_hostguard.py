"""bench.hostguard: remove exactly the firewall chains a peer added, nothing else."""
from __future__ import annotations

from bench.hostguard import LINK_PATTERN, cleanup_plan, parse_rules

BEFORE = """-P PREROUTING ACCEPT
-P OUTPUT ACCEPT
-P POSTROUTING ACCEPT
-N MYCHAIN
-N DOCKER
-A POSTROUTING -j MYCHAIN
-A OUTPUT -j DOCKER
"""

AFTER = BEFORE + """-N NETAVARK-HOSTPORT-DNAT
-N NETAVARK-HOSTPORT-MASQ
-N OTHERTOOL
-A PREROUTING -m addrtype --dst-type LOCAL -j NETAVARK-HOSTPORT-DNAT
-A POSTROUTING -j NETAVARK-HOSTPORT-MASQ
-A POSTROUTING -j OTHERTOOL
-A NETAVARK-HOSTPORT-MASQ -m comment --comment "netavark portfw masq mark" -j MASQUERADE
"""


def test_parse_rules() -> None:
    r = parse_rules(BEFORE)
    assert r.chains == {"PREROUTING", "OUTPUT", "POSTROUTING", "MYCHAIN", "DOCKER"}
    assert r.rules == ("-A POSTROUTING -j MYCHAIN", "-A OUTPUT -j DOCKER")


def test_plan_removes_only_new_peer_chains_and_their_jumps() -> None:
    plan = cleanup_plan(parse_rules(BEFORE), parse_rules(AFTER))
    assert plan == [
        ["-D", "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "NETAVARK-HOSTPORT-DNAT"],
        ["-D", "POSTROUTING", "-j", "NETAVARK-HOSTPORT-MASQ"],
        ["-F", "NETAVARK-HOSTPORT-DNAT"],
        ["-F", "NETAVARK-HOSTPORT-MASQ"],
        ["-X", "NETAVARK-HOSTPORT-DNAT"],
        ["-X", "NETAVARK-HOSTPORT-MASQ"],
    ]
    flat = [" ".join(p) for p in plan]
    assert not any("OTHERTOOL" in p or "MYCHAIN" in p for p in flat)  # not a peer's
    assert not any(p.endswith("DOCKER") for p in flat)  # a peer's, but there before


def test_nothing_new_nothing_to_do() -> None:
    assert cleanup_plan(parse_rules(AFTER), parse_rules(AFTER)) == []


def test_link_pattern() -> None:
    for ok in ("docker0", "podman0", "podman12", "cni-podman1", "br-0123456789ab"):
        assert LINK_PATTERN.match(ok)
    for no in ("eth0", "cmpb1234567890", "podman", "dockerX", "veth123", "br-lan"):
        assert not LINK_PATTERN.match(no)
