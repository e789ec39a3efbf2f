"""Device access: Docker's default allow-list plus the container's own entries (`devices:`
nodes, `device_cgroup_rules`), so a container cannot mknod and open a host disk even with
CAP_MKNOD. Everything else is denied.

v1: "a" to devices.deny, then each rule to devices.allow (the kernel merges the access of
rules for the same node). v2 has no device files: a BPF_PROG_TYPE_CGROUP_DEVICE program
assembled from the same rules (`devprog`) is loaded and attached to the cgroup (`bpf`).
A host that cannot do either is an error naming what is missing, never an allow-all.
"""
from __future__ import annotations

from collections.abc import Sequence

from runtime.cgroups import devprog
from runtime.cgroups.base import Target
from runtime.cgroups.errors import CgroupError
from runtime.devrules import DEFAULT_RULES, DeviceRule, policy


def allowed(extra: Sequence[DeviceRule] = ()) -> tuple[DeviceRule, ...]:
    """The container's allow-list: Docker's defaults, then its own rules."""
    return (*DEFAULT_RULES, *extra)


def restrict(t: Target, extra: Sequence[DeviceRule] = ()) -> None:
    """Deny every device but the defaults and `extra`, on either cgroup version."""
    rules = allowed(extra)
    if t.version == "v1":
        _restrict_v1(t, rules)
    else:
        _restrict_v2(t, rules)


def _restrict_v1(t: Target, rules: tuple[DeviceRule, ...]) -> None:
    if not t.has_controller("devices"):
        raise CgroupError(
            f"cgroup {t.name}: cannot restrict device access: the cgroup v1 devices controller "
            "is not mounted on this host (mount it at /sys/fs/cgroup/devices)", subject=t.name)
    t.write("devices", "devices.deny", "a", limit="devices", shown="deny all")
    for rule in rules:
        t.write("devices", "devices.allow", str(rule), limit="devices", shown=str(rule))


def _restrict_v2(t: Target, rules: tuple[DeviceRule, ...]) -> None:
    directory = t.file("devices", "")
    try:
        code = devprog.encode(devprog.assemble(policy(rules)))
    except devprog.ProgramTooLarge as e:
        raise CgroupError(f"cgroup {t.name}: {e}", subject=t.name) from None
    try:
        t.fs.attach_device_filter(directory, code)
    except OSError as e:
        raise CgroupError(
            f"cgroup {t.name}: cannot restrict device access on cgroup v2: {e.strerror or e}",
            subject=t.name) from None
