"""NetworkManager: the network layer's API for the engine.

Networks are Linux bridges with their own subnet; containers join them through veth pairs;
an embedded DNS server answers names per network; NAT and published ports are nft rules in
the engine's own table. What was handed out (subnets, addresses, ports) is persisted under
the state root (runtime.network.state) so a daemon restart hands out nothing twice, and
`start()` rebuilds the in-memory parts (DNS records and listeners, port reservations).

Every method is safe to call again after a failure: half-made work is rolled back before an
error leaves, and teardown (`detach`, `unpublish`, `remove`) is idempotent.
"""
from __future__ import annotations

import asyncio
import builtins
import contextlib
import ipaddress
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import replace
from typing import Any, Literal, TypeVar

from runtime.api import NetworkInfo
from runtime.errors import Conflict, InvalidArgument, NotFound
from runtime.network import firewall, hostdns, hostfw, hostlock, ipam, links, names, ports, sysctl
from runtime.network.dns import DnsServer, Resolver
from runtime.network.errors import NetworkError
from runtime.network.files import resolv_conf
from runtime.network.state import (
    ContainerRecord,
    Endpoint,
    NetworkRecord,
    NetworkState,
    PublishedPort,
    StateStore,
)
from runtime.paths import Paths
from runtime.tasks import cancel_and_wait
from runtime.types import NetworkAttachment, NetworkSpec, PortBinding

R = TypeVar("R")
log = logging.getLogger(__name__)

PortMode = Literal["nat", "proxy"]
DEFAULT_MTU = 1500
# how long a detach after the container's exit waits for the kernel to delete its host veths
# with the namespace (links.wait_gone: ~7 ms here) before it deletes what is left itself
VETH_GONE_WAIT = 0.1


def _info(rec: NetworkRecord, warnings: Sequence[str] = ()) -> NetworkInfo:
    return NetworkInfo(
        name=rec.spec.name, spec=rec.spec, bridge=rec.bridge, subnet=rec.subnet, gateway=rec.gateway,
        warnings=tuple(warnings),
    )


def _bridge_rule(rec: NetworkRecord) -> firewall.BridgeRule:
    return firewall.BridgeRule(rec.bridge, rec.subnet, rec.spec.internal)


class NetworkManager:
    def __init__(
        self,
        paths: Paths,
        *,
        pools: Sequence[str] = ipam.DEFAULT_POOLS,
        port_mode: PortMode = "nat",
        dns_port: int = 53,
        upstreams: Sequence[str] | None = None,
        dns_timeout: float = 1.0,
    ) -> None:
        self.paths = paths
        self.store = StateStore(paths.networks)
        self.table = firewall.table_name(paths.root)
        self.pools = tuple(pools)
        self.port_mode: PortMode = port_mode
        self.host_dns = hostdns.HostResolvConf()
        self.resolver = (
            Resolver(list(upstreams), dns_timeout) if upstreams is not None
            else Resolver(timeout=dns_timeout, host_upstreams=self.host_dns.upstreams)
        )
        self.dns = DnsServer(self.resolver, dns_port)
        self._reservations: dict[str, list[ports.Reservation]] = {}
        self._proxies: dict[str, list[ports.TcpProxy]] = {}
        self._lock = asyncio.Lock()
        self._host_fw: hostfw.HostFirewall | None = None  # the other firewalls, as last probed
        self._synced: list[firewall.BridgeRule] | None = None  # bridges our DOCKER-USER rules are for
        self._told_bridge_nf = False

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """After a daemon (re)start: bridges, rules, DNS listeners/records, port reservations."""
        async with self._lock:
            state = self.store.load()
            for rec in state.networks.values():
                try:
                    await self._restore_kernel(rec)
                except (NetworkError, Conflict) as exc:  # one broken network must not stop the daemon
                    log.warning("network %s could not be restored: %s", rec.spec.name, exc)
            for c in state.containers.values():
                self._register_dns(c, state)
                if c.ports:
                    await self._hold_ports(c.id, c.ports)
            await self._apply_firewall(state, sync_host=True)
            for rec in state.networks.values():
                self._report(rec, self._host_problems(rec))

    async def close(self) -> None:
        """Stop serving (DNS, proxies, port reservations); networks stay as they are."""
        await self.dns.close()
        for cid in list(self._reservations):
            await self._release_ports(cid)

    # -- networks ------------------------------------------------------------------------
    async def create(self, spec: NetworkSpec) -> NetworkInfo:
        """Create network `spec.name` (idempotent: an existing one is returned as it is)."""
        if spec.external:
            return self.inspect(spec.name, external=True)
        if spec.driver not in ("bridge", ""):
            raise InvalidArgument(
                f"network {spec.name}: driver {spec.driver!r} is not supported; use bridge", subject=spec.name
            )
        async with self._lock:
            existing = self.store.load().networks.get(spec.name)
            if existing is not None:
                await self._restore_kernel(existing)
                # every `up` passes here: rules another engine's start made necessary (Docker's
                # DOCKER-USER appearing) are added now
                problems = await self._apply_firewall(self.store.load(), sync_host=True)
                problems += self._host_problems(existing)
                self._report(existing, problems)
                return _info(existing, problems)
            failure: BaseException | None = None
            # host-wide: another engine choosing a subnet now must see our bridge's route
            async with hostlock.held_async():
                host = await links.host_net_info()
                with self.store.transaction() as st:
                    rec = self._plan_network(spec, st, host)
                    st.networks[spec.name] = rec
                    snapshot = st
                # our rules are written while the bridge is made: they name it, neither needs
                # the other, and the rules are subprocesses (nft, the host's iptables probe)
                rules = asyncio.ensure_future(self._apply_firewall(snapshot, sync_host=True))
                try:
                    await self._ensure_kernel(rec)
                except BaseException as exc:
                    failure = exc
                await asyncio.wait([rules])  # ended before anything is undone
            try:
                if failure is not None:
                    if not rules.cancelled():
                        rules.exception()  # retrieved: the bridge's failure is the one raised
                    raise failure
                problems = rules.result()
                # forwarding on once the rules are there; its host lock may wait for another
                # engine's network create: not on the loop
                await asyncio.to_thread(sysctl.forward_acquire)
            except BaseException:
                await self._remove_locked(spec.name)  # takes the host lock itself
                raise
            problems += self._host_problems(rec)
            self._report(rec, problems)
            return _info(rec, problems)

    def _plan_network(self, spec: NetworkSpec, st: NetworkState, host: links.HostNetInfo) -> NetworkRecord:
        taken = [ipaddress.IPv4Network(n.subnet) for n in st.networks.values()]
        if spec.subnet:
            subnet = ipam.parse_subnet(spec.subnet, spec.name)
            for other in st.networks.values():
                if subnet.overlaps(ipaddress.IPv4Network(other.subnet)):
                    raise Conflict(
                        f"network {spec.name}: subnet {subnet} overlaps network {other.spec.name} "
                        f"({other.subnet}); pick another subnet",
                        subject=spec.name,
                    )
            # an address of the host (another engine's bridge, a second composerd's network)
            # in it: the same gateway twice, and DNS could not bind it ("address in use")
            for used in (*host.addresses, *host.dns_bound):
                if subnet.overlaps(used) and not used.is_loopback:
                    raise Conflict(
                        f"network {spec.name}: subnet {subnet} overlaps {used}, which is in use on "
                        "this host (an interface's or a DNS server's address: another network or "
                        "engine); pick another subnet",
                        subject=spec.name,
                    )
        else:
            subnet = ipam.choose_subnet(taken, [*host.routes, *host.addresses, *host.dns_bound], self.pools)
        gateway = (
            ipam.check_gateway(subnet, spec.gateway, spec.name) if spec.gateway else ipam.default_gateway(subnet)
        )
        if spec.ip_range:
            ipam.check_ip_range(subnet, spec.ip_range, spec.name)
        ipam.check_aux_addresses(subnet, gateway, spec.aux_addresses, spec.name)
        mtu = spec.mtu or host.default_mtu or DEFAULT_MTU
        return NetworkRecord(
            spec=spec, bridge=self._free_bridge_name(spec.name, st, host), subnet=str(subnet),
            gateway=str(gateway), mtu=mtu,
        )

    @staticmethod
    def _free_bridge_name(network: str, st: NetworkState, host: links.HostNetInfo) -> str:
        """The first of the network's bridge names (names.bridge_name) that no host link and
        none of our networks has: another state root may hold a network of the same name,
        whose bridge we would otherwise take over (and delete with ours). Chosen under the
        host lock, with the bridge made before it is let go."""
        ours = {rec.bridge for rec in st.networks.values()}
        for attempt in range(64):
            name = names.bridge_name(network, attempt)
            if name not in host.links and name not in ours:
                return name
        raise Conflict(f"network {network}: no free bridge name (64 tried); remove unused "
                       "cmpb* links", subject=network)

    async def _restore_kernel(self, rec: NetworkRecord) -> None:
        """`_ensure_kernel` for a network made earlier (daemon start, `up` again): a bridge
        that went away (a reboot, a hand's `ip link del`) is made again only if no other
        interface of the host took its subnet or name meanwhile (another state root's
        network), under the host lock as a new network is."""
        if links.host_index(rec.bridge) is not None:  # an ioctl, ~10 us: every `up` passes here
            await self._ensure_kernel(rec)
            return
        async with hostlock.held_async():
            host = await links.host_net_info()
            subnet = ipaddress.IPv4Network(rec.subnet)
            clash = next((a for a in host.addresses if a.overlaps(subnet) and not a.is_loopback), None)
            if clash is not None or rec.bridge in host.links:
                what = f"its subnet {subnet} is on" if clash is not None else f"its bridge name {rec.bridge} is"
                raise Conflict(
                    f"network {rec.spec.name}: its bridge is gone and {what} another interface of "
                    "this host now (another network or engine); remove the network (composer down) "
                    "and create it again", subject=rec.spec.name)
            await self._ensure_kernel(rec)

    async def _ensure_kernel(self, rec: NetworkRecord) -> None:
        await links.ensure_bridge(rec.bridge, rec.gateway, links.prefixlen_of(rec.subnet), rec.mtu)
        sysctl.set_route_localnet(rec.bridge)
        await self.dns.listen(rec.spec.name, rec.gateway)

    async def remove(self, name: str, force: bool = False) -> None:
        """Remove network `name`: bridge, rules, DNS listener and IPAM entries. Idempotent.

        Containers still attached are a Conflict, unless `force`: then they are detached
        first (from every network, as `detach` does).
        """
        if name not in self.store.load().networks:
            raise NotFound(f"network {name} not found", subject=name)
        if force:
            rec = self.store.load().networks.get(name)
            for cid in sorted(set(rec.leases.values())) if rec else []:
                await self.detach(cid)
        async with self._lock:
            rec = self.store.load().networks.get(name)
            if rec is not None and rec.leases:
                users = ", ".join(sorted(set(rec.leases.values())))
                raise Conflict(
                    f"network {name} still has containers attached ({users}); stop or detach them first",
                    subject=name,
                )
            await self._remove_locked(name)

    async def _remove_locked(self, name: str) -> None:
        await self.dns.stop(name)
        self.resolver.remove_network(name)
        # the bridge is deleted while our rules are rewritten without it (the rules name it,
        # they do not need it; each is 20-60 ms of kernel or nft work on `down`'s path); the
        # record goes once both are done, so a failure of either leaves it for a retry
        now = self.store.load()
        rec = now.networks.get(name)
        snapshot = NetworkState(networks={k: v for k, v in now.networks.items() if k != name},
                                containers=now.containers)

        async def rules() -> builtins.list[tuple[str, str]]:
            if snapshot.networks:
                await self._apply_firewall(snapshot)
                return []
            # the last one: the host's tables are listed while ours is deleted
            return await _beside(self._apply_firewall(snapshot), firewall.list_tables())

        bridge = rec.bridge if rec is not None else names.bridge_name(name)
        tables = await _beside(links.delete_link(bridge), rules())
        with self.store.transaction() as st:
            st.networks.pop(name, None)
        if not snapshot.networks:
            others = [t for _, t in tables
                      if t.startswith(firewall.DEFAULT_TABLE) and t != self.table]
            foreign = hostfw.foreign_engines(self._host_fw, tables)
            # in a thread: it waits for the host-wide lock, which another engine (or a test of
            # two engines) may hold for long; on the loop it stopped every request meanwhile
            await asyncio.to_thread(sysctl.forward_release, others_active=bool(others),
                                    keep_on=bool(foreign))
            if foreign and not others:
                log.info("net.ipv4.ip_forward stays on: other engines' firewall state is on this host (%s)",
                         ", ".join(foreign))

    def list(self, labels: dict[str, str] | None = None) -> builtins.list[NetworkInfo]:
        recs = self.store.load().networks.values()
        want = labels or {}
        return [_info(r) for r in recs if all(r.spec.labels.get(k) == v for k, v in want.items())]

    def inspect(self, name: str, external: bool = False) -> NetworkInfo:
        rec = self.store.load().networks.get(name)
        if rec is None:
            if external:
                raise NotFound(
                    f"network {name} declared as external, but could not be found; "
                    f"create it first (composer network create {name})",
                    subject=name,
                )
            raise NotFound(f"network {name} not found", subject=name)
        return _info(rec)

    # -- containers ----------------------------------------------------------------------
    async def attach(
        self,
        container_id: str,
        pid: int,
        attachments: Sequence[NetworkAttachment],
        dns_names: Sequence[str],
        *,
        dns_servers: Sequence[str] = (),
    ) -> dict[str, str]:
        """Join the netns of `pid` to each network (eth0, eth1... by priority); return network -> ipv4.

        The first network with a route out (not internal) gets the default route. `dns_names`
        (service name, container name, ...) plus each attachment's aliases become DNS names on
        that network; `dns_servers` (the container's `dns:`) replace the host's upstreams for it.
        """
        ordered = sorted(attachments, key=lambda a: -a.priority)
        if not ordered:
            await self.setup_loopback(pid)
            return {}
        async with self._lock:
            with self.store.transaction() as st:
                self._release_container(st, container_id, keep_ports=True)
                record = self._plan_endpoints(st, container_id, pid, ordered, dns_names, dns_servers)
                snapshot = st
            plans = self._veth_plans(snapshot, record)
            try:
                await links.add_veths(pid, plans)
            except BaseException:
                for p in plans:
                    with contextlib.suppress(Exception):
                        await links.delete_link(p.host)
                with self.store.transaction() as st:
                    self._release_container(st, container_id, keep_ports=True)
                raise
            self.resolver.remove_owner(container_id)
            self._register_dns(record, snapshot)
            return {e.network: e.ip for e in record.endpoints}

    def _plan_endpoints(
        self,
        st: NetworkState,
        cid: str,
        pid: int,
        ordered: Sequence[NetworkAttachment],
        dns_names: Sequence[str],
        dns_servers: Sequence[str],
    ) -> ContainerRecord:
        record = st.containers.get(cid) or ContainerRecord(id=cid)
        record.pid = pid
        record.dns_names = list(dns_names)
        record.dns_servers = list(dns_servers)
        record.endpoints = []
        ifnames = names.container_ifnames([a.interface_name for a in ordered], cid)
        for i, att in enumerate(ordered):
            net = st.networks.get(att.network)
            if net is None:
                raise NotFound(f"network {att.network} not found; create it before attaching", subject=att.network)
            if any(e.network == att.network for e in record.endpoints):
                raise InvalidArgument(f"container {cid} lists network {att.network} twice", subject=cid)
            subnet, gateway = ipaddress.IPv4Network(net.subnet), ipaddress.IPv4Address(net.gateway)
            ip = ipam.allocate_ip(
                subnet, gateway, net.leases, att.ipv4_address, att.network,
                ipaddress.IPv4Network(net.spec.ip_range) if net.spec.ip_range else None,
                ipam.check_aux_addresses(subnet, gateway, net.spec.aux_addresses, att.network),
            )
            net.leases[str(ip)] = cid
            record.endpoints.append(
                Endpoint(
                    network=att.network,
                    ip=str(ip),
                    host_veth=names.veth_name(cid, att.network),
                    ifname=ifnames[i],
                    mac=att.mac_address or names.mac_from_ip(str(ip)),
                    aliases=list(att.aliases),
                    link_local=list(att.link_local_ips),
                    gw_priority=att.gw_priority,
                )
            )
        st.containers[cid] = record
        return record

    @staticmethod
    def _veth_plans(st: NetworkState, record: ContainerRecord) -> builtins.list[links.VethPlan]:
        plans = []
        # the default route: via the routed (not internal) network of the highest gw_priority,
        # the first of them in priority order on a tie
        routed = [e for e in record.endpoints if not st.networks[e.network].spec.internal]
        gateway_of = max(routed, key=lambda e: e.gw_priority) if routed else None
        for e in record.endpoints:
            net = st.networks[e.network]
            default = e is gateway_of
            plans.append(
                links.VethPlan(
                    host=e.host_veth,
                    bridge=net.bridge,
                    peer=e.ifname,
                    ip=e.ip,
                    prefixlen=links.prefixlen_of(net.subnet),
                    mac=e.mac,
                    mtu=net.mtu,
                    gateway=net.gateway if default else None,
                    link_local=tuple(e.link_local),
                )
            )
        return plans

    @staticmethod
    def _release_container(st: NetworkState, cid: str, keep_ports: bool) -> ContainerRecord | None:
        record = st.containers.get(cid)
        if record is None:
            return None
        for e in record.endpoints:
            net = st.networks.get(e.network)
            if net is not None and net.leases.get(e.ip) == cid:
                del net.leases[e.ip]
        if keep_ports and record.ports:
            record.endpoints = []
        else:
            del st.containers[cid]
        return record

    def _register_dns(self, record: ContainerRecord, st: NetworkState) -> None:
        for e in record.endpoints:
            if e.network in st.networks:
                self.resolver.add(record.id, e.network, e.ip, [*record.dns_names, *e.aliases], record.dns_servers)

    async def detach(self, container_id: str, netns_ended: bool = False) -> None:
        """Release the container's addresses, host veths, DNS names and published ports. Idempotent.

        `netns_ended`: the container's init has exited, so its network namespace (and with it
        each veth pair) is going unless another process still holds it: the host veths are
        given VETH_GONE_WAIT to go by themselves (links.wait_gone) before they are deleted."""
        async with self._lock:
            await self._release_ports(container_id)
            with self.store.transaction() as st:
                record = self._release_container(st, container_id, keep_ports=False)
                snapshot = st
            self.resolver.remove_owner(container_id)
            if record is None:
                return
            hosts = [e.host_veth for e in record.endpoints]
            if netns_ended and hosts:
                hosts = await links.wait_gone(hosts, VETH_GONE_WAIT)
            for host in hosts:
                await links.delete_link(host)
            if record.ports:
                await self._apply_firewall(snapshot)

    async def setup_loopback(self, pid: int) -> None:
        """network_mode none: the container's own netns with only lo, up."""
        await links.loopback_up(pid)

    def resolv_conf(
        self,
        container_id: str,
        dns: Sequence[str] = (),
        dns_search: Sequence[str] = (),
        dns_opt: Sequence[str] = (),
        host_mode: bool = False,
    ) -> str:
        """/etc/resolv.conf for an attached container (or for host/none mode when not attached).

        Host mode starts from the host's /etc/resolv.conf as it is (its loopback is the host's);
        every other mode from the file whose servers work from another namespace
        (runtime.network.hostdns: resolved's upstream file on a systemd-resolved host).
        """
        st = self.store.load()
        record = st.containers.get(container_id)
        gateways = [st.networks[e.network].gateway for e in record.endpoints] if record else []
        host_text = self.host_dns.host_text() if host_mode else self.host_dns.upstream_text()
        return resolv_conf(gateways, dns, dns_search, dns_opt, host_text, host_mode)

    def gateway_of(self, network: str) -> str:
        return self.inspect(network).gateway

    # -- published ports -----------------------------------------------------------------
    async def publish(
        self, container_id: str, ip: str, bindings: Sequence[PortBinding]
    ) -> builtins.list[PortBinding]:
        """Make `bindings` reach `ip` (the container's address); return them with real host ports.

        Conflict (naming the port) when a host port is taken; nothing is left half-made.
        """
        async with self._lock:
            reservations = ports.reserve_all(bindings)
            published = [PublishedPort(r.binding, ip) for r in reservations]
            try:
                proxies = await self._start_proxies(reservations, ip)
                with self.store.transaction() as st:
                    record = st.containers.setdefault(container_id, ContainerRecord(id=container_id))
                    record.ports.extend(published)
                    snapshot = st
                await self._apply_firewall(snapshot)
            except BaseException:
                for r in reservations:
                    r.close()
                with self.store.transaction() as st:
                    rec = st.containers.get(container_id)
                    if rec is not None:
                        rec.ports = [p for p in rec.ports if p not in published]
                raise
            self._reservations.setdefault(container_id, []).extend(reservations)
            self._proxies.setdefault(container_id, []).extend(proxies)
            return [p.binding for p in published]

    async def unpublish(self, container_id: str) -> None:
        """Close the container's published ports. Idempotent."""
        async with self._lock:
            await self._release_ports(container_id)
            with self.store.transaction() as st:
                record = st.containers.get(container_id)
                had = bool(record and record.ports)
                if record is not None:
                    record.ports = []
                    if not record.endpoints:
                        del st.containers[container_id]
                snapshot = st
            if had:
                await self._apply_firewall(snapshot)

    def _proxied(self, binding: PortBinding) -> bool:
        return self.port_mode == "proxy" and binding.protocol == "tcp"

    async def _start_proxies(
        self, reservations: Sequence[ports.Reservation], ip: str
    ) -> builtins.list[ports.TcpProxy]:
        started: builtins.list[ports.TcpProxy] = []
        for r in reservations:
            if self._proxied(r.binding):
                proxy = ports.TcpProxy(r, ip, r.binding.container_port)
                await proxy.start()
                started.append(proxy)
        return started

    async def _hold_ports(self, cid: str, published: Sequence[PublishedPort]) -> None:
        held = []
        for p in published:
            try:
                held.append(ports.reserve(p.binding))
            except Conflict as exc:
                log.warning("container %s: cannot re-reserve %s: %s", cid, ports.describe(p.binding), exc)
        self._reservations[cid] = held
        proxies: builtins.list[ports.TcpProxy] = []
        for r in held:
            ip = next(p.container_ip for p in published if p.binding == r.binding)
            proxies += await self._start_proxies([r], ip)
        self._proxies[cid] = proxies

    async def _release_ports(self, cid: str) -> None:
        for proxy in self._proxies.pop(cid, []):
            await proxy.close()
        for r in self._reservations.pop(cid, []):
            r.close()

    # -- firewall ------------------------------------------------------------------------
    async def _apply_firewall(self, st: NetworkState, sync_host: bool = False) -> builtins.list[str]:
        """Our nft table from `st`; then, when our bridges changed (or `sync_host`), our rules in
        the host's other firewalls (runtime.network.hostfw). Returns warning lines."""
        bridges = [_bridge_rule(n) for n in st.networks.values()]
        dnats = [
            firewall.DnatRule(
                p.binding.protocol, p.binding.host_ip, p.binding.host_port, p.container_ip, p.binding.container_port
            )
            for c in st.containers.values()
            for p in c.ports
            if not self._proxied(p.binding)
        ]
        if not sync_host and bridges == self._synced:
            await firewall.apply(self.table, bridges, dnats)
            return []
        # the host's firewalls are read while ours is written: neither depends on the other
        # (the probe skips our own table), and each is a subprocess on a create's or a
        # remove's path
        self._host_fw = await _beside(firewall.apply(self.table, bridges, dnats),
                                      hostfw.probe(sysctl.bridge_netfilter()))
        warning = await hostfw.sync_docker_user(self.table, bridges, self._host_fw)
        self._synced = None if warning else bridges
        return [warning] if warning else []

    def _host_problems(self, rec: NetworkRecord) -> builtins.list[str]:
        """What on this host (as last probed) drops the network's traffic, one line each."""
        if self._host_fw is None:
            return []
        return hostfw.blockers(rec.spec.name, _bridge_rule(rec), self._host_fw)

    def _report(self, rec: NetworkRecord, problems: Sequence[str]) -> None:
        for line in problems:
            log.warning("network %s: %s", rec.spec.name, line)
        if not self._told_bridge_nf and self._host_fw is not None and not self._host_fw.bridge_netfilter:
            self._told_bridge_nf = True
            log.info(
                "br_netfilter is not active here (net.bridge.bridge-nf-call-iptables missing or 0); "
                "composer does not load it: frames inside a network skip the firewall, which composer "
                "does not need, and connections from a network to a port it publishes are masqueraded"
            )

    def published(self, container_id: str) -> builtins.list[PortBinding]:
        record = self.store.load().containers.get(container_id)
        return [replace(p.binding) for p in record.ports] if record else []


async def _beside(first: Awaitable[Any], second: Awaitable[R]) -> R:
    """Run `second` while `first` runs; `first`'s error is raised (`second` is then
    cancelled), else `second`'s result is returned once both are done."""
    other = asyncio.ensure_future(second)
    try:
        await first
    except BaseException:
        await cancel_and_wait(other)
        raise
    return await other
