"""Embedded DNS: containers resolve service names, container names and aliases.

One `Resolver` holds the records (per network) and forwards everything else to upstream
servers; one `DnsServer` listens on UDP and TCP port 53 of each network's gateway address.
The socket a query arrives on names its network: a container only learns addresses on a
network it shares with the target (when the asking container is on several networks, its
other networks are searched after the one it asked through).

Answers: a known name gets its A records (several for a scaled service, round-robin order
left to the client) and NOERROR with no answers for other types (the name exists); an unknown
single-label name is NXDOMAIN at once (no public resolver knows it); anything else goes to the
upstreams (the container's `dns:` servers if it has any, else the host's as
runtime.network.hostdns selects them: resolved's upstream servers, not its loopback stub), and
SERVFAIL when none answers within the timeout.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import cast

from dnslib import PTR, QTYPE, RCODE, RR, A, DNSRecord

from runtime.network.errors import NetworkError

log = logging.getLogger(__name__)

TTL = 600  # as Docker's embedded server
IP_FREEBIND = 15  # linux/in.h; not exported by the socket module
DEFAULT_TIMEOUT = 1.0


def _norm(name: str) -> str:
    return name.rstrip(".").lower()


@dataclass
class _Entry:
    ip: str
    owner: str  # container id


@dataclass
class Resolver:
    upstreams: list[str] = field(default_factory=list)  # "ip" or "ip:port"
    timeout: float = DEFAULT_TIMEOUT
    # where the host's upstreams come from when it changes over time (runtime.network.hostdns);
    # None: `upstreams` as given
    host_upstreams: Callable[[], list[str]] | None = None
    _names: dict[str, dict[str, list[_Entry]]] = field(default_factory=dict)  # net -> name -> entries
    _owner_at: dict[tuple[str, str], str] = field(default_factory=dict)  # (net, ip) -> owner
    _owner_nets: dict[str, list[str]] = field(default_factory=dict)  # owner -> networks, in order
    _owner_upstreams: dict[str, list[str]] = field(default_factory=dict)

    # -- records ---------------------------------------------------------------------------
    def add(self, owner: str, network: str, ip: str, names: Iterable[str], upstreams: Sequence[str] = ()) -> None:
        table = self._names.setdefault(network, {})
        for name in dict.fromkeys(_norm(n) for n in names if n):
            entries = table.setdefault(name, [])
            if not any(e.owner == owner and e.ip == ip for e in entries):
                entries.append(_Entry(ip, owner))
        self._owner_at[(network, ip)] = owner
        nets = self._owner_nets.setdefault(owner, [])
        if network not in nets:
            nets.append(network)
        if upstreams:
            self._owner_upstreams[owner] = list(upstreams)

    def remove_owner(self, owner: str) -> None:
        for table in self._names.values():
            for name in list(table):
                table[name] = [e for e in table[name] if e.owner != owner]
                if not table[name]:
                    del table[name]
        self._owner_at = {k: v for k, v in self._owner_at.items() if v != owner}
        self._owner_nets.pop(owner, None)
        self._owner_upstreams.pop(owner, None)

    def remove_network(self, network: str) -> None:
        self._names.pop(network, None)

    def lookup(self, network: str, name: str, client_ip: str | None = None) -> list[str] | None:
        """Addresses of `name` as seen from `network`; None when the name is not ours."""
        nets = [network]
        owner = self._owner_at.get((network, client_ip)) if client_ip else None
        if owner:
            nets += [n for n in self._owner_nets.get(owner, []) if n != network]
        key = _norm(name)
        for net in nets:
            entries = self._names.get(net, {}).get(key)
            if entries:
                return [e.ip for e in entries]
        return None

    def reverse(self, network: str, name: str) -> list[str] | None:
        """Names of the container at the address of a `d.c.b.a.in-addr.arpa` query on
        `network` (servers such as MariaDB look up their clients' addresses); None: not ours."""
        key = _norm(name)
        if not key.endswith(".in-addr.arpa"):
            return None
        ip = ".".join(reversed(key.removesuffix(".in-addr.arpa").split(".")))
        owner = self._owner_at.get((network, ip))
        if owner is None:
            return None
        names = [n for n, entries in self._names.get(network, {}).items()
                 if any(e.owner == owner and e.ip == ip for e in entries)]
        return sorted(names, key=lambda n: (-n.count("-"), n))[:1] or None

    # -- answering -------------------------------------------------------------------------
    def answer_local(self, request: DNSRecord, network: str, client_ip: str | None = None) -> DNSRecord | None:
        """The reply for a name we know (or a single-label one we don't); None = forward it."""
        q = request.q
        name = str(q.qname)
        reply = request.reply()  # sets QR, RA, copies id and question
        if q.qtype == QTYPE.PTR:
            ptr = self.reverse(network, name)
            if ptr is None:
                return None
            for target in ptr:
                reply.add_answer(RR(q.qname, QTYPE.PTR, rdata=PTR(target + "."), ttl=TTL))
            return reply
        ips = self.lookup(network, name, client_ip)
        if ips is not None:
            if q.qtype in (QTYPE.A, QTYPE.ANY):
                for ip in ips:
                    reply.add_answer(RR(q.qname, QTYPE.A, rdata=A(ip), ttl=TTL))
            return reply  # NOERROR; empty for AAAA/MX/...: the name exists
        if "." not in _norm(name):
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        return None

    def upstreams_for(self, network: str, client_ip: str | None) -> list[str]:
        owner = self._owner_at.get((network, client_ip)) if client_ip else None
        if owner and owner in self._owner_upstreams:
            return self._owner_upstreams[owner]
        return self.host_upstreams() if self.host_upstreams is not None else self.upstreams

    async def resolve(self, data: bytes, network: str, client_ip: str | None = None) -> bytes | None:
        """Wire query in, wire reply out (None: unparseable, drop it)."""
        try:
            request = DNSRecord.parse(data)
        except Exception:  # dnslib raises several types on garbage
            return None
        if request.header.qr or not request.questions:
            return None
        local = self.answer_local(request, network, client_ip)
        if local is not None:
            return bytes(local.pack())
        forwarded = await forward(data, self.upstreams_for(network, client_ip), self.timeout)
        if forwarded is not None:
            return forwarded
        failed = request.reply()
        failed.header.rcode = RCODE.SERVFAIL
        return bytes(failed.pack())


def _addr(server: str) -> tuple[str, int]:
    host, _, port = server.rpartition(":") if server.count(":") == 1 else (server, "", "53")
    return host, int(port or 53)


class _OneShot(asyncio.DatagramProtocol):
    def __init__(self, qid: bytes) -> None:
        self.qid = qid
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if data[:2] == self.qid and not self.answer.done():
            self.answer.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)


async def forward(data: bytes, upstreams: Sequence[str], timeout: float) -> bytes | None:
    """Ask each upstream in turn over UDP; the first reply wins. None when all fail."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    for i, server in enumerate(upstreams):
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        share = remaining / (len(upstreams) - i)  # leave time for the servers after this one
        transport = None
        try:
            transport, proto = await loop.create_datagram_endpoint(
                lambda: _OneShot(data[:2]), remote_addr=_addr(server)
            )
            transport.sendto(data)
            return await asyncio.wait_for(proto.answer, share)
        except (TimeoutError, OSError) as exc:
            log.debug("dns upstream %s failed: %s", server, exc)
        finally:
            if transport is not None:
                transport.close()
    return None


# -- server ----------------------------------------------------------------------------------
class _UdpServer(asyncio.DatagramProtocol):
    def __init__(self, resolver: Resolver, network: str) -> None:
        self.resolver = resolver
        self.network = network
        self.transport: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        task = asyncio.ensure_future(self._answer(data, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = await self.resolver.resolve(data, self.network, addr[0])
        if reply is not None and self.transport is not None and not self.transport.is_closing():
            if len(reply) > 512:  # classic UDP limit: truncate, the client retries over TCP
                with contextlib.suppress(Exception):
                    rec = DNSRecord.parse(reply)
                    rec.rr = []
                    rec.header.tc = 1
                    reply = bytes(rec.pack())
            self.transport.sendto(reply, addr)


@dataclass
class _Listener:
    udp: asyncio.DatagramTransport
    tcp: asyncio.Server


def _listen_error(network: str, ip: str, port: int, proto: str, exc: OSError) -> NetworkError:
    return NetworkError(
        f"network {network}: cannot serve dns on {ip}:{port}/{proto}: {exc.strerror or exc}; "
        "is another dns server bound to 0.0.0.0:53 (dnsmasq, named)? bind it to its own addresses",
        subject=network,
    )


class DnsServer:
    """UDP+TCP listeners, one pair per network, all answering through one `Resolver`."""

    def __init__(self, resolver: Resolver, port: int = 53) -> None:
        self.resolver = resolver
        self.port = port
        self._listeners: dict[str, _Listener] = {}

    def listening(self, network: str) -> bool:
        return network in self._listeners

    async def listen(self, network: str, ip: str) -> None:
        if network in self._listeners:
            return
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
            sock.bind((ip, self.port))
        except OSError as exc:
            sock.close()
            raise _listen_error(network, ip, self.port, "udp", exc) from exc
        udp, _ = await loop.create_datagram_endpoint(lambda: _UdpServer(self.resolver, network), sock=sock)
        try:
            tcp = await asyncio.start_server(
                lambda r, w: self._tcp_client(network, r, w), host=ip, port=self.port, reuse_address=True
            )
        except OSError as exc:
            udp.close()
            raise _listen_error(network, ip, self.port, "tcp", exc) from exc
        self._listeners[network] = _Listener(udp, tcp)

    async def _tcp_client(self, network: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            while True:
                size = struct.unpack("!H", await reader.readexactly(2))[0]
                data = await reader.readexactly(size)
                reply = await self.resolver.resolve(data, network, peer[0] if peer else None)
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self, network: str) -> None:
        listener = self._listeners.pop(network, None)
        if listener is None:
            return
        listener.udp.close()
        listener.tcp.close()
        await listener.tcp.wait_closed()

    async def close(self) -> None:
        for network in list(self._listeners):
            await self.stop(network)
