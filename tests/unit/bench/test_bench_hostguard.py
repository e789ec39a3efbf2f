"""bench.hostguard: remove exactly the firewall chains a peer added, nothing else."""
from __future__ import annotations

from bench.hostguard import LINK_PATTERN, cleanup_plan, parse_rules, table_is_empty

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


DOCKERD_BEFORE = """-P INPUT ACCEPT
-P FORWARD ACCEPT
-P OUTPUT ACCEPT
-A FORWARD -i cmpb123 -j ACCEPT
"""

DOCKERD_AFTER = """-P INPUT ACCEPT
-P FORWARD DROP
-P OUTPUT ACCEPT
-N DOCKER
-N DOCKER-USER
-A FORWARD -i cmpb123 -j ACCEPT
-A FORWARD -j DOCKER-USER
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A FORWARD -i docker00 -j ACCEPT
-A DOCKER-USER -j RETURN
"""


def test_plan_undoes_dockerd_rules_naming_its_bridge_and_the_forward_policy() -> None:
    """dockerd's rules in built-in chains that name docker0 go, the FORWARD policy it set to
    DROP goes back to ACCEPT; a rule naming another link (even one starting `docker0`) stays."""
    plan = cleanup_plan(parse_rules(DOCKERD_BEFORE), parse_rules(DOCKERD_AFTER),
                        frozenset({"docker0", "10.247.77.0/24"}))
    assert plan == [
        ["-D", "FORWARD", "-j", "DOCKER-USER"],
        ["-D", "FORWARD", "-o", "docker0", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"],
        ["-D", "FORWARD", "-i", "docker0", "!", "-o", "docker0", "-j", "ACCEPT"],
        ["-F", "DOCKER"], ["-F", "DOCKER-USER"], ["-X", "DOCKER"], ["-X", "DOCKER-USER"],
        ["-P", "FORWARD", "ACCEPT"],
    ]


def test_nat_masquerade_of_the_bip_subnet_goes() -> None:
    before = "-P POSTROUTING ACCEPT\n-A POSTROUTING -s 10.1.0.0/24 -j MASQUERADE\n"
    after = before + "-A POSTROUTING -s 10.247.77.0/24 ! -o docker0 -j MASQUERADE\n"
    plan = cleanup_plan(parse_rules(before), parse_rules(after), frozenset({"10.247.77.0/24"}))
    assert plan == [["-D", "POSTROUTING", "-s", "10.247.77.0/24", "!", "-o", "docker0", "-j", "MASQUERADE"]]


def test_empty_iptables_nft_table() -> None:
    empty = """table ip nat {
	chain POSTROUTING {
		type nat hook postrouting priority srcnat; policy accept;
	}
	chain OUTPUT {
		type nat hook output priority -100; policy accept;
	}
}
"""
    assert table_is_empty(empty)
    with_rule = empty.replace("policy accept;\n\t}\n\tchain OUTPUT",
                              "policy accept;\n\t\tmasquerade\n\t}\n\tchain OUTPUT")
    assert not table_is_empty(with_rule)
    assert not table_is_empty(empty.replace("srcnat; policy accept", "srcnat; policy drop"))
    assert not table_is_empty("")


def test_peer_lock_makes_a_second_bench_wait(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import threading
    import time

    from bench.hostguard import peer_lock

    lock = tmp_path / "peers.lock"
    order: list[str] = []
    seen: list[bool] = []

    def other() -> None:
        with peer_lock(lock) as waited:
            seen.append(waited)
            order.append("other")

    with peer_lock(lock) as waited:
        assert waited is False
        t = threading.Thread(target=other)
        t.start()
        time.sleep(0.2)
        order.append("first done")
    t.join(5)
    assert order == ["first done", "other"] and seen == [True]
