"""Content of a container's /etc/resolv.conf and /etc/hosts (the engine writes and binds them)."""
from __future__ import annotations

from collections.abc import Sequence

HOSTS_HEADER = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)


def _parse(text: str) -> tuple[list[str], list[str], list[str]]:
    servers: list[str] = []
    search: list[str] = []
    options: list[str] = []
    for line in text.splitlines():
        parts = line.split()
        if not parts or parts[0].startswith(("#", ";")):
            continue
        if parts[0] == "nameserver" and len(parts) > 1:
            servers.append(parts[1])
        elif parts[0] in ("search", "domain"):
            search = parts[1:]
        elif parts[0] == "options":
            options += parts[1:]
    return servers, search, options


def resolv_conf(
    gateways: Sequence[str],
    dns: Sequence[str] = (),
    dns_search: Sequence[str] = (),
    dns_opt: Sequence[str] = (),
    host_resolv_conf: str = "",
    host_mode: bool = False,
) -> str:
    """/etc/resolv.conf for a container.

    Bridge mode (`gateways` = the gateway of each attached network, first first): the embedded
    server on the first gateway is the only nameserver; `dns:` servers become its upstreams for
    this container (the engine passes them to `attach`), as with Docker. Host/none/container
    modes (`gateways` empty): `dns:` servers, else the host's; loopback servers are dropped
    unless `host_mode` (they are unreachable from another netns).
    Search and options: the container's own, else the host's.
    """
    host_servers, host_search, host_options = _parse(host_resolv_conf)
    if gateways:
        servers = [gateways[0]]
    else:
        servers = list(dns) or [s for s in host_servers if host_mode or not s.startswith("127.")]
    search = list(dns_search) or host_search
    options = list(dns_opt) or host_options
    lines = [f"nameserver {s}" for s in servers]
    if search:
        lines.append("search " + " ".join(search))
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


def hosts_file(
    hostname: str,
    addresses: Sequence[str],
    domainname: str | None = None,
    extra_hosts: Sequence[tuple[str, str]] = (),
    host_gateway: str | None = None,
) -> str:
    """/etc/hosts: localhost lines, `extra_hosts`, then the container's own addresses.

    `host-gateway` as an extra_hosts address becomes `host_gateway` (the first network's
    gateway: the host as seen from the container).
    """
    out = [HOSTS_HEADER]
    for name, ip in extra_hosts:
        if ip == "host-gateway":
            if not host_gateway:
                continue
            ip = host_gateway
        out.append(f"{ip}\t{name}\n")
    names = f"{hostname}.{domainname} {hostname}" if domainname else hostname
    for ip in addresses:
        out.append(f"{ip}\t{names}\n")
    return "".join(out)
