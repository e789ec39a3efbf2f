"""The OCI peers' bundle given what our engine gives a container, so `crun run` / `runc run`
and our create+start+wait+remove do the same work:

- Docker's default seccomp profile (runtime/process/seccomp_default.py), its rules chosen for
  Docker's default capabilities and this host's architecture and kernel the way moby does
  (includes/excludes), written as OCI `linux.seccomp`;
- Docker's 14 default capabilities (runc spec's template has 3), no `noNewPrivileges`
  (Docker's and our default), a writable root;
- the `cgroup` namespace beside pid/network/ipc/uts/mount (runc spec has no cgroupns);
- /etc/hostname, /etc/hosts and /etc/resolv.conf bind-mounted from files, as ours are;
- an overlay root: a fresh upper/work per run over the busybox lower dir, mounted before
  the run and unmounted and removed after it, timed inside the peer's run as ours is inside
  create/start/remove (`OverlayRoot`).

Loopback: runc and crun bring `lo` up in a network namespace they create (runc's
"loopback" network strategy; crun in its netns set-up), as our `network_mode: none` does;
`lo_state` checks it on the real peer.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from runtime.process.config import DEFAULT_CAPS
from runtime.process.seccomp_default import DEFAULT
from runtime.process.seccomp_profile import kernel_version, parse, select
from runtime.storage.fsutil import remove_tree
from runtime.storage.rootfs import detach, mounts_under

SCMP_ARCH = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64"}
ETC_FILES = {"hostname": "bench\n", "hosts": "127.0.0.1\tlocalhost\n::1\tlocalhost\n",
             "resolv.conf": ""}
MERGED = "merged"  # the bundle's root.path: where OverlayRoot mounts the overlay


def oci_seccomp(caps: tuple[str, ...] = DEFAULT_CAPS, arch: str | None = None,
                kernel: tuple[int, int] | None = None) -> dict[str, Any]:
    """Docker's default profile as OCI `linux.seccomp` for a container holding `caps`."""
    arch = arch or os.uname().machine
    profile = parse(DEFAULT, "built-in default")
    native = SCMP_ARCH[arch]
    subs = dict(profile.arch_map).get(native, ())
    syscalls: list[dict[str, Any]] = []
    for rule in select(profile, caps, arch, kernel or kernel_version(os.uname().release)):
        entry: dict[str, Any] = {"names": list(rule.names), "action": rule.action}
        if rule.errno is not None:
            entry["errnoRet"] = rule.errno
        if rule.args:
            entry["args"] = [{"index": a.index, "value": a.value, "valueTwo": a.value_two,
                              "op": a.op} for a in rule.args]
        syscalls.append(entry)
    out: dict[str, Any] = {"defaultAction": profile.default_action,
                           "architectures": [native, *subs], "syscalls": syscalls}
    if profile.default_errno is not None:
        out["defaultErrnoRet"] = profile.default_errno
    return out


def like_ours(cfg: dict[str, Any], bundle_dir: Path) -> dict[str, Any]:
    """`cfg` (runc spec's template, with args and cgroupsPath) given our container's features;
    writes the /etc files into `bundle_dir`."""
    caps = [f"CAP_{c}" for c in DEFAULT_CAPS]
    process = cfg["process"]
    process["capabilities"] = {k: list(caps) for k in ("bounding", "effective", "permitted")}
    process["noNewPrivileges"] = False
    cfg["root"] = {"path": MERGED, "readonly": False}
    linux = cfg.setdefault("linux", {})
    kinds = {n["type"] for n in linux.setdefault("namespaces", [])}
    if "cgroup" not in kinds:
        linux["namespaces"].append({"type": "cgroup"})
    linux["seccomp"] = oci_seccomp()
    mounts = cfg.setdefault("mounts", [])
    for name, text in ETC_FILES.items():
        (bundle_dir / f"etc-{name}").write_text(text)
        mounts.append({"destination": f"/etc/{name}", "type": "bind",
                       "source": str(bundle_dir / f"etc-{name}"), "options": ["rbind", "rprivate"]})
    (bundle_dir / MERGED).mkdir(exist_ok=True)
    return cfg


_libc: ctypes.CDLL | None = None


def _mount_overlay(lower: Path, upper: Path, work: Path, target: Path) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    data = f"lowerdir={lower},upperdir={upper},workdir={work}".encode()
    if _libc.mount(b"overlay", os.fsencode(target), b"overlay", 0, data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount overlay on {target}: {os.strerror(err)}")


@contextlib.contextmanager
def overlay_root(lower: Path, bundle_dir: Path, run: str) -> Iterator[Path]:
    """An overlay of `lower` with a fresh upper/work (under `bundle_dir/runs/<run>`) mounted at
    the bundle's root for one run; unmounted and its upper removed after, also on errors and
    Ctrl-C. As ours: a container's start makes upper/work, its remove unmounts and deletes."""
    d = bundle_dir / "runs" / run
    upper, work, target = d / "upper", d / "work", bundle_dir / MERGED
    upper.mkdir(parents=True)
    work.mkdir()
    try:
        _mount_overlay(lower, upper, work, target)
        try:
            yield target
        finally:
            detach(str(target))
    finally:
        remove_tree(d)


def unmount_all(under: Path) -> list[str]:
    """Detach every mount at or below `under` (deepest first); what was found."""
    found = mounts_under(str(under)) if under.exists() else []
    for mp in found:
        detach(mp)
    return found
