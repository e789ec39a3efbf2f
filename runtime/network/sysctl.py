"""The few sysctls the network layer needs: ip_forward (saved and restored), route_localnet,
and whether bridged traffic passes the firewall (br_netfilter).

ip_forward belongs to a network namespace while engines do not (tests and a second daemon use
their own state roots), so its original value is kept in one file per network namespace under
`/run` (`/run/composer.ip_forward` for the host's namespace), under the host lock
(runtime.network.hostlock): the first engine to need forwarding records the value and sets 1;
the last one to stop needing it (no other `composer*` nft table left) restores the value and
removes the file.
"""
from __future__ import annotations

import os
from pathlib import Path

from runtime.network import hostlock
from runtime.network.errors import NetworkError

PROC = Path("/proc/sys/net/ipv4")
BRIDGE_NF = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
FORWARD_SAVE = Path("/run/composer.ip_forward")


def read(name: str) -> str:
    return (PROC / name).read_text().strip()


def write(name: str, value: str) -> None:
    try:
        (PROC / name).write_text(value)
    except OSError as exc:
        raise NetworkError(f"cannot set net.ipv4.{name.replace('/', '.')}={value}: {exc.strerror}") from exc


def ip_forward() -> str:
    return read("ip_forward")


def set_ip_forward(value: str) -> None:
    write("ip_forward", value)


def forward_save_path() -> Path:
    """Where this network namespace's original ip_forward is kept.

    The host's namespace (the one pid 1 is in) uses FORWARD_SAVE; another namespace (a daemon
    or test inside `unshare --net`) has its own ip_forward, so it gets its own file, named by
    the namespace's inode.
    """
    try:
        own = os.stat("/proc/self/ns/net").st_ino
        host = os.stat("/proc/1/ns/net").st_ino
    except OSError:
        return FORWARD_SAVE
    return FORWARD_SAVE if own == host else FORWARD_SAVE.with_name(f"{FORWARD_SAVE.name}.{own}")


def forward_acquire(save: Path | None = None) -> None:
    """Record the original ip_forward (once per namespace) and turn forwarding on."""
    save = save or forward_save_path()
    with hostlock.held(save.parent):
        if not save.exists():
            save.write_text(ip_forward())
        set_ip_forward("1")


def forward_release(others_active: bool, save: Path | None = None, keep_on: bool = False) -> None:
    """Restore the recorded ip_forward, unless another engine still has networks.

    `others_active`: another composer engine has networks; it restores the value later.
    `keep_on`: another kind of engine (Docker, podman...) is on the host and needs forwarding;
    the record is dropped and forwarding stays on, as those engines leave it.
    """
    save = save or forward_save_path()
    with hostlock.held(save.parent):
        if others_active or not save.exists():
            return
        if not keep_on:
            set_ip_forward(save.read_text().strip() or "0")
        save.unlink()


def set_route_localnet(ifname: str) -> None:
    """Let DNAT'ed packets with a 127.0.0.1 source leave through our bridge (published ports).

    This also lets a container address 127.0.0.0/8 on the host through the gateway's MAC
    (CVE-2020-8558); the firewall's loopback guard drops that (runtime.network.firewall).
    """
    write(f"conf/{ifname}/route_localnet", "1")


def bridge_netfilter() -> bool:
    """True when bridged IPv4 frames pass the ip/inet firewall hooks (br_netfilter loaded and
    net.bridge.bridge-nf-call-iptables=1 in this namespace)."""
    try:
        return BRIDGE_NF.read_text().strip() == "1"
    except OSError:
        return False
