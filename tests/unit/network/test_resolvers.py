"""Every consumer of the host's resolv.conf in the network layer, on a systemd-resolved host."""
from __future__ import annotations

from pathlib import Path

from runtime.network import NetworkManager
from runtime.paths import Paths

STUB = "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n"
UPSTREAM = "nameserver 192.0.2.53\nsearch lan corp\n"


def manager(tmp_path: Path) -> NetworkManager:
    (tmp_path / "stub-resolv.conf").write_text(STUB)
    (tmp_path / "resolv.conf.upstream").write_text(UPSTREAM)
    (tmp_path / "etc-resolv.conf").symlink_to(tmp_path / "stub-resolv.conf")
    m = NetworkManager(Paths(tmp_path / "root", tmp_path / "run"))
    m.host_dns.host = tmp_path / "etc-resolv.conf"
    m.host_dns.resolved = tmp_path / "resolv.conf.upstream"
    return m


def test_embedded_dns_forwards_to_resolveds_upstreams(tmp_path: Path) -> None:
    m = manager(tmp_path)
    assert m.resolver.upstreams_for("front", "10.200.0.2") == ["192.0.2.53"]


def test_container_resolv_conf_per_mode(tmp_path: Path) -> None:
    m = manager(tmp_path)
    # none mode (no network, not the host's namespace): resolved's upstreams, its search list
    assert m.resolv_conf("c1") == "nameserver 192.0.2.53\nsearch lan corp\n"
    # host mode: the host's file as it is; the stub answers on the host's loopback
    assert m.resolv_conf("c1", host_mode=True) == STUB.replace("options edns0 trust-ad\nsearch lan\n",
                                                                 "search lan\noptions edns0 trust-ad\n")
    # the container's own dns: still wins
    assert m.resolv_conf("c1", dns=["9.9.9.9"]).startswith("nameserver 9.9.9.9\n")


def test_explicit_upstreams_are_kept(tmp_path: Path) -> None:
    m = NetworkManager(Paths(tmp_path / "root", tmp_path / "run"), upstreams=["127.0.0.1:5353"])
    assert m.resolver.upstreams_for("front", None) == ["127.0.0.1:5353"]
