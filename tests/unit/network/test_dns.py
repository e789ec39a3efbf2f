import asyncio

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from runtime.network.dns import Resolver, forward


def make() -> Resolver:
    r = Resolver(upstreams=[], timeout=0.3)
    r.add("c1", "front", "10.200.0.2", ["web", "proj-web-1", "www"])
    r.add("c2", "front", "10.200.0.3", ["web", "proj-web-2"])
    r.add("c3", "back", "10.200.1.2", ["db", "proj-db-1"])
    r.add("c1", "back", "10.200.1.3", ["web", "proj-web-1"])  # c1 is on both networks
    return r


def ask(r: Resolver, name: str, network: str, qtype: str = "A", client: str | None = None) -> DNSRecord:
    reply = asyncio.run(r.resolve(DNSRecord.question(name, qtype).pack(), network, client))
    assert reply is not None
    return DNSRecord.parse(reply)


def test_service_name_returns_all_replicas_on_that_network() -> None:
    rep = ask(make(), "web", "front")
    assert rep.header.rcode == RCODE.NOERROR
    assert sorted(str(a.rdata) for a in rep.rr) == ["10.200.0.2", "10.200.0.3"]
    assert all(a.rtype == QTYPE.A and a.ttl == 600 for a in rep.rr)


def test_address_is_the_one_on_the_asking_network() -> None:
    assert [str(a.rdata) for a in ask(make(), "proj-web-1", "back").rr] == ["10.200.1.3"]


def test_case_and_trailing_dot_insensitive() -> None:
    assert [str(a.rdata) for a in ask(make(), "WWW.", "front").rr] == ["10.200.0.2"]


def test_other_network_names_are_not_visible() -> None:
    rep = ask(make(), "db", "front", client="10.200.0.3")  # c2 is only on front
    assert rep.header.rcode == RCODE.NXDOMAIN and not rep.rr


def test_member_of_two_networks_sees_both() -> None:
    rep = ask(make(), "db", "front", client="10.200.0.2")  # c1 asks through front
    assert [str(a.rdata) for a in rep.rr] == ["10.200.1.2"]


def test_known_name_other_type_is_noerror_empty() -> None:
    rep = ask(make(), "web", "front", "AAAA")
    assert rep.header.rcode == RCODE.NOERROR and rep.rr == []


def test_unknown_dotted_name_without_upstream_is_servfail() -> None:
    rep = ask(make(), "example.com", "front")
    assert rep.header.rcode == RCODE.SERVFAIL


def test_remove_owner() -> None:
    r = make()
    r.remove_owner("c1")
    assert [str(a.rdata) for a in ask(r, "web", "front").rr] == ["10.200.0.3"]
    assert ask(r, "www", "front").header.rcode == RCODE.NXDOMAIN


def test_garbage_is_dropped() -> None:
    assert asyncio.run(make().resolve(b"\x00\x01garbage", "front")) is None


def test_host_upstreams_are_asked_at_each_use_and_own_dns_wins() -> None:
    current = ["10.0.0.1"]
    r = Resolver(host_upstreams=lambda: list(current))
    r.add("c1", "front", "10.200.0.2", ["web"], upstreams=["9.9.9.9"])
    r.add("c2", "front", "10.200.0.3", ["cli"])
    assert r.upstreams_for("front", "10.200.0.3") == ["10.0.0.1"]
    current[:] = ["10.0.0.2"]  # the host's resolv.conf changed
    assert r.upstreams_for("front", "10.200.0.3") == ["10.0.0.2"]
    assert r.upstreams_for("front", "10.200.0.2") == ["9.9.9.9"]  # the container's dns:


class _Upstream(asyncio.DatagramProtocol):
    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:  # type: ignore[no-untyped-def]
        q = DNSRecord.parse(data)
        rep = q.reply()
        rep.add_answer(*__import__("dnslib").RR.fromZone(f"{q.q.qname} 60 A 192.0.2.99"))
        self.transport.sendto(rep.pack(), addr)


async def test_forwarding_to_upstream_and_per_container_servers() -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_Upstream, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        r = Resolver(upstreams=["127.0.0.1:9"], timeout=0.5)  # discard port: no answer
        r.add("c1", "front", "10.200.0.2", ["web"], upstreams=[f"127.0.0.1:{port}"])
        rep = DNSRecord.parse(await r.resolve(DNSRecord.question("example.com").pack(), "front", "10.200.0.2"))
        assert [str(a.rdata) for a in rep.rr] == ["192.0.2.99"]
        t0 = loop.time()
        rep = DNSRecord.parse(await r.resolve(DNSRecord.question("example.com").pack(), "front", "10.200.0.9"))
        assert rep.header.rcode == RCODE.SERVFAIL and loop.time() - t0 < 1.0
    finally:
        transport.close()


async def test_forward_tries_next_server() -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_Upstream, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        data = await forward(DNSRecord.question("a.test").pack(), ["127.0.0.1:9", f"127.0.0.1:{port}"], 1.0)
        assert data is not None and str(DNSRecord.parse(data).rr[0].rdata) == "192.0.2.99"
    finally:
        transport.close()


@pytest.mark.parametrize("name", ["nosuchhost", "web2"])
def test_unknown_single_label_is_nxdomain(name: str) -> None:
    assert ask(make(), name, "front").header.rcode == RCODE.NXDOMAIN


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_server_answers_over_udp_and_tcp_per_listener_network() -> None:
    from runtime.network.dns import DnsServer

    r = make()
    port = _free_port()
    server = DnsServer(r, port=port)
    await server.listen("front", "127.0.0.1")
    await server.listen("back", "127.0.0.2")  # the listening address picks the network
    loop = asyncio.get_running_loop()
    try:
        q = DNSRecord.question("web")
        udp = await loop.run_in_executor(None, lambda: q.send("127.0.0.1", port, timeout=2))
        assert sorted(str(a.rdata) for a in DNSRecord.parse(udp).rr) == ["10.200.0.2", "10.200.0.3"]
        tcp = await loop.run_in_executor(None, lambda: q.send("127.0.0.2", port, tcp=True, timeout=2))
        assert [str(a.rdata) for a in DNSRecord.parse(tcp).rr] == ["10.200.1.3"]
        db = await loop.run_in_executor(None, lambda: DNSRecord.question("db").send("127.0.0.1", port, timeout=2))
        assert DNSRecord.parse(db).header.rcode == RCODE.NXDOMAIN
    finally:
        await server.close()
    assert not server.listening("front")


async def test_large_udp_answer_is_truncated() -> None:
    from runtime.network.dns import DnsServer

    r = Resolver(upstreams=[])
    for i in range(40):
        r.add(f"c{i}", "n", f"10.200.0.{i + 2}", ["big"])
    port = _free_port()
    server = DnsServer(r, port=port)
    await server.listen("n", "127.0.0.1")
    loop = asyncio.get_running_loop()
    try:
        q = DNSRecord.question("big")
        udp = DNSRecord.parse(await loop.run_in_executor(None, lambda: q.send("127.0.0.1", port, timeout=2)))
        assert udp.header.tc == 1 and not udp.rr
        tcp = DNSRecord.parse(await loop.run_in_executor(None, lambda: q.send("127.0.0.1", port, tcp=True, timeout=2)))
        assert len(tcp.rr) == 40
    finally:
        await server.close()


async def test_port_taken_is_a_clear_error() -> None:
    import socket

    from runtime.network.dns import DnsServer
    from runtime.network.errors import NetworkError

    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind(("127.0.0.1", 0))
    server = DnsServer(Resolver(), port=busy.getsockname()[1])
    try:
        with pytest.raises(NetworkError, match="cannot serve dns on 127.0.0.1"):
            await server.listen("n", "127.0.0.1")
        assert not server.listening("n")
    finally:
        busy.close()


def test_reverse_lookup_of_a_container_address_names_the_container() -> None:
    r = Resolver(upstreams=[])
    r.add("c1", "net", "10.1.0.5", ["db", "proj-db-1"])
    reply = ask(r, "5.0.1.10.in-addr.arpa", "net", "PTR")
    assert reply.header.rcode == RCODE.NOERROR
    assert [str(a.rdata) for a in reply.rr] == ["proj-db-1."]
    # the same address on another network is not ours to answer: forwarded (SERVFAIL here)
    assert ask(r, "5.0.1.10.in-addr.arpa", "other", "PTR").header.rcode == RCODE.SERVFAIL
