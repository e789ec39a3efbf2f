"""Netlink work with pyroute2: bridges on the host, veth pairs into container namespaces.

Nothing here forks. To configure a container's side, a short-lived thread setns()es into
`/proc/<pid>/ns/net`, opens a netlink socket there and returns; the socket stays bound to that
namespace, and the daemon's event loop drives it with `AsyncIPRoute(use_socket=...)`.
"""
from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import ipaddress
import os
import socket
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import TypeVar

from runtime.network.errors import NetworkError
from runtime.network.names import mac_from_ip
from runtime.network.netlinklib import AsyncIPRoute
from runtime.network.netlinklib import NetlinkError as PyrNetlinkError

CLONE_NEWNET = 0x40000000
NETLINK_ROUTE = 0
T = TypeVar("T")

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def run_in_netns(pid: int, fn: Callable[[], T]) -> T:
    """Run `fn` on a fresh thread that has joined the network namespace of `pid`."""
    try:
        target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise NetworkError(
            f"cannot open the network namespace of pid {pid}: {exc.strerror}; is the process alive?"
        ) from exc
    result: list[T] = []
    failure: list[BaseException] = []

    def body() -> None:
        try:
            _setns(target)  # this thread only; it ends right after
            result.append(fn())
        except BaseException as exc:  # handed to the caller
            failure.append(exc)

    try:
        thread = threading.Thread(target=body, name=f"netns-{pid}")
        thread.start()
        thread.join()
    finally:
        os.close(target)
    if failure:
        raise failure[0]
    return result[0]


def netlink_socket_in(pid: int, ifnames: Sequence[str] = ()) -> tuple[socket.socket, dict[str, int]]:
    """A NETLINK_ROUTE socket that lives in the network namespace of `pid`, and the indexes of
    `ifnames` there (missing ones left out).

    The indexes come from if_nametoindex(3) on the thread that is inside the netns: an ioctl,
    ~100x cheaper than pyroute2 decoding a link dump message.
    """

    def body() -> tuple[socket.socket, dict[str, int]]:
        found = {}
        for name in ifnames:
            with contextlib.suppress(OSError):
                found[name] = socket.if_nametoindex(name)
        return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE), found

    return run_in_netns(pid, body)


def host_index(ifname: str) -> int | None:
    """Index of `ifname` in the daemon's (host) netns, or None."""
    try:
        return socket.if_nametoindex(ifname)
    except OSError:
        return None


def _fail(what: str, exc: PyrNetlinkError) -> NetworkError:
    code = exc.code if isinstance(exc.code, int) else 0
    return NetworkError(f"{what}: {os.strerror(code) if code else exc}")


@dataclass(frozen=True)
class HostNetInfo:
    routes: list[IPv4Network]  # destinations of every ipv4 route, all tables
    addresses: list[IPv4Network]  # networks of every ipv4 address
    default_mtu: int | None  # mtu of the default route's device
    links: frozenset[str] = frozenset()  # names of the host's links (a bridge name taken)
    # addresses a DNS server is bound to (UDP port 53), as /32s: a gateway another engine's
    # DNS still holds after its bridge went away is not free, though no interface has it
    dns_bound: tuple[IPv4Network, ...] = ()


def dns_bound_addresses(proc_udp: str = "/proc/net/udp") -> tuple[IPv4Network, ...]:
    """Addresses (not 0.0.0.0, not loopback) some UDP socket of this netns has bound on port 53."""
    found = []
    try:
        with open(proc_udp) as f:
            next(f, None)
            for line in f:
                local = line.split()[1]
                addr, _, port = local.partition(":")
                if int(port, 16) != 53:
                    continue
                ip = IPv4Network((int.from_bytes(bytes.fromhex(addr), "little"), 32))
                if not ip.network_address.is_unspecified and not ip.is_loopback:
                    found.append(ip)
    except (OSError, ValueError, IndexError):
        return ()
    return tuple(found)


async def host_net_info() -> HostNetInfo:
    routes: list[IPv4Network] = []
    addresses: list[IPv4Network] = []
    default_dev: int | None = None
    async with AsyncIPRoute() as ipr:
        async for msg in await ipr.route("dump", family=socket.AF_INET):
            dst = msg.get("dst") or "0.0.0.0"
            net = IPv4Network(f"{dst}/{msg['dst_len']}", strict=False)
            routes.append(net)
            if net.prefixlen == 0 and msg.get("table") == 254 and default_dev is None:
                default_dev = msg.get("oif")
        async for msg in await ipr.addr("dump", family=socket.AF_INET):
            addresses.append(IPv4Network(f"{msg.get('address')}/{msg['prefixlen']}", strict=False))
        names: set[str] = set()
        mtu = None
        async for msg in await ipr.link("dump"):
            names.add(str(msg.get("ifname")))
            if msg["index"] == default_dev:
                mtu = msg.get("mtu")
    return HostNetInfo(routes, addresses, mtu, frozenset(names), dns_bound_addresses())


async def _index(ipr: AsyncIPRoute, ifname: str) -> int | None:
    found = await ipr.link_lookup(ifname=ifname)
    return found[0] if found else None


async def link_exists(ifname: str) -> bool:
    async with AsyncIPRoute() as ipr:
        return await _index(ipr, ifname) is not None


async def ensure_bridge(name: str, gateway: str, prefixlen: int, mtu: int) -> None:
    """Create (or complete) bridge `name` with `gateway/prefixlen`, up. EEXIST is success."""
    try:
        async with AsyncIPRoute() as ipr:
            idx = await _index(ipr, name)
            if idx is None:
                # a fixed MAC: otherwise the bridge takes its lowest port's and changes as
                # containers come and go, and every container's ARP entry for the gateway goes stale
                await ipr.link("add", ifname=name, kind="bridge", mtu=mtu, address=mac_from_ip(gateway))
                idx = await _index(ipr, name)
                assert idx is not None
            try:
                await ipr.addr("add", index=idx, address=gateway, prefixlen=prefixlen)
            except PyrNetlinkError as exc:
                if exc.code != errno.EEXIST:
                    raise
            await ipr.link("set", index=idx, state="up")
    except PyrNetlinkError as exc:
        raise _fail(f"cannot create bridge {name}", exc) from exc


RTM_DELLINK = 17
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4


def _del_link_blocking(index: int) -> int:
    """RTM_DELLINK of host link `index` on a netlink socket of this thread; 0 or the errno.

    The kernel does the deletion inside the send (rtnl lock, then synchronize_net: ~2 ms for
    a veth, ~40 ms for a bridge here), so it is done off the daemon's loop."""
    body = struct.pack("=BxHiII", socket.AF_UNSPEC, 0, index, 0, 0)  # struct ifinfomsg
    msg = struct.pack("=IHHII", 16 + len(body), RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, 1, 0)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                       NETLINK_ROUTE) as sock:
        sock.bind((0, 0))
        sock.sendall(msg + body)
        while True:
            data = sock.recv(65536)
            off = 0
            while off + 16 <= len(data):
                length, kind, _, seq, _ = struct.unpack_from("=IHHII", data, off)
                if kind == NLMSG_ERROR and seq == 1:
                    code: int = struct.unpack_from("=i", data, off + 16)[0]
                    return -code
                off += max((length + 3) & ~3, 16)


async def delete_link(name: str) -> None:
    """Delete link `name` if present (idempotent), in a thread (see _del_link_blocking)."""
    index = host_index(name)
    if index is None:
        return
    try:
        code = await asyncio.to_thread(_del_link_blocking, index)
    except OSError as exc:
        code = exc.errno or errno.EIO
    if code and code not in (errno.ENODEV, errno.ENOENT):
        raise NetworkError(f"cannot delete link {name}: {os.strerror(code)}")


RTMGRP_LINK = 1


async def wait_gone(names: Sequence[str], timeout: float) -> list[str]:
    """Wait up to `timeout` s for host links `names` to go by themselves; return those left.

    A container's host veth goes with its network namespace: when the last process in it
    exits, the kernel's netns clean-up deletes the pair in one batch. Deleting the veth
    ourselves at that moment costs more (~15 ms here against ~7: the RTM_DELLINK waits in
    rcu_barrier behind the clean-up's own RCU work), so the caller waits for the kernel, and
    deletes what is still there after `timeout` (a namespace another process still holds)."""
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK,
                       NETLINK_ROUTE) as sock:
        sock.bind((0, RTMGRP_LINK))  # subscribed before the first look: no event is missed
        deadline = loop.time() + timeout
        while True:
            left = [n for n in names if host_index(n) is not None]
            remaining = deadline - loop.time()
            if not left or remaining <= 0:
                return left
            try:  # any link event: look again (ENOBUFS, events lost: look again too)
                await asyncio.wait_for(loop.sock_recv(sock, 65536), remaining)
            except TimeoutError:
                pass
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise


@dataclass(frozen=True)
class VethPlan:
    host: str  # host end, enslaved to `bridge`
    bridge: str
    peer: str  # name inside the container: eth0, eth1...
    ip: str
    prefixlen: int
    mac: str
    mtu: int
    gateway: str | None  # default route via this, for one network only
    link_local: tuple[str, ...] = ()  # more IPv4 addresses, link scope (169.254.0.0/16)


async def add_veths(pid: int, plans: list[VethPlan]) -> None:
    """Create each veth with its peer directly inside the netns of `pid`; configure both ends."""
    try:
        async with AsyncIPRoute() as ipr:
            for plan in plans:
                master = host_index(plan.bridge)
                if master is None:
                    raise NetworkError(f"bridge {plan.bridge} is missing; recreate the network")
                # one request: host end on the bridge and up, peer born inside the netns
                request = {
                    "ifname": plan.host,
                    "kind": "veth",
                    "mtu": plan.mtu,
                    "master": master,
                    "state": "up",
                    "peer": {
                        "ifname": plan.peer,
                        "net_ns_pid": pid,
                        "mtu": plan.mtu,
                        "address": plan.mac,
                    },
                }
                try:
                    await ipr.link("add", **request)
                except PyrNetlinkError as exc:
                    stale = await _index(ipr, plan.host) if exc.code == errno.EEXIST else None
                    if stale is None:
                        raise
                    await ipr.link("del", index=stale)  # left by a crashed earlier attach
                    await ipr.link("add", **request)
    except PyrNetlinkError as exc:
        raise _fail(f"cannot create veth for pid {pid}", exc) from exc
    await configure_netns(pid, plans)


async def configure_netns(pid: int, plans: list[VethPlan]) -> None:
    sock, indexes = netlink_socket_in(pid, ["lo", *(plan.peer for plan in plans)])
    try:
        async with AsyncIPRoute(use_socket=sock) as ipr:
            await ipr.link("set", index=indexes.get("lo", 1), state="up")
            for plan in plans:
                idx = indexes.get(plan.peer)
                if idx is None:
                    raise NetworkError(f"interface {plan.peer} did not appear in the netns of pid {pid}")
                await ipr.addr("add", index=idx, address=plan.ip, prefixlen=plan.prefixlen)
                for extra in plan.link_local:
                    await ipr.addr("add", index=idx, address=extra, prefixlen=16, scope=253)
                await ipr.link("set", index=idx, state="up")  # the peer is created down
            for plan in plans:
                if plan.gateway:
                    await ipr.route("add", dst="0.0.0.0/0", gateway=plan.gateway)
                    break
    except PyrNetlinkError as exc:
        raise _fail(f"cannot configure the network namespace of pid {pid}", exc) from exc
    finally:
        sock.close()


async def loopback_up(pid: int) -> None:
    sock, indexes = netlink_socket_in(pid, ["lo"])
    try:
        async with AsyncIPRoute(use_socket=sock) as ipr:
            await ipr.link("set", index=indexes.get("lo", 1), state="up")
    except PyrNetlinkError as exc:
        raise _fail(f"cannot bring lo up in the netns of pid {pid}", exc) from exc
    finally:
        sock.close()


def prefixlen_of(subnet: str) -> int:
    return ipaddress.IPv4Network(subnet).prefixlen
