"""What the process layer needs to launch a container or an exec: resolved, no image left in it.

The engine resolves the image (entrypoint/cmd, env), volumes (to host directories), the
rootfs layers and the /etc files; `LaunchConfig` carries the result to the monitor as
JSON (`runtime.serde`). `check()` rejects what the kernel would reject later, before any fork.
"""
from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Literal

from runtime.errors import InvalidArgument
from runtime.process.fluentd import LogForward
from runtime.process.userns import IdMap, check_maps
from runtime.types import Ulimit

# Linux capability numbers (linux/capability.h), names without the CAP_ prefix.
CAPS: dict[str, int] = {
    "CHOWN": 0, "DAC_OVERRIDE": 1, "DAC_READ_SEARCH": 2, "FOWNER": 3, "FSETID": 4,
    "KILL": 5, "SETGID": 6, "SETUID": 7, "SETPCAP": 8, "LINUX_IMMUTABLE": 9,
    "NET_BIND_SERVICE": 10, "NET_BROADCAST": 11, "NET_ADMIN": 12, "NET_RAW": 13,
    "IPC_LOCK": 14, "IPC_OWNER": 15, "SYS_MODULE": 16, "SYS_RAWIO": 17, "SYS_CHROOT": 18,
    "SYS_PTRACE": 19, "SYS_PACCT": 20, "SYS_ADMIN": 21, "SYS_BOOT": 22, "SYS_NICE": 23,
    "SYS_RESOURCE": 24, "SYS_TIME": 25, "SYS_TTY_CONFIG": 26, "MKNOD": 27, "LEASE": 28,
    "AUDIT_WRITE": 29, "AUDIT_CONTROL": 30, "SETFCAP": 31, "MAC_OVERRIDE": 32,
    "MAC_ADMIN": 33, "SYSLOG": 34, "WAKE_ALARM": 35, "BLOCK_SUSPEND": 36, "AUDIT_READ": 37,
    "PERFMON": 38, "BPF": 39, "CHECKPOINT_RESTORE": 40,
}

# Docker's default set (moby oci/caps/defaults.go).
DEFAULT_CAPS: tuple[str, ...] = (
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
    "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
)

NAMESPACES = ("mnt", "uts", "ipc", "pid", "net", "cgroup", "user")
DEFAULT_NAMESPACES: tuple[str, ...] = ("mnt", "uts", "ipc", "pid", "net", "cgroup")

# Docker's masked and read-only paths (moby oci/defaults.go).
MASKED_PATHS: tuple[str, ...] = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
)
READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHM_SIZE = 64 * 1024 * 1024


@dataclass(frozen=True)
class MountPoint:
    """One resolved mount: bind (absolute host source), tmpfs, or a read-only overlay of
    layer directories (an image mount: `options` = ("lowerdir=a:b",)), at `target`."""

    type: Literal["bind", "tmpfs", "overlay"]
    target: str
    source: str = ""
    read_only: bool = False
    options: tuple[str, ...] = ()  # tmpfs: "size=65536k", "mode=1777"; bind: ignored
    propagation: str | None = None  # private/rprivate/shared/rshared/slave/rslave


@dataclass(frozen=True)
class Security:
    """How every process of a container is confined: its init, each exec, each health check.

    The engine builds one value per container (`runtime.launchcfg.security`) and hands the
    same one to the launch and to every exec; `runtime.process.security.apply` applies it,
    in one order, on both paths (user and groups come with it: an exec may name another user).
    """

    capabilities: tuple[str, ...] = DEFAULT_CAPS  # bounding = permitted = effective; no ambient
    no_new_privs: bool = False
    seccomp: str = ""  # the BPF program (seccomp.Filter.program), base64; "" = unconfined
    seccomp_flags: int = 0  # SECCOMP_FILTER_FLAG_* for seccomp(2)
    apparmor: str = ""  # the AppArmor profile to exec under; "" = none (unconfined)

    @property
    def seccomp_program(self) -> bytes:
        return base64.b64decode(self.seccomp) if self.seccomp else b""


@dataclass(frozen=True)
class DeviceNode:
    """A host device made inside the container (Docker's `--device`): a node with the host's
    type, numbers, permission bits and owner at `path`; in a user namespace, where mknod is
    not allowed, the host's node at `host_path` is bind-mounted there instead (as runc)."""

    path: str  # absolute, in the container
    type: Literal["b", "c"]
    major: int
    minor: int
    mode: int = 0o666  # permission bits
    uid: int = 0
    gid: int = 0
    host_path: str = ""


@dataclass(frozen=True)
class LaunchConfig:
    id: str
    argv: tuple[str, ...]
    state_dir: str  # the monitor writes exit.json (+ the log when log_path is "") here
    mergeddir: str  # where the rootfs is mounted inside the container's mount namespace
    lowerdirs: tuple[str, ...]  # top first; one entry + upperdir "" = plain directory rootfs
    upperdir: str = ""
    workdir: str = ""
    env: tuple[str, ...] = ()  # "K=V"
    cwd: str = "/"
    user: str = ""  # "name", "uid", "uid:gid", "name:group"; "" = root
    group_add: tuple[str, ...] = ()
    hostname: str = ""
    domainname: str = ""
    read_only: bool = False
    mounts: tuple[MountPoint, ...] = ()
    devices: tuple[DeviceNode, ...] = ()  # made after the mounts, before pivot_root
    shm_size: int = DEFAULT_SHM_SIZE
    shm_source: str = ""  # a host dir bound at /dev/shm (ipc shared or host); "" = own tmpfs
    etc_files: dict[str, str] = field(default_factory=dict)  # "/etc/hosts" -> host file
    namespaces: tuple[str, ...] = DEFAULT_NAMESPACES  # to create
    join_namespaces: dict[str, str] = field(default_factory=dict)  # "net" -> /proc/N/ns/net
    security: Security = Security()
    privileged: bool = False  # rw /sys, no masked paths (its capabilities are in `security`)
    rlimits: tuple[Ulimit, ...] = ()
    sysctls: dict[str, str] = field(default_factory=dict)
    uid_map: tuple[IdMap, ...] = ()  # with "user" in namespaces (runtime.process.userns)
    gid_map: tuple[IdMap, ...] = ()
    init: bool = False
    tty: bool = False
    stdin_open: bool = False
    log_path: str = ""  # "" = <state_dir>/container.log
    log_driver: str = "json-file"  # "none": the output is not kept (attach still gets it)
    log_max_size: int = 0  # bytes per file before rotating; 0 = never
    log_max_files: int = 1  # files kept, the current one included (runtime.process.logs)
    log_compress: bool = False  # gzip rotated files
    log_forward: LogForward = LogForward()  # the fluentd driver (address ""): also sent there
    # a cgroup v2 directory the init is born in (clone3 CLONE_INTO_CGROUP); "" or a kernel
    # that refuses it: the engine moves the init there during prepare (cgroup.procs)
    cgroup_dir: str = ""

    @property
    def log_file(self) -> str:
        return self.log_path or f"{self.state_dir.rstrip('/')}/container.log"


@dataclass(frozen=True)
class ExecConfig:
    argv: tuple[str, ...]
    env: tuple[str, ...] = ()
    cwd: str = "/"
    user: str = ""
    group_add: tuple[str, ...] = ()
    tty: bool = False
    detach: bool = False
    security: Security = Security()  # the container's (the engine passes the same value)
    cgroup_procs: tuple[str, ...] = ()  # cgroup.procs files to join (one per v1 hierarchy)


def normalize_cap(name: str) -> str:
    n = name.strip().upper()
    if n.startswith("CAP_"):
        n = n[4:]
    if n != "ALL" and n not in CAPS:
        raise InvalidArgument(
            f"unknown capability {name!r}: use a name from capabilities(7), e.g. NET_ADMIN",
            subject=name,
        )
    return n


def effective_caps(cap_add: tuple[str, ...] | list[str] = (),
                   cap_drop: tuple[str, ...] | list[str] = (),
                   privileged: bool = False) -> tuple[str, ...]:
    """Docker's rule: privileged = all; else default set, + cap_add, - cap_drop ("ALL" works)."""
    if privileged:
        return tuple(CAPS)
    add = {normalize_cap(c) for c in cap_add}
    drop = {normalize_cap(c) for c in cap_drop}
    if "ALL" in add:  # everything except what is dropped
        caps = set(CAPS) - drop
    elif "ALL" in drop:  # nothing but what is added
        caps = set(add)
    else:
        caps = (set(DEFAULT_CAPS) - drop) | add
    return tuple(sorted(caps, key=CAPS.__getitem__))


def privileged_security() -> Security:
    """How `privileged: true` confines (Docker's --privileged, BuildKit's RUN
    --security=insecure): every capability, no seccomp filter, no AppArmor profile."""
    return Security(capabilities=effective_caps(privileged=True))


def cap_mask(caps: tuple[str, ...] | list[str], last_cap: int = 63) -> int:
    mask = 0
    for c in caps:
        n = CAPS[normalize_cap(c)]
        if n <= last_cap:
            mask |= 1 << n
    return mask


_IPC_SYSCTLS = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"}
_SYSCTL_NAME = re.compile(r"^[a-z0-9_]+(\.[a-zA-Z0-9_\-]+)+$")


def check_sysctls(sysctls: dict[str, str], own_ipc: bool, own_net: bool) -> None:
    """Only namespaced sysctls, as Docker allows; anything else would change the host."""
    for key in sysctls:
        name = key.replace("/", ".")
        if not _SYSCTL_NAME.match(name):
            raise InvalidArgument(f"invalid sysctl name {key!r}", subject=key)
        if name in _IPC_SYSCTLS or name.startswith("fs.mqueue."):
            if not own_ipc:
                raise InvalidArgument(
                    f"sysctl {key!r} needs the container's own ipc namespace: drop ipc: host",
                    subject=key)
        elif name.startswith("net."):
            if not own_net:
                raise InvalidArgument(
                    f"sysctl {key!r} needs the container's own network namespace: "
                    "it is not allowed with network_mode host or container:<name>", subject=key)
        else:
            raise InvalidArgument(
                f"sysctl {key!r} is not namespaced and would change the host: only kernel.msg*, "
                "kernel.sem, kernel.shm*, fs.mqueue.* and net.* are allowed", subject=key)


def check_security(sec: Security) -> None:
    for c in sec.capabilities:
        normalize_cap(c)
    try:
        prog = sec.seccomp_program
    except ValueError:  # binascii.Error
        prog = b"?"
    if len(prog) % 8 or (sec.seccomp and not prog):
        raise InvalidArgument("the seccomp filter is not a whole number of BPF instructions")


def check(cfg: LaunchConfig) -> None:
    """Reject a config the kernel would refuse, with a message the user can act on."""
    if not cfg.argv or not cfg.argv[0]:
        raise InvalidArgument("no command to run: set command or entrypoint", subject=cfg.id)
    for ns in (*cfg.namespaces, *cfg.join_namespaces):
        if ns not in NAMESPACES:
            raise InvalidArgument(f"unknown namespace {ns!r}: use one of {', '.join(NAMESPACES)}",
                                  subject=cfg.id)
    if "user" in cfg.join_namespaces:
        raise InvalidArgument("joining another container's user namespace is not supported: "
                              "remove userns_mode", subject=cfg.id)
    if "user" in cfg.namespaces:
        check_maps(cfg.uid_map, "uid_map")
        check_maps(cfg.gid_map, "gid_map")
        for ns in ("pid", "net", "ipc"):  # proc, sysfs, mqueue need them owned by the userns
            if ns not in cfg.namespaces or ns in cfg.join_namespaces:
                raise InvalidArgument(
                    f"userns_mode private needs the container's own {ns} namespace: "
                    f"drop the {ns} sharing or use userns_mode host", subject=cfg.id)
    if "mnt" not in cfg.namespaces:
        raise InvalidArgument("a container needs its own mount namespace", subject=cfg.id)
    check_security(cfg.security)
    if not cfg.mergeddir.startswith("/") or not cfg.lowerdirs:
        raise InvalidArgument("rootfs needs an absolute mergeddir and at least one lowerdir",
                              subject=cfg.id)
    if cfg.upperdir and not cfg.workdir:
        raise InvalidArgument("overlay rootfs needs a workdir next to the upperdir",
                              subject=cfg.id)
    for m in cfg.mounts:
        if not m.target.startswith("/"):
            raise InvalidArgument(f"mount target {m.target!r} must be an absolute path",
                                  subject=cfg.id)
        if m.type == "bind" and not m.source.startswith("/"):
            raise InvalidArgument(f"bind mount source {m.source!r} must be an absolute host path",
                                  subject=cfg.id)
    for d in cfg.devices:
        if not d.path.startswith("/") or d.path.rstrip("/") in ("", "/dev"):
            raise InvalidArgument(f"device path {d.path!r} must be an absolute path to a file",
                                  subject=cfg.id)
        if d.type not in ("b", "c"):
            raise InvalidArgument(f"device {d.path}: type {d.type!r} is not b or c", subject=cfg.id)
    own_ipc = "ipc" in cfg.namespaces
    own_net = "net" in cfg.namespaces
    check_sysctls(cfg.sysctls, own_ipc, own_net)
