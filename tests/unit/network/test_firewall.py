from pathlib import Path

from runtime.network.firewall import BridgeRule, DnatRule, render, table_name


def test_table_name() -> None:
    assert table_name(Path("/var/lib/composer")) == "composer"
    t = table_name(Path("/tmp/x"))
    assert t.startswith("composer_") and t == table_name(Path("/tmp/x")) != table_name(Path("/tmp/y"))


def test_render_nat_isolation_internal_and_dnat() -> None:
    text = render(
        "composer",
        [BridgeRule("cmpbA", "10.200.0.0/24", False), BridgeRule("cmpbI", "10.200.1.0/24", True)],
        [DnatRule("tcp", "", 8080, "10.200.0.2", 80), DnatRule("udp", "127.0.0.1", 5353, "10.200.0.2", 53)],
    )
    assert 'ip saddr 10.200.0.0/24 oifname != "cmpbA" masquerade' in text
    assert "10.200.1.0/24" not in text  # internal: no masquerade
    assert 'iifname "cmpbI" drop' in text and 'oifname "cmpbI" drop' in text
    assert 'iifname "cmpbA" oifname != "cmpbA" oifname "cmpb*" drop' in text
    # no rule may match traffic of bridges this table does not own (other engines' tables)
    for line in text.splitlines():
        if "drop" in line:
            assert 'iifname "cmpbA"' in line or 'iifname "cmpbI"' in line or 'oifname "cmpbA" drop' in line or 'oifname "cmpbI" drop' in line, line
    assert text.count("fib daddr type local tcp dport 8080 dnat to 10.200.0.2:80") == 2  # prerouting+output
    assert text.count("ip daddr 127.0.0.1 udp dport 5353 dnat to 10.200.0.2:53") == 2
    # intra-bridge accept comes before the internal drop
    assert text.index('iifname "cmpbI" oifname "cmpbI" accept') < text.index('iifname "cmpbI" drop')


def test_render_loopback_guard_and_hairpin() -> None:
    text = render(
        "composer",
        [BridgeRule("cmpbA", "10.200.0.0/24", False), BridgeRule("cmpbI", "10.200.1.0/24", True)],
        [],
    )
    lines = [line.strip() for line in text.splitlines()]
    guard = lines[lines.index("chain loopback_guard {") + 1:]
    guard = guard[: guard.index("}")]
    # before conntrack and NAT, for every bridge of ours (internal ones too), nothing else
    assert guard == [
        "type filter hook prerouting priority raw; policy accept;",
        'iifname "cmpbA" ip daddr 127.0.0.0/8 drop',
        'iifname "cmpbI" ip daddr 127.0.0.0/8 drop',
    ]
    assert 'oifname "cmpbA" ip saddr 10.200.0.0/24 ct status dnat masquerade' in lines
    assert not any("10.200.1.0/24" in line for line in lines)  # internal: no NAT at all
