"""What the runtime needs to make a container: no YAML left in it.

`composer/` converts a `ServiceSpec` into a `ContainerSpec` (one converter, in composer);
the engine turns a `ContainerSpec` plus the image's config into a launch. Every type here
is a frozen dataclass that round-trips through JSON (`runtime.serde`), because it travels
over the daemon's socket and is stored in each container's state directory.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

MountType = Literal["bind", "volume", "tmpfs", "image"]


@dataclass(frozen=True)
class Mount:
    type: MountType
    target: str  # absolute path inside the container
    source: str = ""  # bind: absolute host path; volume: volume name ("" = anonymous); tmpfs: "";
    # image: an image reference (its files, read-only)
    read_only: bool = False
    create_host_path: bool = True  # bind: create a missing host dir (Docker's short syntax)
    tmpfs_size: int | None = None  # bytes
    tmpfs_mode: int | None = None  # e.g. 0o1777
    nocopy: bool = False  # volume: don't copy the image's content into a new volume
    subpath: str = ""  # volume / image: mount this existing path inside it, relative to its root
    propagation: str | None = None  # bind: private/rprivate/shared/rshared/slave/rslave


@dataclass(frozen=True)
class InjectedFile:
    """A file made for the container (Compose's secrets and configs from `environment:` or
    `content:`, or with `uid`/`gid`/`mode`): written under its state directory at start and
    bind-mounted read-only at `target`. Exactly one of `content` / `source` is used."""

    target: str  # absolute path in the container
    content: str = ""  # base64 of the bytes
    source: str = ""  # an absolute host file whose bytes are copied at each start
    uid: int = 0  # owner inside the container
    gid: int = 0
    mode: int = 0o444


@dataclass(frozen=True)
class DeviceMapping:
    """A host device given to the container (`devices:`, Docker's `--device`)."""

    source: str  # absolute host path: a device node, or a directory of them (all are added)
    target: str = ""  # absolute path in the container; "" = the same as source
    permissions: str = "rwm"  # cgroup access: r, w, m


@dataclass(frozen=True)
class Resources:
    memory: int | None = None  # bytes (mem_limit, deploy.resources.limits.memory)
    memory_swap: int | None = None  # bytes, memory+swap; -1 = unlimited
    memory_reservation: int | None = None
    cpu_quota: int | None = None  # microseconds per cpu_period (cpus: 0.5 -> 50000)
    cpu_period: int = 100_000
    cpu_shares: int | None = None  # v1 shares (v2 weight is derived from it)
    pids_limit: int | None = None
    cpuset_cpus: str | None = None
    cpuset_mems: str | None = None
    blkio_weight: int | None = None  # 10..1000
    oom_kill_disable: bool = False


@dataclass(frozen=True)
class Ulimit:
    name: str  # "nofile", "nproc", ...
    soft: int
    hard: int


@dataclass(frozen=True)
class PortBinding:
    container_port: int
    protocol: Literal["tcp", "udp", "sctp"] = "tcp"
    host_ip: str = ""  # "" = all host addresses
    host_port: int = 0  # 0 = pick a free port
    # > host_port: a range host_port..host_port_end, the first free port in it is bound (as
    # Docker's "8000-8010:80"); 0 = just host_port. Bound bindings carry the chosen port, end 0.
    host_port_end: int = 0


@dataclass(frozen=True)
class NetworkAttachment:
    network: str  # engine network name (e.g. "myproj_default")
    aliases: tuple[str, ...] = ()
    ipv4_address: str | None = None
    priority: int = 0  # higher first: eth0 is the highest
    mac_address: str | None = None  # None: 02:42 + the IPv4 address (Docker's scheme)
    interface_name: str | None = None  # None: eth0, eth1... in priority order
    link_local_ips: tuple[str, ...] = ()  # more addresses on the interface (169.254.0.0/16)
    gw_priority: int = 0  # the default route goes via the highest (ties: the first)


@dataclass(frozen=True)
class Healthcheck:
    test: tuple[str, ...]  # ("CMD", ...), ("CMD-SHELL", "cmd"), ("NONE",)
    interval: float = 30.0
    timeout: float = 30.0
    retries: int = 3
    start_period: float = 0.0
    start_interval: float = 5.0


@dataclass(frozen=True)
class LogConfig:
    """Where a container's output is kept (Docker's `logging:`). "json-file": Docker's format,
    rotated; "local": the same file with Docker's `local` defaults (20 MiB x 5, compressed);
    "none": not kept (attach still sees it); "fluentd": json-file as a cache plus a Forward
    endpoint (below). None: the driver's default -- for json-file our
    cap, DEFAULT_MAX_SIZE x DEFAULT_MAX_FILE of runtime/process/logs.py."""

    driver: Literal["json-file", "local", "none", "fluentd"] = "json-file"
    max_size: int | None = None  # bytes per file
    max_file: int | None = None  # files kept, the one being written included
    compress: bool | None = None  # gzip the rotated files
    # fluentd: each line also goes to this Forward endpoint (runtime.process.fluentd), the
    # file above staying as Docker's dual-logging cache (local's defaults)
    fluentd_address: str = ""  # "tcp://host:port" / "unix:///path"
    tag: str = ""  # Docker's template ({{.ID}} {{.FullID}} {{.Name}} {{.ImageName}} ...)
    fluentd_async: bool = False
    fluentd_sub_second: bool = False


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str
    command: tuple[str, ...] | None = None  # None: the image's Cmd
    entrypoint: tuple[str, ...] | None = None  # None: the image's Entrypoint
    env: dict[str, str] = field(default_factory=dict)  # merged over the image's Env
    working_dir: str | None = None
    user: str | None = None  # "name", "uid", "uid:gid", "name:group"
    group_add: tuple[str, ...] = ()
    hostname: str | None = None
    domainname: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    mounts: tuple[Mount, ...] = ()
    files: tuple[InjectedFile, ...] = ()  # secrets/configs made for it (see InjectedFile)
    read_only: bool = False
    shm_size: int | None = None  # bytes, default 64 MiB
    # Docker's StorageOpt size: a hard limit (bytes) on the writable layer; needs project
    # quotas on the state root's filesystem (runtime/storage/quota.py). None: no limit.
    storage_size: int | None = None
    resources: Resources = field(default_factory=Resources)
    ulimits: tuple[Ulimit, ...] = ()
    sysctls: dict[str, str] = field(default_factory=dict)
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    devices: tuple[DeviceMapping, ...] = ()
    device_cgroup_rules: tuple[str, ...] = ()  # "c 1:3 rwm", added to the allow-list
    privileged: bool = False
    security_opt: tuple[str, ...] = ()
    init: bool = False
    tty: bool = False
    stdin_open: bool = False
    stop_signal: str | None = None  # None: the image's STOPSIGNAL, else SIGTERM
    stop_grace_period: float = 10.0
    # "bridge" (attach to `networks`), "host", "none", "container:<name-or-id>"
    network_mode: str = "bridge"
    networks: tuple[NetworkAttachment, ...] = ()
    ports: tuple[PortBinding, ...] = ()
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_opt: tuple[str, ...] = ()
    extra_hosts: tuple[tuple[str, str], ...] = ()  # (hostname, ip)
    restart: str = "no"  # no | always | on-failure[:N] | unless-stopped
    healthcheck: Healthcheck | None = None
    userns_mode: str | None = None  # None | "host" | "private" (own user namespace)
    # Sharing namespaces (Docker's IpcMode, PidMode, UTSMode, CgroupnsMode). "" = its own.
    ipc_mode: str = ""  # "" | "private" | "shareable" (others may join) | "host" | "container:<name>"
    pid_mode: str = ""  # "" | "host" | "container:<name>"
    uts_mode: str = ""  # "" | "host"
    cgroupns_mode: str = ""  # "" | "private" | "host"
    auto_remove: bool = False
    logging: LogConfig = field(default_factory=LogConfig)


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    driver: str = "bridge"
    internal: bool = False
    subnet: str | None = None
    gateway: str | None = None
    ip_range: str | None = None  # containers get addresses from here only (within subnet)
    aux_addresses: dict[str, str] = field(default_factory=dict)  # host name -> reserved address
    mtu: int | None = None
    labels: dict[str, str] = field(default_factory=dict)
    external: bool = False


@dataclass(frozen=True)
class VolumeSpec:
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    external: bool = False
    # the local driver's options; only its bind form is supported: {"type": "none",
    # "o": "bind", "device": "/abs/dir"} makes the volume that host directory
    driver_opts: dict[str, str] = field(default_factory=dict)
