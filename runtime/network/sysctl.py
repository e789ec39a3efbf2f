"""The few sysctls the network layer needs: ip_forward (saved and restored) and route_localnet.

ip_forward is host-wide while engines are not (tests and a second daemon use their own
state roots), so its original value is kept in one host-wide file, `/run/composer.ip_forward`,
under the host lock (runtime.network.hostlock): the first engine to need forwarding records the value and sets 1; the last one
to stop needing it (no other `composer*` nft table left) restores the value and removes the file.
"""
from __future__ import annotations

from pathlib import Path

from runtime.network import hostlock
from runtime.network.errors import NetworkError

PROC = Path("/proc/sys/net/ipv4")
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


def forward_acquire(save: Path = FORWARD_SAVE) -> None:
    """Record the original ip_forward (once, host-wide) and turn forwarding on."""
    with hostlock.held(save.parent):
        if not save.exists():
            save.write_text(ip_forward())
        set_ip_forward("1")


def forward_release(others_active: bool, save: Path = FORWARD_SAVE) -> None:
    """Restore the recorded ip_forward, unless another engine still has networks."""
    with hostlock.held(save.parent):
        if others_active or not save.exists():
            return
        set_ip_forward(save.read_text().strip() or "0")
        save.unlink()


def set_route_localnet(ifname: str) -> None:
    """Let DNAT'ed packets with a 127.0.0.1 source leave through our bridge (published ports)."""
    write(f"conf/{ifname}/route_localnet", "1")
