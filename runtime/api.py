"""The Engine API: the one surface composer/ calls, served by composerd and spoken by the client.

`Engine` (runtime.engine) implements it in-process; `Client` (runtime.client) implements it
over the daemon's unix socket. Both take and return the dataclasses below (JSON via
runtime.serde), so composer/ cannot tell them apart.
"""
from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from runtime.types import ContainerSpec, Mount, NetworkSpec, PortBinding, VolumeSpec

if TYPE_CHECKING:
    from runtime.attach import AttachStream

State = Literal["created", "running", "paused", "restarting", "exited", "dead", "removing"]
Health = Literal["", "starting", "healthy", "unhealthy"]


@dataclass(frozen=True)
class ContainerInfo:
    id: str
    name: str
    image: str
    spec: ContainerSpec
    state: State = "created"
    pid: int = 0
    exit_code: int | None = None
    oom_killed: bool = False
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    restart_count: int = 0
    health: Health = ""
    error: str = ""
    ports: tuple[PortBinding, ...] = ()  # as bound (random host ports filled in)
    addresses: dict[str, str] = field(default_factory=dict)  # network -> ipv4
    # decided at create time: the process it runs (entrypoint + command over the image's),
    # the image id it was made from, and every mount (anonymous volumes named, the image's
    # VOLUMEs included) — what `docker inspect` calls Path/Args, Image and Mounts
    command: tuple[str, ...] = ()
    image_id: str = ""
    mounts: tuple[Mount, ...] = ()

    @property
    def labels(self) -> dict[str, str]:
        return self.spec.labels


@dataclass(frozen=True)
class NetworkInfo:
    name: str
    spec: NetworkSpec
    bridge: str = ""
    subnet: str = ""
    gateway: str = ""
    # from create only: what on this host keeps the network from working, one line each
    # (e.g. another firewall's forward drop composer may not open), as Docker's `Warning`
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class VolumeInfo:
    name: str
    spec: VolumeSpec
    mountpoint: str = ""
    created_at: float = 0.0


@dataclass(frozen=True)
class ImageInfo:
    id: str  # sha256:... of the config
    tags: tuple[str, ...] = ()
    size: int = 0
    created_at: float = 0.0
    volumes: tuple[str, ...] = ()  # the config's VOLUMEs (container paths)


@dataclass(frozen=True)
class LogLine:
    stream: Literal["stdout", "stderr"]
    time: float
    data: str  # bytes that are not UTF-8 as lone surrogates: .encode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class Event:
    time: float
    type: Literal["container", "network", "volume", "image"]
    action: str  # create, start, die, oom, health_status: healthy, stop, destroy, ...
    id: str
    name: str = ""
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: str = ""
    stderr: str = ""


@dataclass(frozen=True)
class ArchiveResult:
    """What `remove_paths` did: paths removed, and one line per path that failed (the
    others were done)."""

    written: int = 0
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Stats:
    memory_usage: int = 0
    memory_peak: int = 0
    memory_limit: int = 0
    cpu_usage_ns: int = 0
    pids: int = 0
    io_read_bytes: int = 0  # block I/O of its processes
    io_write_bytes: int = 0
    net_rx_bytes: int = 0  # its network namespace's interfaces but lo (0 with host network)
    net_tx_bytes: int = 0


# BuildKit's entitlements a build may be granted (buildx's --allow; `device` is a CDI one, not
# here): the request's `entitlements`, checked by the builder (RUN flags) and by the loader
BUILD_ENTITLEMENTS = ("network.host", "security.insecure")


@dataclass(frozen=True)
class BuildRequest:
    context: str  # absolute path of the build context
    dockerfile: str = "Dockerfile"  # relative to the context, or absolute
    tag: str = ""
    target: str | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    no_cache: bool = False
    dockerfile_inline: str | None = None  # the Dockerfile's text (then `dockerfile` is unused)
    tags: tuple[str, ...] = ()  # more names for the image
    labels: dict[str, str] = field(default_factory=dict)  # added to the image's labels
    pull: bool = False  # pull FROM images from their registry first, even when present
    network: str = "default"  # RUN steps: default / host (the host's network), none
    shm_size: int | None = None  # RUN steps: size of /dev/shm (bytes)
    extra_hosts: tuple[tuple[str, str], ...] = ()  # RUN steps: more /etc/hosts lines
    # Compose's additional_contexts: NAME -> "image:REF" or "dir:/abs/dir" (FROM / COPY --from)
    named_contexts: dict[str, str] = field(default_factory=dict)
    # Compose's build.secrets: id -> content, for RUN --mount=type=secret (never in a layer,
    # nor in the cache key: a changed secret does not rebuild, as with BuildKit)
    secrets: dict[str, str] = field(default_factory=dict)
    # Compose's build.ssh: id -> the path of an ssh agent's socket on this host, for RUN
    # --mount=type=ssh (relayed into that RUN only; not in the cache key, as with BuildKit)
    ssh: dict[str, str] = field(default_factory=dict)
    # BuildKit's entitlements granted to this build (Compose's build.entitlements, plus
    # security.insecure for build.privileged and network.host for build.network: host):
    # RUN --security=insecure and RUN --network=host need them
    entitlements: tuple[str, ...] = ()


@dataclass(frozen=True)
class BuildProgress:
    """One line of build output; the last item carries `image_id` (or `error`)."""

    line: str = ""
    image_id: str = ""
    error: str = ""


@dataclass(frozen=True)
class PullEvent:
    """Progress of a pull: per layer (`layer` = short digest) or for the image (`layer` = "")."""

    status: str
    layer: str = ""
    current: int = 0
    total: int | None = None
    image_id: str = ""
    error: str = ""


@dataclass(frozen=True)
class PathStat:
    """A path in a container, as `cp` sees it (Docker's PathStat): the last component is
    not followed; `link_target` is a symlink's content."""

    name: str
    size: int
    mode: int  # st_mode
    mtime: float
    link_target: str = ""

    @property
    def is_dir(self) -> bool:
        return (self.mode & 0o170000) == 0o040000


@dataclass(frozen=True)
class CommitRequest:
    """`commit`: the container's writable layer as a new image layer over its image."""

    tag: str = ""  # REPOSITORY[:TAG]; "" leaves the image untagged
    comment: str = ""  # -m
    author: str = ""  # -a
    changes: tuple[str, ...] = ()  # -c: Dockerfile instructions applied to the config
    pause: bool = True


@dataclass(frozen=True)
class ExecTarget:
    """What an interactive exec needs to run next to the caller's terminal: the container's
    init pid and start time, the exec settings (runtime.process.config.ExecConfig as a dict)
    and the socket of the monitor that starts it (root only, like the daemon's socket)."""

    pid: int
    start_time: int
    config: dict[str, object]
    monitor: str


class EngineAPI(Protocol):
    # containers
    async def create_container(self, spec: ContainerSpec) -> ContainerInfo: ...
    async def start_container(self, ref: str) -> ContainerInfo: ...
    async def stop_container(self, ref: str, timeout: float | None = None) -> ContainerInfo: ...
    async def kill_container(self, ref: str, signal: str = "SIGKILL") -> None: ...
    async def wait_container(self, ref: str) -> int: ...
    async def remove_container(self, ref: str, force: bool = False, volumes: bool = False) -> None: ...
    async def inspect_container(self, ref: str) -> ContainerInfo: ...
    async def list_containers(
        self, all: bool = False, labels: dict[str, str] | None = None
    ) -> list[ContainerInfo]: ...
    async def pause_container(self, ref: str) -> None: ...
    async def unpause_container(self, ref: str) -> None: ...
    def logs(
        self, ref: str, follow: bool = False, tail: int | None = None,
        since: float | None = None, until: float | None = None,
    ) -> AsyncIterator[LogLine]: ...
    async def exec_run(
        self,
        ref: str,
        argv: list[str],
        user: str | None = None,
        env: dict[str, str] | None = None,
        workdir: str | None = None,
        privileged: bool = False,
    ) -> ExecResult: ...
    async def exec_attach(
        self,
        ref: str,
        argv: list[str],
        user: str | None = None,
        env: dict[str, str] | None = None,
        workdir: str | None = None,
        tty: bool = False,
        stdin: bool = True,
        detach: bool = False,
        privileged: bool = False,
    ) -> AttachStream: ...
    async def exec_prepare(
        self,
        ref: str,
        argv: list[str],
        user: str | None = None,
        env: dict[str, str] | None = None,
        workdir: str | None = None,
        tty: bool = False,
        privileged: bool = False,
    ) -> ExecTarget: ...
    async def restart_container(self, ref: str, timeout: float | None = None) -> ContainerInfo: ...
    async def attach_container(
        self, ref: str, logs: bool = False, follow: bool = False
    ) -> AttachStream: ...
    async def remove_paths(self, ref: str, paths: list[str]) -> ArchiveResult: ...
    async def top(self, ref: str) -> list[dict[str, str]]: ...
    # a container's files (cp, export, commit)
    async def stat_path(self, ref: str, path: str) -> PathStat: ...
    async def get_archive(
        self, ref: str, path: str, follow_link: bool = False
    ) -> tuple[PathStat, AsyncIterator[bytes]]: ...
    async def put_archive(
        self,
        ref: str,
        path: str,
        data: AsyncIterable[bytes],
        copy_uid_gid: bool = False,
        no_overwrite_dir_non_dir: bool = True,
    ) -> None: ...
    def export_container(self, ref: str) -> AsyncIterator[bytes]: ...
    async def commit_container(self, ref: str, req: CommitRequest) -> ImageInfo: ...
    async def stats(self, ref: str) -> Stats: ...
    # networks
    async def create_network(self, spec: NetworkSpec) -> NetworkInfo: ...
    async def remove_network(self, name: str) -> None: ...
    async def list_networks(self, labels: dict[str, str] | None = None) -> list[NetworkInfo]: ...
    # volumes
    async def create_volume(self, spec: VolumeSpec) -> VolumeInfo: ...
    async def remove_volume(self, name: str, force: bool = False) -> None: ...
    async def list_volumes(self, labels: dict[str, str] | None = None) -> list[VolumeInfo]: ...
    # images
    async def list_images(self) -> list[ImageInfo]: ...
    async def inspect_image(self, ref: str) -> ImageInfo: ...
    async def remove_image(self, ref: str, force: bool = False) -> list[str]: ...
    async def import_image(self, path: str, tag: str) -> ImageInfo: ...
    async def load_image(self, path: str) -> list[ImageInfo]: ...
    def build_image(self, req: BuildRequest) -> AsyncIterator[BuildProgress]: ...
    def pull_image(self, ref: str) -> AsyncIterator[PullEvent]: ...
    # events
    def events(
        self, since: float | None = None, until: float | None = None
    ) -> AsyncIterator[Event]: ...
