from ipaddress import IPv4Address, IPv4Network

import pytest

from runtime.errors import Conflict, InvalidArgument
from runtime.network import ipam
from runtime.network.state import ContainerRecord, NetworkRecord, NetworkState, StateStore
from runtime.types import NetworkSpec


def nets(*cidrs: str) -> list[IPv4Network]:
    return [IPv4Network(c) for c in cidrs]


def test_first_subnet_of_first_pool() -> None:
    assert ipam.choose_subnet([], []) == IPv4Network("10.200.0.0/24")


def test_skips_taken_and_host_routes_but_not_default_route() -> None:
    host = nets("0.0.0.0/0", "10.200.1.0/24", "10.200.2.7/32")
    got = ipam.choose_subnet(nets("10.200.0.0/24"), host)
    assert got == IPv4Network("10.200.3.0/24")


def test_pool_covered_by_host_route_moves_to_next_pool() -> None:
    got = ipam.choose_subnet([], nets("10.0.0.0/8"))
    assert got == IPv4Network("172.30.0.0/24")


def test_host_route_inside_pool_on_wider_prefix() -> None:
    # a /20 on the host blocks 16 /24s
    got = ipam.choose_subnet([], nets("10.200.0.0/20"))
    assert got == IPv4Network("10.200.16.0/24")


def test_exhausted_pools_is_a_conflict() -> None:
    with pytest.raises(Conflict, match="no free subnet"):
        ipam.choose_subnet([], nets("10.200.0.0/16"), pools=["10.200.0.0/16"])


def test_parse_subnet_errors() -> None:
    with pytest.raises(InvalidArgument, match="invalid subnet"):
        ipam.parse_subnet("10.1.2.300/24", "n")
    with pytest.raises(InvalidArgument, match="ipv6"):
        ipam.parse_subnet("fd00::/64", "n")
    assert ipam.parse_subnet("10.5.0.7/24", "n") == IPv4Network("10.5.0.0/24")


def test_gateway_must_be_host_address_of_subnet() -> None:
    s = IPv4Network("10.5.0.0/24")
    assert ipam.check_gateway(s, "10.5.0.254", "n") == IPv4Address("10.5.0.254")
    for bad in ("10.6.0.1", "10.5.0.0", "10.5.0.255", "x"):
        with pytest.raises(InvalidArgument):
            ipam.check_gateway(s, bad, "n")


def test_allocate_skips_gateway_and_leases() -> None:
    s = IPv4Network("10.5.0.0/24")
    gw = IPv4Address("10.5.0.1")
    assert ipam.allocate_ip(s, gw, []) == IPv4Address("10.5.0.2")
    assert ipam.allocate_ip(s, gw, ["10.5.0.2", "10.5.0.3"]) == IPv4Address("10.5.0.4")
    # custom gateway in the middle is skipped too
    assert ipam.allocate_ip(s, IPv4Address("10.5.0.2"), []) == IPv4Address("10.5.0.1")


def test_static_address_checks() -> None:
    s = IPv4Network("10.5.0.0/24")
    gw = IPv4Address("10.5.0.1")
    assert ipam.allocate_ip(s, gw, ["10.5.0.2"], "10.5.0.9") == IPv4Address("10.5.0.9")
    with pytest.raises(Conflict, match="already in use"):
        ipam.allocate_ip(s, gw, ["10.5.0.9"], "10.5.0.9", "n")
    with pytest.raises(InvalidArgument, match="outside subnet"):
        ipam.allocate_ip(s, gw, [], "10.6.0.9", "n")
    with pytest.raises(Conflict, match="gateway"):
        ipam.allocate_ip(s, gw, [], "10.5.0.1", "n")


def test_full_subnet() -> None:
    s = IPv4Network("10.5.0.0/30")  # hosts .1 .2, .1 is the gateway
    gw = IPv4Address("10.5.0.1")
    with pytest.raises(Conflict, match="no free address"):
        ipam.allocate_ip(s, gw, ["10.5.0.2"], network="n")


def test_leases_persist_across_store_instances(tmp_path) -> None:
    store = StateStore(tmp_path)
    with store.transaction() as st:
        st.networks["n"] = NetworkRecord(NetworkSpec("n"), "cmpbx", "10.5.0.0/24", "10.5.0.1", 1500)
        ip = ipam.allocate_ip(IPv4Network("10.5.0.0/24"), IPv4Address("10.5.0.1"), st.networks["n"].leases)
        st.networks["n"].leases[str(ip)] = "c1"
    again = StateStore(tmp_path).load()  # "engine restart"
    rec = again.networks["n"]
    nxt = ipam.allocate_ip(IPv4Network(rec.subnet), IPv4Address(rec.gateway), rec.leases)
    assert rec.leases == {"10.5.0.2": "c1"}
    assert nxt == IPv4Address("10.5.0.3")


def test_failed_transaction_does_not_save(tmp_path) -> None:
    store = StateStore(tmp_path)
    with pytest.raises(RuntimeError):
        with store.transaction() as st:
            st.containers["x"] = ContainerRecord("x")
            raise RuntimeError("boom")
    assert store.load() == NetworkState()
    assert not list(tmp_path.glob("*.tmp*"))


def test_a_transaction_that_changes_nothing_writes_nothing(tmp_path) -> None:
    """A detach or unpublish of what is gone already: no rename over the file (~2 ms on
    ext4, on the daemon's loop); a real change, and another process's write, still count."""
    store = StateStore(tmp_path)
    with store.transaction() as st:
        st.containers["x"] = ContainerRecord("x")
    written = store.path.stat()
    with store.transaction() as st:
        st.containers.pop("nosuch", None)
    assert store.path.stat().st_ino == written.st_ino  # not replaced
    with store.transaction() as st:
        del st.containers["x"]
    assert store.path.stat().st_ino != written.st_ino
    assert StateStore(tmp_path).load() == NetworkState()
    other = StateStore(tmp_path)  # another process adds "y"; ours then removes it again
    with other.transaction() as st:
        st.containers["y"] = ContainerRecord("y")
    with store.transaction() as st:
        assert "y" in st.containers
        del st.containers["y"]
    assert StateStore(tmp_path).load() == NetworkState()
