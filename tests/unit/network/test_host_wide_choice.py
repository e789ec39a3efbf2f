"""A network's subnet and bridge name are chosen against the whole host, not only this
engine's state: another state root (a second composerd, a test run, root's and a user's)
may have a network of the same name or an explicit subnet already on a bridge."""
from __future__ import annotations

from ipaddress import IPv4Network
from pathlib import Path

import pytest

from runtime.errors import Conflict
from runtime.network import NetworkManager, names
from runtime.network.links import HostNetInfo
from runtime.network.state import NetworkState
from runtime.paths import Paths
from runtime.types import NetworkSpec


@pytest.fixture
def manager(tmp_path: Path) -> NetworkManager:
    return NetworkManager(Paths(tmp_path / "root", tmp_path / "run"), upstreams=[])


def host(*, links: tuple[str, ...] = (), addresses: tuple[str, ...] = ("127.0.0.1/8",),
         routes: tuple[str, ...] = ()) -> HostNetInfo:
    return HostNetInfo([IPv4Network(r) for r in routes], [IPv4Network(a, strict=False) for a in addresses],
                       1500, frozenset(links))


def test_bridge_names_per_attempt_are_distinct_and_attempt_0_is_the_old_name() -> None:
    tried = [names.bridge_name("shop_default", n) for n in range(5)]
    assert tried[0] == names.bridge_name("shop_default")  # records of before keep their bridge
    assert len(set(tried)) == 5 and all(t.startswith("cmpb") and len(t) == 14 for t in tried)


def test_a_bridge_name_another_engine_has_is_skipped(manager: NetworkManager) -> None:
    spec = NetworkSpec("shop_default")
    first = names.bridge_name("shop_default")
    free = manager._plan_network(spec, NetworkState(), host())
    assert free.bridge == first
    taken = manager._plan_network(spec, NetworkState(), host(links=("lo", first)))
    assert taken.bridge == names.bridge_name("shop_default", 1)
    both = manager._plan_network(spec, NetworkState(),
                                 host(links=(first, names.bridge_name("shop_default", 1))))
    assert both.bridge == names.bridge_name("shop_default", 2)


def test_the_subnet_skips_another_engines_bridge(manager: NetworkManager) -> None:
    rec = manager._plan_network(NetworkSpec("a"), NetworkState(),
                                host(addresses=("10.200.0.1/24", "10.200.1.1/24"),
                                     routes=("10.200.0.0/24", "10.200.1.0/24")))
    assert rec.subnet == "10.200.2.0/24" and rec.gateway == "10.200.2.1"


def test_an_explicit_subnet_on_a_host_interface_is_a_clear_conflict(manager: NetworkManager) -> None:
    spec = NetworkSpec("shop_back", subnet="10.200.4.0/24")
    with pytest.raises(Conflict) as err:
        manager._plan_network(spec, NetworkState(), host(addresses=("10.200.4.1/24",)))
    assert str(err.value) == ("network shop_back: subnet 10.200.4.0/24 overlaps 10.200.4.0/24, "
                              "which is in use on this host (an interface's or a DNS server's "
                              "address: another network or engine); pick another subnet")
    ok = manager._plan_network(spec, NetworkState(), host(addresses=("10.200.5.1/24",)))
    assert ok.subnet == "10.200.4.0/24"


def test_a_gateway_a_dns_server_still_holds_is_not_free(manager: NetworkManager) -> None:
    """Another engine's network whose bridge went away: its DNS is still bound to the
    gateway; the same subnet here would fail with "address already in use"."""
    held = host(addresses=("10.200.0.1/24",), routes=("10.200.0.0/24",))
    held = HostNetInfo(held.routes, held.addresses, 1500, frozenset(), (IPv4Network("10.200.1.1/32"),))
    assert manager._plan_network(NetworkSpec("a"), NetworkState(), held).subnet == "10.200.2.0/24"
    with pytest.raises(Conflict, match="overlaps 10.200.1.1/32"):
        manager._plan_network(NetworkSpec("b", subnet="10.200.1.0/24"), NetworkState(), held)


def test_dns_bound_addresses_are_read_from_proc_net_udp(tmp_path: Path) -> None:
    from runtime.network.links import dns_bound_addresses

    udp = tmp_path / "udp"
    udp.write_text(
        "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n"
        "  1: 0104C80A:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000 0\n"
        "  2: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000 0\n"
        "  3: 0100007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000 0\n"
        "  4: 0105C80A:1F90 00000000:0000 07 00000000:00000000 00:00000000 00000000 0\n")
    assert dns_bound_addresses(str(udp)) == (IPv4Network("10.200.4.1/32"),)
    assert dns_bound_addresses(str(tmp_path / "missing")) == ()
