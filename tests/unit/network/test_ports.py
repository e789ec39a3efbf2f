import socket

import pytest

from runtime.errors import Conflict, InvalidArgument
from runtime.network import ports
from runtime.types import PortBinding


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
