"""Coexistence with other firewalls: DOCKER-USER rules, their sync, and the one-line reports."""
from __future__ import annotations

from runtime.network.firewall import BridgeRule
from runtime.network.hostfw import (
    HostFirewall,
    IptablesFilter,
    blockers,
    docker_user_rules,
    foreign_engines,
    restore_script,
)

# `iptables -S` on a host where Debian's dockerd 20.10 ran (and a composer engine added its rules)
DOCKER = """-P INPUT ACCEPT
-P FORWARD DROP
-P OUTPUT ACCEPT
-N DOCKER
-N DOCKER-ISOLATION-STAGE-1
-N DOCKER-ISOLATION-STAGE-2
-N DOCKER-USER
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A DOCKER-USER -i cmpbA -m comment --comment composer -j ACCEPT
-A DOCKER-USER -i cmpbX -m comment --comment composer_1234abcd -j ACCEPT
-A DOCKER-USER -i eth1 -m comment --comment "user's own rule" -j ACCEPT
-A DOCKER-USER -j RETURN
"""
# `nft list chain inet filter forward` of a hardened /etc/nftables.conf
FILTER_FORWARD = """table inet filter {
\tchain forward {
\t\ttype filter hook forward priority filter; policy drop;
\t\tct state established,related accept
\t}
}
"""
FRONT = BridgeRule("cmpbA", "10.200.0.0/24", False)
BACK = BridgeRule("cmpbI", "10.200.1.0/24", True)


def test_parse_iptables_listing() -> None:
    t = IptablesFilter.parse(DOCKER)
    assert t.policies == {"INPUT": "ACCEPT", "FORWARD": "DROP", "OUTPUT": "ACCEPT"}
    assert t.chains == {"DOCKER", "DOCKER-ISOLATION-STAGE-1", "DOCKER-ISOLATION-STAGE-2", "DOCKER-USER"}
    assert t.jumps_to("FORWARD", "DOCKER-USER") and t.docker_user_usable()
    assert t.chain_rules("DOCKER-USER")[-1] == "-A DOCKER-USER -j RETURN"
    # each engine finds only its own rules (the table name is the tag; a prefix is not enough)
    assert t.ours("composer") == ["-A DOCKER-USER -i cmpbA -m comment --comment composer -j ACCEPT"]
    assert t.ours("composer_1234abcd") == ["-A DOCKER-USER -i cmpbX -m comment --comment composer_1234abcd -j ACCEPT"]
    unreached = IptablesFilter.parse("-P FORWARD DROP\n-N DOCKER-USER\n-A DOCKER-USER -j RETURN\n")
    assert not unreached.docker_user_usable()  # moby#48560


def test_docker_user_rules_as_iptables_lists_them() -> None:
    assert docker_user_rules("composer", [FRONT, BACK]) == [
        "-A DOCKER-USER -i cmpbA -m comment --comment composer -j ACCEPT",
        "-A DOCKER-USER -o cmpbA -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment composer -j ACCEPT",
        "-A DOCKER-USER -o cmpbA -m conntrack --ctstate DNAT -m comment --comment composer -j ACCEPT",
        # internal: only inside the network (bridged frames pass FORWARD with br_netfilter)
        "-A DOCKER-USER -i cmpbI -o cmpbI -m comment --comment composer -j ACCEPT",
    ]


def test_restore_script_replaces_ours_at_the_top() -> None:
    current = IptablesFilter.parse(DOCKER).ours("composer")
    desired = docker_user_rules("composer", [BACK])
    assert restore_script(current, desired) == (
        "*filter\n"
        "-D DOCKER-USER -i cmpbA -m comment --comment composer -j ACCEPT\n"
        "-I DOCKER-USER 1 -i cmpbI -o cmpbI -m comment --comment composer -j ACCEPT\n"
        "COMMIT\n"
    )
    assert restore_script(desired, desired) is None  # already right: no iptables call
    assert restore_script(current, []) == "*filter\n-D DOCKER-USER -i cmpbA -m comment --comment composer -j ACCEPT\nCOMMIT\n"
    two = docker_user_rules("composer", [FRONT])
    assert [line.split()[2] for line in restore_script([], two).splitlines()[1:-1]] == ["1", "2", "3"]  # type: ignore[union-attr]


def fw(ipt: str | None = None, **kw) -> HostFirewall:  # type: ignore[no-untyped-def]
    return HostFirewall(IptablesFilter.parse(ipt) if ipt is not None else None, **kw)


def test_no_blockers_with_docker_user_or_accepting_hosts() -> None:
    assert blockers("front", FRONT, fw(DOCKER, bridge_netfilter=True)) == []
    assert blockers("front", FRONT, fw("-P FORWARD ACCEPT\n", bridge_netfilter=True)) == []
    assert blockers("front", FRONT, fw(None)) == []  # no iptables at all, no nft drop


def test_forward_drop_without_docker_user_is_one_line() -> None:
    host = fw("-P FORWARD DROP\n", bridge_netfilter=True)
    [line] = blockers("front", FRONT, host)
    assert line.startswith("the iptables FORWARD chain has policy DROP and there is no DOCKER-USER chain: "
                           "traffic of network front (bridge cmpbA) to and from other interfaces is dropped there")
    assert line.endswith(
        "iptables -I FORWARD -i cmpbA -j ACCEPT; "
        "iptables -I FORWARD -o cmpbA -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT; "
        "iptables -I FORWARD -o cmpbA -m conntrack --ctstate DNAT -j ACCEPT")
    [line] = blockers("back", BACK, host)
    assert "traffic inside network back (bridge cmpbI)" in line
    assert line.endswith("iptables -I FORWARD -i cmpbI -o cmpbI -j ACCEPT")
    # without br_netfilter, an internal network's frames never reach FORWARD: nothing to say
    assert blockers("back", BACK, fw("-P FORWARD DROP\n", bridge_netfilter=False)) == []
    assert len(blockers("front", FRONT, fw("-P FORWARD DROP\n", bridge_netfilter=False))) == 1
    # answered by the user (the advised rule, or one for all of cmpb+): nothing more to say
    assert blockers("front", FRONT, fw("-P FORWARD DROP\n-A FORWARD -i cmpbA -j ACCEPT\n")) == []
    assert blockers("back", BACK, fw("-P FORWARD DROP\n-A FORWARD -i cmpb+ -o cmpb+ -j ACCEPT\n",
                                      bridge_netfilter=True)) == []


def test_nft_policy_drop_is_one_line_per_chain() -> None:
    host = fw("-P FORWARD ACCEPT\n", bridge_netfilter=True,
              nft_forward_drops=(("inet filter forward", FILTER_FORWARD), ("ip fw fwd", "")))
    lines = blockers("front", FRONT, host)
    assert len(lines) == 2
    assert lines[0].startswith('the nft chain "inet filter forward" has policy drop: traffic of network front')
    assert lines[0].endswith(
        'add these to that chain: iifname "cmpbA" accept; oifname "cmpbA" ct state established,related accept; '
        'oifname "cmpbA" ct status dnat accept')
    assert blockers("back", BACK, host)[0].endswith('iifname "cmpbI" oifname "cmpbI" accept')
    # once the user accepts our bridge there (as advised, or for all of cmpb*), nothing to say
    answered = FILTER_FORWARD.replace("\t}", '\t\tiifname "cmpbA" accept\n\t}')
    host = fw(None, bridge_netfilter=True, nft_forward_drops=(("inet filter forward", answered),))
    assert blockers("front", FRONT, host) == []
    assert len(blockers("back", BACK, host)) == 1
    wildcard = FILTER_FORWARD.replace("\t}", '\t\tiifname "cmpb*" counter packets 0 bytes 0 accept\n\t}')
    host = fw(None, bridge_netfilter=True, nft_forward_drops=(("inet filter forward", wildcard),))
    assert blockers("back", BACK, host) == []


def test_unreadable_iptables_table() -> None:
    err = "iptables v1.8.9 (nf_tables): table `filter' is incompatible, use 'nft' tool."
    # nf_tables backend: the nft view tells whether its FORWARD drops; one line either way
    host = fw(None, iptables_error=err, iptables_nft=True, nft_forward_drops=(("ip filter FORWARD", ""),),
              bridge_netfilter=True)
    [line] = blockers("front", FRONT, host)
    assert line.startswith(f"cannot read the iptables filter table ({err}), so composer added no rule to DOCKER-USER; "
                           'its FORWARD chain ("ip filter FORWARD") has policy drop')
    assert line.endswith('ct status dnat accept')
    assert blockers("front", FRONT, fw(None, iptables_error=err, iptables_nft=True)) == []  # it accepts
    # legacy backend: nothing else can tell
    [line] = blockers("front", FRONT, fw(None, iptables_error="lock timeout", iptables_nft=False))
    assert line.startswith("cannot read the iptables filter table (lock timeout)")


def test_foreign_engines() -> None:
    assert foreign_engines(fw(DOCKER), [("ip", "composer")]) == [
        "DOCKER", "DOCKER-ISOLATION-STAGE-1", "DOCKER-ISOLATION-STAGE-2", "DOCKER-USER"]
    assert foreign_engines(fw("-N NETAVARK_FORWARD\n"), [("inet", "netavark"), ("inet", "filter")]) == [
        "NETAVARK_FORWARD", "inet netavark"]
    assert foreign_engines(None, [("inet", "filter"), ("ip", "composer_1")]) == []
