"""Published ports: reserve the host port, then make it reach the container.

Reservation binds (and for TCP listens on) the host socket first, exactly like the process
that will own the port would, so "port in use" is detected before anything changes and no
other process can take it while published. A host port range (`8000-8010:80`) binds its first
port that is free, as Docker does; what is reported (and DNATed) is that one port. Forwarding is kernel DNAT by default (nft rules in
the engine's table, see runtime.network.firewall); `TcpProxy` is the userland alternative
(measured in bench/network.py, see docs/networking.md).
"""
from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass, replace

from runtime.errors import Conflict, InvalidArgument
from runtime.types import PortBinding

PROTOCOLS = ("tcp", "udp", "sctp")


def validate(binding: PortBinding) -> PortBinding:
    """Check one binding; `host_ip` "0.0.0.0" is normalised to "" (all addresses)."""
    if binding.protocol not in PROTOCOLS:
        raise InvalidArgument(f"invalid protocol {binding.protocol!r} for port {binding.container_port}: use tcp, udp or sctp")
    if not 1 <= binding.container_port <= 65535:
        raise InvalidArgument(f"invalid container port {binding.container_port}: use 1-65535")
    if not 0 <= binding.host_port <= 65535:
        raise InvalidArgument(f"invalid host port {binding.host_port}: use 1-65535, or 0 for a random one")
    if binding.host_port_end:
        if not 1 <= binding.host_port <= binding.host_port_end <= 65535:
            raise InvalidArgument(
                f"invalid host port range {binding.host_port}-{binding.host_port_end} for port "
                f"{binding.container_port}: use START-END within 1-65535, START <= END")
        if binding.host_port_end == binding.host_port:
            binding = replace(binding, host_port_end=0)
    host_ip = binding.host_ip
    if host_ip in ("0.0.0.0", "::", "[::]"):
        host_ip = ""
    if host_ip:
        try:
            addr = ipaddress.ip_address(host_ip.strip("[]"))
        except ValueError as exc:
            raise InvalidArgument(f"invalid host ip {binding.host_ip!r} for port {binding.container_port}") from exc
        if addr.version != 4:
            raise InvalidArgument(f"host ip {binding.host_ip} is ipv6; only ipv4 host addresses are supported")
    return replace(binding, host_ip=host_ip)


def describe(binding: PortBinding) -> str:
    where = binding.host_ip or "0.0.0.0"
    ports = f"{binding.host_port}-{binding.host_port_end}" if binding.host_port_end else str(binding.host_port)
    return f"{where}:{ports}/{binding.protocol}"


@dataclass
class Reservation:
    binding: PortBinding  # with the real host port
    sock: socket.socket

    def close(self) -> None:
        self.sock.close()


def _sock_type(protocol: str) -> tuple[int, int]:
    if protocol == "tcp":
        return socket.SOCK_STREAM, 0
    if protocol == "udp":
        return socket.SOCK_DGRAM, 0
    return socket.SOCK_STREAM, socket.IPPROTO_SCTP


def _bind(binding: PortBinding, port: int) -> socket.socket:
    """A socket bound (TCP/SCTP: listening) on host `port`; OSError when it cannot be."""
    kind, proto = _sock_type(binding.protocol)
    sock = socket.socket(socket.AF_INET, kind, proto)
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # our own TIME_WAITs only
        sock.bind((binding.host_ip or "0.0.0.0", port))
        if kind == socket.SOCK_STREAM:
            sock.listen(128)  # a listener: no one else can bind the port, even with SO_REUSEADDR
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def _in_use(binding: PortBinding, exc: OSError) -> Conflict:
    return Conflict(
        f"port {describe(binding)} is already in use ({exc.strerror.lower() if exc.strerror else exc}); "
        "stop what uses it or publish another host port",
        subject=str(binding.host_port),
    )


def reserve(binding: PortBinding) -> Reservation:
    """Bind the host port (0 = kernel's pick; a range: its first free port, as Docker does);
    Conflict naming the port (or range) when it is taken. The reservation's binding has the
    port actually bound and no range."""
    if not binding.host_port_end:
        try:
            sock = _bind(binding, binding.host_port)
        except OSError as exc:
            raise _in_use(binding, exc) from exc
        return Reservation(replace(binding, host_port=sock.getsockname()[1]), sock)
    for port in range(binding.host_port, binding.host_port_end + 1):
        one = replace(binding, host_port=port, host_port_end=0)
        try:
            sock = _bind(one, port)
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                continue  # taken: try the next port of the range
            raise _in_use(one, exc) from exc
        return Reservation(one, sock)
    raise Conflict(
        f"ports {describe(binding)} are all in use; stop what uses one of them or publish "
        "another host port range",
        subject=f"{binding.host_port}-{binding.host_port_end}",
    )


def reserve_all(bindings: Sequence[PortBinding]) -> list[Reservation]:
    """All or nothing: on the first failure the ports already reserved are released.

    Fixed host ports are bound before ranges and random ports, so that a range never takes
    a port another binding of the same container names; the result is in `bindings` order.
    """
    checked = [validate(b) for b in bindings]
    order = sorted(range(len(checked)), key=lambda i: bool(checked[i].host_port_end or not checked[i].host_port))
    done: dict[int, Reservation] = {}
    try:
        for i in order:
            done[i] = reserve(checked[i])
    except BaseException:
        for r in done.values():
            r.close()
        raise
    return [done[i] for i in range(len(checked))]


class TcpProxy:
    """Userland forwarder: accept on a reserved listening socket, splice to the container."""

    def __init__(self, reservation: Reservation, target_ip: str, target_port: int) -> None:
        self.reservation = reservation
        self.target = (target_ip, target_port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, sock=self.reservation.sock)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            self._writers.discard(writer)
            writer.close()
            return
        self._writers.add(up_writer)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.close()

    async def close(self) -> None:
        """Stop accepting and abort open connections (their tasks then end on their own)."""
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.transport.abort()
        self.reservation.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(256 * 1024):
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()
    except (ConnectionError, OSError):
        pass
