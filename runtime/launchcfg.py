"""ContainerSpec + what was resolved at create -> the process layer's LaunchConfig.

Pure apart from creating missing bind-mount source directories (Docker's short syntax) and
asking the volume store for host paths; unit-tested without root.
"""
from __future__ import annotations

import os
from collections.abc import Callable

from runtime.containers import ContainerRecord
from runtime.errors import InvalidArgument
from runtime.process.config import (
    DEFAULT_NAMESPACES,
    DEFAULT_SHM_SIZE,
    DeviceNode,
    LaunchConfig,
    MountPoint,
    effective_caps,
)
from runtime.process.logs import rotation
from runtime.process.userns import IdMap, default_maps
from runtime.storage.rootfs import RootfsLayout
from runtime.types import ContainerSpec, Mount

VolumePath = Callable[[Mount], str]  # a volume Mount -> its host directory


def network_namespaces(spec: ContainerSpec, join_pid: int | None) -> tuple[tuple[str, ...], dict[str, str]]:
    """(namespaces to create, namespaces to join) for the container's network mode."""
    mode = spec.network_mode
    if mode == "host":
        return tuple(n for n in DEFAULT_NAMESPACES if n != "net"), {}
    if mode.startswith("container:"):
        if not join_pid:
            raise InvalidArgument(f"container {spec.name}: {mode} is not running: start it first")
        return tuple(n for n in DEFAULT_NAMESPACES if n != "net"), {"net": f"/proc/{join_pid}/ns/net"}
    if mode in ("bridge", "none", "default", ""):
        return DEFAULT_NAMESPACES, {}
    raise InvalidArgument(
        f"container {spec.name}: unknown network mode {mode!r}: use bridge, host, none or container:NAME"
    )


def mount_points(spec: ContainerSpec, extra: tuple[Mount, ...], volume_path: VolumePath) -> tuple[MountPoint, ...]:
    out: list[MountPoint] = []
    for m in (*spec.mounts, *extra):
        if not m.target.startswith("/"):
            raise InvalidArgument(f"container {spec.name}: mount target {m.target!r} must be an absolute path")
        if m.type == "bind":
            src = m.source
            if not os.path.isabs(src):
                raise InvalidArgument(f"container {spec.name}: bind source {src!r} must be an absolute path")
            if not os.path.exists(src):
                if not m.create_host_path:
                    raise InvalidArgument(
                        f"container {spec.name}: bind source path {src} does not exist: create it "
                        "or use the short syntax (which creates it)"
                    )
                os.makedirs(src, exist_ok=True)
            out.append(MountPoint("bind", m.target, src, m.read_only, (), m.propagation))
        elif m.type == "volume":
            out.append(MountPoint("bind", m.target, volume_path(m), m.read_only))
        elif m.type == "tmpfs":
            opts: list[str] = []
            if m.tmpfs_size:
                opts.append(f"size={m.tmpfs_size}")
            opts.append(f"mode={oct(m.tmpfs_mode if m.tmpfs_mode is not None else 0o1777)[2:]}")
            out.append(MountPoint("tmpfs", m.target, "", m.read_only, tuple(opts)))
        else:  # pragma: no cover - Literal guards this
            raise InvalidArgument(f"container {spec.name}: unknown mount type {m.type!r}")
    return tuple(out)


# `init: true`: a small static init bind-mounted as pid 1, as Docker does with tini at
# /sbin/docker-init; ~0.1 MiB instead of the process layer's forked Python reaper (2.5 MiB).
STATIC_INITS = ("/usr/bin/tini-static", "/usr/bin/catatonit", "/usr/libexec/podman/catatonit")
INIT_TARGET = "/sbin/docker-init"


def static_init() -> str | None:
    return next((p for p in STATIC_INITS if os.access(p, os.X_OK)), None)


def with_init(spec: ContainerSpec, argv: tuple[str, ...], mounts: tuple[MountPoint, ...]
              ) -> tuple[tuple[str, ...], tuple[MountPoint, ...], bool]:
    """(argv, mounts, init flag for the process layer) for the container's `init:`."""
    if not spec.init:
        return argv, mounts, False
    binary = static_init()
    if binary is None:
        return argv, mounts, True  # the process layer's own reaping init
    return ((INIT_TARGET, "--", *argv),
            (*mounts, MountPoint("bind", INIT_TARGET, binary, read_only=True)), False)


def no_new_privs(spec: ContainerSpec) -> bool:
    return any(o.replace("=", ":") in ("no-new-privileges", "no-new-privileges:true")
               for o in spec.security_opt)


def seccomp_profile(spec: ContainerSpec) -> str | None:
    """Docker's rule: privileged or `seccomp=unconfined` -> no filter; else the default profile."""
    profile: str | None = "default"
    for opt in spec.security_opt:
        key, sep, value = opt.replace(":", "=", 1).partition("=")
        if key.strip() != "seccomp":
            continue
        value = value.strip()
        if value == "unconfined":
            profile = None
        elif value in ("", "default", "builtin"):
            profile = "default"
        else:
            raise InvalidArgument(
                f"container {spec.name}: seccomp profile {value!r} is not supported: only the "
                "built-in default profile is; use seccomp=unconfined or drop the option")
    return None if spec.privileged else profile


def user_namespace(spec: ContainerSpec, namespaces: tuple[str, ...]
                   ) -> tuple[tuple[str, ...], tuple[IdMap, ...], tuple[IdMap, ...]]:
    """userns_mode private/auto: own user namespace, root = host 100000 (or /etc/subuid)."""
    mode = (spec.userns_mode or "host").strip()
    if mode in ("", "host"):
        return namespaces, (), ()
    if mode not in ("private", "auto"):
        raise InvalidArgument(f"container {spec.name}: unknown userns_mode {mode!r}: "
                              "use host or private")
    if spec.privileged:
        raise InvalidArgument(f"container {spec.name}: privileged is not possible with "
                              "userns_mode private: drop one of them")
    uid_map, gid_map = default_maps()
    return ("user", *namespaces), uid_map, gid_map


def launch_config(
    rec: ContainerRecord,
    lay: RootfsLayout,
    mounts: tuple[MountPoint, ...],
    *,
    join_pid: int | None = None,
    etc_files: dict[str, str],
    devices: tuple[DeviceNode, ...] = (),
) -> LaunchConfig:
    spec, res = rec.spec, rec.resolved
    namespaces, join = network_namespaces(spec, join_pid)
    argv, mounts, init = with_init(spec, res.argv, mounts)
    namespaces, uid_map, gid_map = user_namespace(spec, namespaces)
    log_size, log_files, log_compress = rotation(
        spec.logging.driver, spec.logging.max_size, spec.logging.max_file, spec.logging.compress)
    return LaunchConfig(
        id=rec.id,
        argv=argv,
        state_dir=str(rec.dir),
        mergeddir=lay.mergeddir,
        lowerdirs=lay.lowerdirs,
        upperdir=lay.upperdir,
        workdir=lay.workdir,
        env=res.env,
        cwd=res.cwd or "/",
        user=res.user,
        group_add=spec.group_add,
        hostname=res.hostname,
        domainname=spec.domainname or "",
        read_only=spec.read_only,
        mounts=mounts,
        devices=devices,
        shm_size=spec.shm_size or DEFAULT_SHM_SIZE,
        etc_files=etc_files,
        namespaces=namespaces,
        join_namespaces=join,
        capabilities=effective_caps(spec.cap_add, spec.cap_drop, spec.privileged),
        no_new_privs=no_new_privs(spec),
        seccomp=seccomp_profile(spec),
        uid_map=uid_map,
        gid_map=gid_map,
        privileged=spec.privileged,
        rlimits=spec.ulimits,
        sysctls=dict(spec.sysctls),
        init=init,
        tty=spec.tty,
        stdin_open=spec.stdin_open,
        log_driver="none" if spec.logging.driver == "none" else "json-file",
        log_max_size=log_size,
        log_max_files=log_files,
        log_compress=log_compress,
    )
