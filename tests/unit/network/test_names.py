from runtime.network import names


def test_bridge_name_is_deterministic_short_and_prefixed() -> None:
    a = names.bridge_name("proj_default")
    assert a == names.bridge_name("proj_default")
    assert a.startswith("cmpb") and len(a) == 14 <= 15
    assert a != names.bridge_name("proj_backend")


def test_veth_name_depends_on_container_and_network() -> None:
    v = names.veth_name("c1", "n1")
    assert v.startswith("cmpv") and len(v) <= 15
    assert v != names.veth_name("c1", "n2")
    assert v != names.veth_name("c2", "n1")


def test_mac_from_ip_follows_docker() -> None:
    assert names.mac_from_ip("172.17.0.2") == "02:42:ac:11:00:02"
    assert names.mac_from_ip("10.200.3.255") == "02:42:0a:c8:03:ff"


def test_container_ifnames() -> None:
    assert [names.container_ifname(i) for i in range(3)] == ["eth0", "eth1", "eth2"]
