"""ContainerSpec + what was resolved at create -> the process layer's LaunchConfig.

Pure apart from creating missing bind-mount source directories (Docker's short syntax) and
asking the volume store for host paths; unit-tested without root.
"""
from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from runtime.containers import ContainerRecord
from runtime.errors import InvalidArgument
from runtime.process import apparmor, seccomp, seccomp_profile
from runtime.process.config import (
    DEFAULT_NAMESPACES,
    DEFAULT_SHM_SIZE,
    DeviceNode,
    LaunchConfig,
    MountPoint,
    Security,
    effective_caps,
)
from runtime.process.fluentd import LogForward, parse_address
from runtime.process.logs import rotation
from runtime.process.rootfs import MOUNT_DATA_MAX
from runtime.process.seccomp import DEFAULT_PROFILE
from runtime.process.userns import IdMap, default_maps
from runtime.storage import merged
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


SHARED_MODES = (("ipc", "ipc_mode"), ("pid", "pid_mode"), ("uts", "uts_mode"), ("cgroup", "cgroupns_mode"))
OWN_MODES = ("", "private", "shareable")


def shared_namespaces(spec: ContainerSpec, namespaces: tuple[str, ...], join: dict[str, str],
                      pids: Mapping[str, int]) -> tuple[tuple[str, ...], dict[str, str]]:
    """ipc/pid/uts/cgroup: own (the default), the host's (not created), or another
    container's (`container:NAME`, joined through /proc/<pid of its init>/ns/<kind>)."""
    join = dict(join)
    for kind, attr in SHARED_MODES:
        mode = getattr(spec, attr)
        if mode in OWN_MODES and (kind == "ipc" or mode != "shareable"):
            continue
        if mode == "host":
            namespaces = tuple(n for n in namespaces if n != kind)
        elif mode.startswith("container:") and kind in ("ipc", "pid") and kind in pids:
            namespaces = tuple(n for n in namespaces if n != kind)
            join[kind] = f"/proc/{pids[kind]}/ns/{kind}"
        elif mode.startswith("container:") and kind in ("ipc", "pid"):
            raise InvalidArgument(f"container {spec.name}: {attr} {mode}: that container is not running")
        else:
            raise InvalidArgument(f"container {spec.name}: unknown {attr} {mode!r}")
    return namespaces, join


def image_mount(m: Mount, lowerdirs: list[str], name: str) -> MountPoint:
    """An image mount: the image's layers (top first) at `m.subpath`, read-only: a bind when
    one layer holds that path (or it is a file), else an overlay of those layers' dirs."""
    found = merged.resolve(lowerdirs, m.subpath or "/")
    if found is None:
        raise InvalidArgument(f"container {name}: image {m.source} has no {m.subpath!r} to mount at {m.target}")
    rel, stack = found
    dirs = [os.path.join(d, rel) if rel else d for d in stack]
    if len(dirs) == 1 or not os.path.isdir(dirs[0]):
        return MountPoint("bind", m.target, dirs[0], read_only=True)
    opts = f"lowerdir={':'.join(dirs)}"
    if len(opts) >= MOUNT_DATA_MAX:
        raise InvalidArgument(f"container {name}: image {m.source} has too many layers ({len(dirs)}) "
                              f"to mount at {m.target}: squash it")
    return MountPoint("overlay", m.target, "", True, (opts,))


def mount_points(spec: ContainerSpec, extra: tuple[Mount, ...], volume_path: VolumePath,
                 image_layers: Callable[[str], list[str]] | None = None) -> tuple[MountPoint, ...]:
    """`image_layers(ref)`: an image's layer directories, top first (for image mounts)."""
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
        elif m.type == "image":
            if image_layers is None:
                raise InvalidArgument(f"container {spec.name}: image mounts need the image store")
            out.append(image_mount(m, image_layers(m.source), spec.name))
        elif m.type == "tmpfs":
            opts: list[str] = []
            if m.tmpfs_size:
                opts.append(f"size={m.tmpfs_size}")
            opts.append(f"mode={oct(m.tmpfs_mode if m.tmpfs_mode is not None else 0o1777)[2:]}")
            out.append(MountPoint("tmpfs", m.target, "", m.read_only, tuple(opts)))
        else:  # pragma: no cover - Literal guards this
            raise InvalidArgument(f"container {spec.name}: unknown mount type {m.type!r}")
    return tuple(out)


def volume_subpath(mountpoint: str, subpath: str, volume: str) -> str:
    """The host path of `subpath` inside a volume (Compose's `volume.subpath`): relative,
    no `..`, existing, and (symlinks resolved) still inside the volume, as moby requires."""
    parts = [p for p in subpath.split("/") if p not in ("", ".")]
    if subpath.startswith("/") or ".." in parts or not parts:
        raise InvalidArgument(f"volume {volume}: subpath {subpath!r} must be a relative path "
                              "inside the volume, without ..")
    root = os.path.realpath(mountpoint)
    full = os.path.realpath(os.path.join(root, *parts))
    if os.path.commonpath([root, full]) != root:
        raise InvalidArgument(f"volume {volume}: subpath {subpath!r} leads out of the volume")
    if not os.path.exists(full):
        raise InvalidArgument(f"volume {volume}: subpath {subpath!r} does not exist in the volume: "
                              "create it first")
    return full


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


@dataclass(frozen=True)
class SecurityOpts:
    """`security_opt` read the way Docker reads it ("key=value", or the older "key:value")."""

    no_new_privs: bool = False
    seccomp: str | None = DEFAULT_PROFILE  # "default", a profile (file path or JSON), None
    apparmor: str | None = None  # None: the default; "unconfined"; or a loaded profile's name


def security_opts(spec: ContainerSpec) -> SecurityOpts:
    opts = SecurityOpts()
    for raw in spec.security_opt:
        opt = raw.strip()
        if opt == "no-new-privileges":
            opts = replace(opts, no_new_privs=True)
            continue
        key, sep, value = opt.partition("=" if "=" in opt else ":")  # "key:value": older form
        key, value = key.strip(), value.strip()
        where = f"container {spec.name}: security_opt {raw!r}"
        if not sep or not value:
            raise InvalidArgument(f"{where}: expected key=value, e.g. seccomp=unconfined",
                                  subject=spec.name)
        if key == "no-new-privileges":
            if value not in ("true", "false"):
                raise InvalidArgument(f"{where}: use no-new-privileges=true or =false",
                                      subject=spec.name)
            opts = replace(opts, no_new_privs=value == "true")
        elif key == "seccomp":
            opts = replace(opts, seccomp=None if value == "unconfined" else
                           DEFAULT_PROFILE if value in ("default", "builtin") else value)
        elif key == "apparmor":
            opts = replace(opts, apparmor=value)
        elif key == "label" and value == "disable":
            continue  # SELinux is not used: nothing to disable
        elif key == "label":
            raise InvalidArgument(f"{where}: SELinux labels are not supported (only label=disable"
                                  ", which changes nothing)", subject=spec.name)
        else:
            raise InvalidArgument(
                f"{where}: unknown or unsupported option: use no-new-privileges, "
                "seccomp=unconfined|FILE.json, apparmor=unconfined|PROFILE or label=disable",
                subject=spec.name)
    return opts


def no_new_privs(spec: ContainerSpec) -> bool:
    return security_opts(spec).no_new_privs


def seccomp_source(spec: ContainerSpec) -> str | None:
    """Where the container's seccomp profile comes from: "default", None (unconfined: the
    option, or privileged as with Docker), or a custom profile (a file path or inline JSON)."""
    profile = security_opts(spec).seccomp
    return None if spec.privileged else profile


def read_seccomp_profile(spec: ContainerSpec) -> str:
    """At create: the text of a custom profile ("" for the built-in one or none), checked."""
    source = seccomp_source(spec)
    if source is None or source == DEFAULT_PROFILE:
        return ""
    if source.startswith("{"):  # the JSON itself, as Docker's API takes it
        text, name = source, f"(container {spec.name}, inline JSON)"
    elif not os.path.isabs(source):
        raise InvalidArgument(f"container {spec.name}: seccomp profile {source!r}: give an "
                              "absolute path (the stack file's folder is the base for a "
                              "relative one)", subject=spec.name)
    else:
        text, name = seccomp_profile.read_file(source), source
    seccomp.compile_filter(text, effective_caps(spec.cap_add, spec.cap_drop), source=name)
    return text


def apparmor_profile(spec: ContainerSpec, host_has_apparmor: bool) -> str:
    """The AppArmor profile the container's processes exec under, "" for none. A profile the
    service names needs AppArmor in the kernel; the default quietly needs nothing."""
    wanted = security_opts(spec).apparmor
    if wanted is not None and wanted != apparmor.UNCONFINED and not host_has_apparmor:
        raise InvalidArgument(
            f"container {spec.name}: security_opt apparmor={wanted}: AppArmor is not enabled in "
            "this kernel: remove the option (or use apparmor=unconfined)", subject=spec.name)
    if not host_has_apparmor:
        return ""
    if wanted is None:
        wanted = apparmor.UNCONFINED if spec.privileged else apparmor.DEFAULT_PROFILE
    return "" if wanted == apparmor.UNCONFINED else wanted


def container_security(rec: ContainerRecord, host_has_apparmor: bool) -> Security:
    """How every process of the container is confined: its init, each exec, each health check
    (the engine builds this once per start and for each exec, from the same inputs)."""
    spec = rec.spec
    caps = effective_caps(spec.cap_add, spec.cap_drop, spec.privileged)
    opts = security_opts(spec)
    source = seccomp_source(spec)
    sec = Security(caps, opts.no_new_privs, apparmor=apparmor_profile(spec, host_has_apparmor))
    if source is None:
        return sec
    text = rec.resolved.seccomp_profile or DEFAULT_PROFILE
    name = source if not source.startswith("{") else f"(container {spec.name}, inline JSON)"
    return with_seccomp(sec, text, name)


def with_seccomp(sec: Security, text: str = DEFAULT_PROFILE, source: str = DEFAULT_PROFILE) -> Security:
    """`sec` with the seccomp filter of profile `text` ("default": Docker's), compiled for
    its capabilities (the default profile allows some syscalls only with a capability)."""
    filt = seccomp.compile_filter(text, sec.capabilities, source=source)
    return replace(sec, seccomp=base64.b64encode(filt.program).decode(), seccomp_flags=filt.flags)


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


_TAG_FIELD = re.compile(r"\{\{\s*\.(\w+)\s*\}\}")


def log_forward(rec: ContainerRecord) -> LogForward:
    """The fluentd driver's endpoint and Docker's record fields; the tag's template filled
    in (default: the container's short id, as Docker)."""
    lg = rec.spec.logging
    if lg.driver != "fluentd":
        return LogForward()
    image_id = rec.resolved.image_id.removeprefix("sha256:")
    values = {"ID": rec.id[:12], "FullID": rec.id, "Name": rec.spec.name,
              "ImageName": rec.spec.image, "ImageID": image_id[:12], "ImageFullID": image_id}
    tag = _TAG_FIELD.sub(lambda m: values.get(m[1], m[0]), lg.tag or "{{.ID}}")
    return LogForward(address=lg.fluentd_address or parse_address(""), tag=tag,
                      container_id=rec.id, container_name="/" + rec.spec.name,
                      async_connect=lg.fluentd_async, sub_second=lg.fluentd_sub_second)


def launch_config(
    rec: ContainerRecord,
    lay: RootfsLayout,
    mounts: tuple[MountPoint, ...],
    *,
    join_pid: int | None = None,
    etc_files: dict[str, str],
    security: Security,
    devices: tuple[DeviceNode, ...] = (),
    ns_pids: Mapping[str, int] | None = None,
    shm_source: str = "",
) -> LaunchConfig:
    """`ns_pids`: the init pid of the container whose ipc / pid namespace is joined;
    `shm_source`: the host dir to bind at /dev/shm (shared IPC)."""
    spec, res = rec.spec, rec.resolved
    namespaces, join = network_namespaces(spec, join_pid)
    namespaces, join = shared_namespaces(spec, namespaces, join, ns_pids or {})
    own_uts = "uts" in namespaces  # with the host's, never set its name
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
        hostname=res.hostname if own_uts else "",
        domainname=(spec.domainname or "") if own_uts else "",
        read_only=spec.read_only,
        mounts=mounts,
        devices=devices,
        shm_size=spec.shm_size or DEFAULT_SHM_SIZE,
        shm_source=shm_source,
        etc_files=etc_files,
        namespaces=namespaces,
        join_namespaces=join,
        security=security,
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
        log_forward=log_forward(rec),
    )
