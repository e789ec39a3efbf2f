"""What the network layer has handed out, persisted so a daemon restart reuses nothing twice.

One JSON file, `<state root>/networks/network-state.json`, rewritten atomically (temp file +
rename) under an exclusive `flock` on a sibling lock file, so two processes sharing a state
root serialise their changes.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from runtime import serde
from runtime.types import NetworkSpec, PortBinding

STATE_FILE = "network-state.json"
LOCK_FILE = "network-state.lock"


@dataclass
class NetworkRecord:
    spec: NetworkSpec
    bridge: str
    subnet: str
    gateway: str
    mtu: int
    leases: dict[str, str] = field(default_factory=dict)  # ip -> container id


@dataclass
class Endpoint:
    network: str
    ip: str
    host_veth: str
    ifname: str
    mac: str
    aliases: list[str] = field(default_factory=list)
    link_local: list[str] = field(default_factory=list)  # link_local_ips, e.g. 169.254.1.1
    gw_priority: int = 0


@dataclass
class PublishedPort:
    binding: PortBinding  # host_port filled in
    container_ip: str


@dataclass
class ContainerRecord:
    id: str
    pid: int = 0
    endpoints: list[Endpoint] = field(default_factory=list)
    dns_names: list[str] = field(default_factory=list)
    dns_servers: list[str] = field(default_factory=list)
    ports: list[PublishedPort] = field(default_factory=list)


@dataclass
class NetworkState:
    networks: dict[str, NetworkRecord] = field(default_factory=dict)
    containers: dict[str, ContainerRecord] = field(default_factory=dict)


class StateStore:
    """The state file, cached in memory while its identity (inode, size, mtime) is unchanged.

    The cache matters: parsing the whole state costs milliseconds per hundred containers,
    and `attach` has a budget of 15 ms. Another process writing the file changes its identity,
    so the next load re-reads it.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / STATE_FILE
        self._lock_path = directory / LOCK_FILE
        self._cache: tuple[tuple[int, int, int], NetworkState] | None = None
        self._text: tuple[tuple[int, int, int], str] | None = None  # the file's text, as read/written

    def _identity(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def load(self) -> NetworkState:
        """The current state. Treat it as read-only outside `transaction()`."""
        ident = self._identity()
        if ident is None:
            self._cache = None
            self._text = None
            return NetworkState()
        if self._cache is not None and self._cache[0] == ident:
            return self._cache[1]
        text = self.path.read_text()
        state = serde.from_dict(NetworkState, json.loads(text))
        self._cache = (ident, state)
        self._text = (ident, text)
        return state

    def save(self, state: NetworkState) -> None:
        text = json.dumps(serde.to_dict(state), separators=(",", ":"))
        ident = self._identity()
        if ident is not None and self._text == (ident, text):
            # nothing changed (a detach or unpublish of what is gone already): no write. A
            # rename over the file costs ~2 ms on ext4 (auto_da_alloc flushes the new data),
            # on the event loop, several times per container start and removal
            self._cache = (ident, state)
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(text)
        os.replace(tmp, self.path)
        ident = self._identity()
        self._cache = (ident, state) if ident is not None else None
        self._text = (ident, text) if ident is not None else None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[NetworkState]:
        """Lock, load, yield the state for changes, save when the block ends without error."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            state = self.load()
            try:
                yield state
            except BaseException:
                self._cache = None  # the in-memory copy may be half-changed: re-read next time
                self._text = None
                raise
            self.save(state)
        finally:
            os.close(fd)  # releases the flock
