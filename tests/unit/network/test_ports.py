"""Host port reservation (runtime.network.ports): validation, conflicts, and ranges that bind
their first free port as Docker does for "8000-8010:80". No root: high ports on loopback."""
from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from runtime.errors import Conflict, InvalidArgument
from runtime.network import ports
from runtime.types import PortBinding
from tests.ports import free_block


def test_validate_normalises_any_address() -> None:
    assert ports.validate(PortBinding(80, host_ip="0.0.0.0")).host_ip == ""
    assert ports.validate(PortBinding(80, host_ip="127.0.0.1", host_port=8080)).host_ip == "127.0.0.1"


@pytest.mark.parametrize(
    "binding",
    [
        PortBinding(0),
        PortBinding(70000),
        PortBinding(80, host_port=-1),
        PortBinding(80, host_port=65536),
        PortBinding(80, protocol="icmp"),  # type: ignore[arg-type]
        PortBinding(80, host_ip="not-an-ip"),
        PortBinding(80, host_ip="fe80::1"),
    ],
)
def test_validate_rejects(binding: PortBinding) -> None:
    with pytest.raises(InvalidArgument):
        ports.validate(binding)


def test_random_port_is_reported_and_held() -> None:
    r = ports.reserve(PortBinding(80, host_ip="127.0.0.1"))
    try:
        assert r.binding.host_port > 0
        other = socket.socket()
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with pytest.raises(OSError):
            other.bind(("127.0.0.1", r.binding.host_port))
        other.close()
    finally:
        r.close()


def test_port_in_use_is_conflict_naming_port_and_all_or_nothing() -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    free_port = free.getsockname()[1]
    free.close()
    try:
        with pytest.raises(Conflict, match=f"port 127.0.0.1:{port}/tcp is already in use"):
            ports.reserve_all(
                [PortBinding(80, host_ip="127.0.0.1", host_port=free_port), PortBinding(81, host_ip="127.0.0.1", host_port=port)]
            )
        # the first one was released again
        probe = socket.socket()
        probe.bind(("127.0.0.1", free_port))
        probe.close()
    finally:
        busy.close()


def test_udp_reservation() -> None:
    r = ports.reserve(PortBinding(53, protocol="udp", host_ip="127.0.0.1"))
    try:
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with pytest.raises(OSError):
            other.bind(("127.0.0.1", r.binding.host_port))
        other.close()
    finally:
        r.close()


# -- host port ranges ------------------------------------------------------------------------
LOOP = "127.0.0.1"


def _occupy(port: int, kind: int = socket.SOCK_STREAM) -> socket.socket:
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind((LOOP, port))
        if kind == socket.SOCK_STREAM:
            s.listen(1)
    except OSError:
        s.close()
        raise
    return s


@pytest.fixture
def held() -> Iterator[list[socket.socket]]:
    socks: list[socket.socket] = []
    yield socks
    for s in socks:
        s.close()


def test_validate_ranges() -> None:
    assert ports.validate(PortBinding(80, host_port=8000, host_port_end=8010)).host_port_end == 8010
    assert ports.validate(PortBinding(80, host_port=8000, host_port_end=8000)).host_port_end == 0
    for bad in (PortBinding(80, host_port=8010, host_port_end=8000),
                PortBinding(80, host_port=0, host_port_end=8000),
                PortBinding(80, host_port=8000, host_port_end=70000)):
        with pytest.raises(InvalidArgument, match="invalid host port range"):
            ports.validate(bad)
    assert ports.describe(PortBinding(80, host_port=8000, host_port_end=8010)) == "0.0.0.0:8000-8010/tcp"


@pytest.mark.parametrize(("protocol", "kind"), [("tcp", socket.SOCK_STREAM), ("udp", socket.SOCK_DGRAM)])
def test_range_binds_first_free_port(held: list[socket.socket], protocol: str, kind: int) -> None:
    lo = free_block(4, kind, LOOP)
    held.append(_occupy(lo, kind))  # someone else listens on the first port of the range
    r = ports.reserve(PortBinding(80, protocol, LOOP, lo, host_port_end=lo + 3))  # type: ignore[arg-type]
    held.append(r.sock)
    assert r.binding == PortBinding(80, protocol, LOOP, lo + 1)  # type: ignore[arg-type]
    assert r.sock.getsockname() == (LOOP, lo + 1)
    with pytest.raises(OSError):  # and it is ours now
        _occupy(lo + 1, kind)
    # the next container publishing the same range gets the next port
    r2 = ports.reserve(PortBinding(80, protocol, LOOP, lo, host_port_end=lo + 3))  # type: ignore[arg-type]
    held.append(r2.sock)
    assert r2.binding.host_port == lo + 2


def test_range_all_taken_is_a_conflict_naming_the_range(held: list[socket.socket]) -> None:
    lo = free_block(2, host=LOOP)
    held += [_occupy(lo), _occupy(lo + 1)]
    with pytest.raises(Conflict, match=rf"ports 127\.0\.0\.1:{lo}-{lo + 1}/tcp are all in use"):
        ports.reserve(PortBinding(80, "tcp", LOOP, lo, host_port_end=lo + 1))


def test_reserve_all_binds_fixed_ports_before_ranges_and_keeps_order(held: list[socket.socket]) -> None:
    lo = free_block(3, host=LOOP)
    got = ports.reserve_all([
        PortBinding(80, "tcp", LOOP, lo, host_port_end=lo + 2),
        PortBinding(81, "tcp", LOOP, lo),  # a fixed port inside the range: it keeps it
    ])
    held += [r.sock for r in got]
    assert [r.binding for r in got] == [PortBinding(80, "tcp", LOOP, lo + 1), PortBinding(81, "tcp", LOOP, lo)]


def test_reserve_all_releases_on_failure(held: list[socket.socket]) -> None:
    lo = free_block(3, host=LOOP)
    held.append(_occupy(lo + 2))
    with pytest.raises(Conflict, match=f"port 127.0.0.1:{lo + 2}/tcp is already in use"):
        ports.reserve_all([PortBinding(80, "tcp", LOOP, lo, host_port_end=lo + 1),
                           PortBinding(81, "tcp", LOOP, lo + 2)])
    held.append(_occupy(lo))  # nothing of the failed publication is still bound
    held.append(_occupy(lo + 1))
