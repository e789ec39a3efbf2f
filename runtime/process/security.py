"""One way to confine a container process, for the init and every exec and health check.

`apply(ident, sc)` is the only place that turns a `Security` (plus the resolved user) into
kernel state, in this order:

    1. AppArmor: "exec <profile>" to /proc/thread-self/attr/apparmor/exec (attr/exec on
       kernels before 5.8) -- the profile takes effect at execve, as runc does it
    2. seccomp FIRST when there is no no_new_privs: the kernel then wants CAP_SYS_ADMIN to
       install a filter, which step 5 (and setresuid to a non-root user) takes away
    3. bounding set: drop every capability not kept (needs CAP_SETPCAP, still held)
    4. KEEPCAPS; setgroups, setresgid, setresuid; KEEPCAPS off
    5. capset: effective = permitted = the kept set, inheritable empty; clear ambient
    6. no_new_privs; then seccomp, unprivileged now (no_new_privs is what allows it), as
       late as possible so the launch itself never runs under the filter
    -> the caller does chdir and execve (both allowed by any profile Docker ships)

`make(...)` builds a `Security` for callers below the engine (tests, the builder); the engine
builds its own with the container's profile in `runtime.launchcfg.security`.
"""
from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass

from runtime.process import seccomp
from runtime.process.config import DEFAULT_CAPS, Security, cap_mask
from runtime.process.syscalls import (
    PR_CAP_AMBIENT,
    PR_CAP_AMBIENT_CLEAR_ALL,
    PR_CAPBSET_DROP,
    PR_SET_KEEPCAPS,
    PR_SET_NO_NEW_PRIVS,
    Syscalls,
)
from runtime.process.users import ExecUser

# Where a task asks AppArmor for a profile (runc's order: the LSM-specific files of kernels
# >= 5.8 first, the shared ones of older kernels after): at its next execve, or right now
APPARMOR_EXEC_ATTRS = ("/proc/thread-self/attr/apparmor/exec", "/proc/thread-self/attr/exec")
APPARMOR_CURRENT_ATTRS = ("/proc/thread-self/attr/apparmor/current",
                          "/proc/thread-self/attr/current")


@dataclass(frozen=True)
class Identity:
    """Who the process becomes and how it is confined."""

    user: ExecUser
    security: Security
    last_cap: int  # /proc/sys/kernel/cap_last_cap of the host


def make(capabilities: Iterable[str] = DEFAULT_CAPS, *, no_new_privs: bool = False,
         seccomp_profile: str | None = None, apparmor: str = "") -> Security:
    """A Security with `seccomp_profile` ("default", a profile's JSON text, or None: none)
    compiled for `capabilities` on this host."""
    caps = tuple(capabilities)
    if seccomp_profile is None:
        return Security(caps, no_new_privs, "", 0, apparmor)
    filt = seccomp.compile_filter(seccomp_profile, caps)
    return Security(caps, no_new_privs, base64.b64encode(filt.program).decode(), filt.flags,
                    apparmor)


def _bounding_set(sc: Syscalls) -> int:
    for line in (sc.read_file("/proc/self/status") or "").splitlines():
        if line.startswith("CapBnd:"):
            return int(line.split()[1], 16)
    return (1 << 64) - 1


def _attr(paths: tuple[str, ...], sc: Syscalls) -> str:
    return next((p for p in paths if sc.exists(p)), paths[-1])


def apply_apparmor(profile: str, sc: Syscalls) -> None:
    """Ask AppArmor to switch to `profile` at the next execve."""
    sc.write_file(_attr(APPARMOR_EXEC_ATTRS, sc), f"exec {profile}")


def confine_self(ident: Identity, sc: Syscalls) -> None:
    """Move the calling process itself under the AppArmor profile now (change_profile): for
    the `init: true` reaper, which stays pid 1 without an execve of its own."""
    if ident.security.apparmor:
        sc.write_file(_attr(APPARMOR_CURRENT_ATTRS, sc),
                      f"changeprofile {ident.security.apparmor}")


def apply(ident: Identity, sc: Syscalls) -> None:
    """Confine the calling (single-threaded) process as `ident` says; see the module doc."""
    sec = ident.security
    prog = sec.seccomp_program
    if sec.apparmor:
        apply_apparmor(sec.apparmor, sc)
    if prog and not sec.no_new_privs:
        sc.seccomp(prog, sec.seccomp_flags)
    # only what we hold can be kept: a host whose bounding set lacks a cap (e.g. SYS_RESOURCE
    # in a nested sandbox) would refuse the capset of `privileged: true` otherwise
    keep = cap_mask(sec.capabilities, ident.last_cap) & _bounding_set(sc)
    for n in range(ident.last_cap + 1):
        if not keep & (1 << n):
            sc.prctl(PR_CAPBSET_DROP, n)
    sc.prctl(PR_SET_KEEPCAPS, 1)
    sc.setgroups(list(ident.user.groups))
    sc.setresgid(ident.user.gid)
    sc.setresuid(ident.user.uid)
    sc.prctl(PR_SET_KEEPCAPS, 0)
    sc.capset(keep, keep, 0)
    sc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    if sec.no_new_privs:
        sc.prctl(PR_SET_NO_NEW_PRIVS, 1)
        if prog:
            sc.seccomp(prog, sec.seccomp_flags)
