"""Device access: Docker's default allow-list, so a container cannot mknod and open a host
disk even with CAP_MKNOD. v1: devices.deny / devices.allow. v2 needs a BPF device program
(not implemented: on v2 the mknod capability alone still limits this; see docs/cgroups.md).
"""
from __future__ import annotations

from runtime.cgroups.base import Target

# moby's oci/devices defaults: mknod of anything, rwm of the standard nodes and ptys
DEFAULT_ALLOW: tuple[str, ...] = (
    "c *:* m", "b *:* m",
    "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",  # null zero full random urandom
    "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm",  # tty console ptmx
    "c 136:* rwm",  # pts
    "c 10:200 rwm",  # net/tun
)


def restrict(t: Target, allow: tuple[str, ...] = DEFAULT_ALLOW) -> bool:
    """Deny every device but `allow`; False when this host has no devices controller."""
    if t.version != "v1" or not t.has_controller("devices"):
        return False
    t.write("devices", "devices.deny", "a", limit="devices", shown="deny all")
    for rule in allow:
        t.write("devices", "devices.allow", rule, limit="devices", shown=rule)
    return True
