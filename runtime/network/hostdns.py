"""The host's DNS servers as containers need them: systemd-resolved aware, as Docker.

On a host with systemd-resolved, /etc/resolv.conf names only resolved's loopback stub
(`nameserver 127.0.0.53`; 127.0.0.54 is its proxy-only stub). Inside a container's network
namespace that address is the container's own loopback, so Docker (libnetwork's
`resolvconf.Path()`) reads /run/systemd/resolve/resolv.conf instead: resolved writes the real
upstream servers it uses there. We do the same for every consumer that is not in the host's
network namespace:

- the embedded DNS server's upstreams (it forwards what it does not know);
- /etc/resolv.conf of containers without the embedded server (network_mode none) and the
  search/options lines of the others.

network_mode host keeps the host's /etc/resolv.conf as it is (Docker copies it): its container
shares the host's loopback, where the stub answers. Image builds run in the host's network
namespace too and copy /etc/resolv.conf as it is (runtime.images.build_adapters).

Unlike Docker, which reads the choice once at start, the files are re-read whenever they
change (a cheap stat per use): resolved rewrites its file when the network changes (a laptop
moving between networks, a VPN coming up). When resolved's file lists no server (it has none
configured, only its compiled-in fallbacks), the host's file is used: the embedded server
forwards from the host's namespace, where the stub answers.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

HOST_RESOLV_CONF = Path("/etc/resolv.conf")
RESOLVED_RESOLV_CONF = Path("/run/systemd/resolve/resolv.conf")
RESOLVED_STUBS = frozenset({"127.0.0.53", "127.0.0.54"})


def nameservers(text: str) -> list[str]:
    """The `nameserver` entries of a resolv.conf text, in order."""
    servers = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            servers.append(parts[1])
    return servers


def only_resolved_stub(text: str) -> bool:
    servers = nameservers(text)
    return bool(servers) and all(s in RESOLVED_STUBS for s in servers)


def choose(host_text: str, resolved_text: str | None) -> str:
    """The resolv.conf text whose servers a container can use: resolved's upstream file when
    the host's names only resolved's stub and resolved's file names a server; else the host's.
    `resolved_text` is None when that file does not exist."""
    if resolved_text is not None and only_resolved_stub(host_text) and nameservers(resolved_text):
        return resolved_text
    return host_text


@dataclass
class _Cached:
    key: tuple[int, int, int] | None = None  # (inode, mtime ns, size)
    text: str | None = None


@dataclass
class HostResolvConf:
    """Reads the host's resolv.conf and resolved's upstream file, again only when they change."""

    host: Path = HOST_RESOLV_CONF
    resolved: Path = RESOLVED_RESOLV_CONF
    _cache: dict[Path, _Cached] = field(default_factory=dict)

    def _read(self, path: Path) -> str | None:
        entry = self._cache.setdefault(path, _Cached())
        try:
            st = os.stat(path)  # follows the /etc/resolv.conf -> stub-resolv.conf link
        except OSError:
            entry.key, entry.text = None, None
            return None
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if key != entry.key:
            try:
                entry.text = path.read_text()
            except OSError:
                entry.text = None
            entry.key = key
        return entry.text

    def host_text(self) -> str:
        """/etc/resolv.conf as it is (for the host's own network namespace)."""
        return self._read(self.host) or ""

    def upstream_text(self) -> str:
        """The resolv.conf whose servers work from a container's network namespace."""
        return choose(self.host_text(), self._read(self.resolved))

    def upstreams(self) -> list[str]:
        """Servers the embedded DNS forwards to when a container has no `dns:` of its own."""
        return nameservers(self.upstream_text())
