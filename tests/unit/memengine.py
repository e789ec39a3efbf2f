"""An in-memory stand-in for the Engine API, enough for `composer.operations.Project`: it
records what was created, started, stopped, pulled and built, and keeps the images' ids in
a dict a test can change (a rebuilt or newly pulled image)."""
from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import replace

from runtime.api import (
    ArchiveResult,
    BuildProgress,
    BuildRequest,
    ContainerInfo,
    ExecResult,
    ImageInfo,
    LogLine,
    NetworkInfo,
    PathStat,
    PullEvent,
    VolumeInfo,
)
from runtime.attach import ERR, EXIT, OUT, AttachStream, exit_payload
from runtime.errors import Conflict, NotFound
from runtime.types import ContainerSpec, NetworkSpec, VolumeSpec

ANONYMOUS = "com.docker.volume.anonymous"


class ScriptedStream(AttachStream):
    """An exec's stream of frames fixed in advance (empty output frames are left out)."""

    def __init__(self, frames: list[tuple[int, bytes]]) -> None:
        self.frames = [(k, p) for k, p in frames if p or k == EXIT]
        self.closed = False

    async def _send(self, data: bytes) -> None:
        pass

    async def _recv(self) -> tuple[int, bytes] | None:
        return self.frames.pop(0) if self.frames else None

    async def close(self) -> None:
        self.closed = True


class MemEngine:
    def __init__(self, images: dict[str, str] | None = None) -> None:
        self.containers: dict[str, ContainerInfo] = {}
        self.networks: set[str] = set()
        self.network_specs: dict[str, NetworkSpec] = {}
        self.volumes: dict[str, dict[str, str]] = {}  # name -> labels
        # ref -> image id; None: every ref exists with one fixed id
        self.images = images
        self.pulled: list[str] = []
        self.built: list[str] = []
        self.requests: list[BuildRequest] = []
        self.log: list[tuple[str, str]] = []  # (verb, container name)
        self.pull_fails = False
        self.exit_on_start: dict[str, int] = {}  # service -> exit code: a one-shot
        self.health: dict[str, str] = {}  # service -> health status its containers report
        # every exec: its container's name, argv, user, env, workdir, privileged; a test sets
        # exec_results[argv[-1]] for another outcome. A pre_start hook's container "runs" its
        # command: it exits with hook_exit[command[-1]] (default 0) after printing
        # hook_output[command[-1]].
        self.execs: list[dict[str, object]] = []
        self.exec_results: dict[str, ExecResult] = {}
        self.hook_exit: dict[str, int] = {}
        self.hook_output: dict[str, str] = {}
        self.files: dict[str, bytes | str | None] = {}  # what put_archive wrote (tar names)
        self._ids = itertools.count(1)
        self._clock = itertools.count(1)

    # the client's own
    async def close(self) -> None:
        pass

    def lock(self, project: str, **_: object) -> contextlib.AbstractAsyncContextManager[None]:
        return contextlib.nullcontext()  # type: ignore[return-value]

    # images
    async def inspect_image(self, ref: str) -> ImageInfo:
        if self.images is None:
            return ImageInfo(id="sha256:" + "0" * 64, tags=(ref,))
        if ref not in self.images:
            if ref in self.images.values() or ref.startswith("sha256:built-"):  # by id
                return ImageInfo(id=ref, tags=tuple(k for k, v in self.images.items() if v == ref))
            raise NotFound(f"no such image: {ref}")
        return ImageInfo(id=self.images[ref], tags=(ref,))

    async def pull_image(self, ref: str) -> AsyncIterator[PullEvent]:
        self.pulled.append(ref)
        if self.pull_fails:
            yield PullEvent("error", error=f"cannot pull {ref}: registry unreachable")
            return
        if self.images is not None:
            self.images[ref] = f"sha256:pulled-{len(self.pulled)}"
        yield PullEvent("pulled", image_id="x")

    async def remove_image(self, ref: str, force: bool = False) -> list[str]:
        if self.images is not None and ref not in self.images and (
                ref in self.images.values() or ref.startswith("sha256:built-")):  # by id
            for tag in [k for k, v in self.images.items() if v == ref]:
                del self.images[tag]
            self.log.append(("rmi", ref))
            return [ref]
        if self.images is None or ref not in self.images:
            raise NotFound(f"no such image: {ref}")
        if any(c.image == ref for c in self.containers.values()):
            raise Conflict(f"image {ref} is used by a container")
        del self.images[ref]
        self.log.append(("rmi", ref))
        return [ref]

    async def build_image(self, req: BuildRequest) -> AsyncIterator[BuildProgress]:
        self.requests.append(req)
        self.built.append(req.tag)
        if self.images is not None:
            self.images[req.tag] = f"sha256:built-{len(self.built)}"
        yield BuildProgress(image_id="x")

    # networks and volumes
    async def create_network(self, spec: NetworkSpec) -> NetworkInfo:
        self.networks.add(spec.name)
        self.network_specs.setdefault(spec.name, spec)
        return NetworkInfo(spec.name, spec)

    async def remove_network(self, name: str) -> None:
        users = [c.name for c in self.containers.values()
                 if c.state == "running" and any(n.network == name for n in c.spec.networks)]
        if users:
            raise Conflict(f"network {name} is in use by container(s) {', '.join(users)}")
        if name not in self.networks:
            raise NotFound(name)
        self.networks.discard(name)

    async def list_networks(self, labels: dict[str, str] | None = None) -> list[NetworkInfo]:
        specs = [self.network_specs.get(n, NetworkSpec(n)) for n in sorted(self.networks)]
        return [NetworkInfo(s.name, s) for s in specs if all_match(s.labels, labels)]

    async def create_volume(self, spec: VolumeSpec) -> VolumeInfo:
        self.volumes.setdefault(spec.name, dict(spec.labels))
        return VolumeInfo(spec.name, spec)

    async def list_volumes(self, labels: dict[str, str] | None = None) -> list[VolumeInfo]:
        return [VolumeInfo(n, VolumeSpec(n, labels=dict(lab))) for n, lab in sorted(self.volumes.items())
                if all_match(lab, labels)]

    async def remove_volume(self, name: str, force: bool = False) -> None:
        if name not in self.volumes:
            raise NotFound(name)
        del self.volumes[name]

    # containers
    async def list_containers(self, all: bool = False, labels: dict[str, str] | None = None) -> list[ContainerInfo]:
        return [c for c in self.containers.values()
                if (all or c.state == "running") and all_match(c.labels, labels)]

    async def inspect_container(self, ref: str) -> ContainerInfo:
        return self.containers[ref]

    async def create_container(self, spec: ContainerSpec) -> ContainerInfo:
        mounts = []
        for m in spec.mounts:
            if m.type == "volume" and not m.source:
                name = f"anon{next(self._ids)}"
                self.volumes[name] = {ANONYMOUS: ""}
                m = replace(m, source=name)
            mounts.append(m)
        spec = replace(spec, mounts=tuple(mounts))
        image = await self.inspect_image(spec.image)
        info = ContainerInfo(id=f"id{next(self._ids)}", name=spec.name, image=spec.image, spec=spec,
                             image_id=image.id, mounts=spec.mounts, created_at=next(self._clock))
        self.containers[info.id] = info
        self.log.append(("create", spec.name))
        return info

    async def start_container(self, ref: str) -> ContainerInfo:
        from composer import labels as L

        if L.HOOK in self.containers[ref].labels:  # a pre_start hook: runs to its end at once
            cmd = self.containers[ref].spec.command or ("",)
            self.containers[ref] = replace(self.containers[ref], state="exited",
                                           exit_code=self.hook_exit.get(cmd[-1], 0))
            self.log.append(("hook", cmd[-1]))
            return self.containers[ref]
        service = self.containers[ref].labels.get(L.SERVICE, "")
        self.containers[ref] = replace(self.containers[ref], state="running",
                                       started_at=next(self._clock),
                                       health=self.health.get(service, ""))  # type: ignore[arg-type]
        if service in self.exit_on_start:
            self.containers[ref] = replace(self.containers[ref], state="exited",
                                           exit_code=self.exit_on_start[service])
        self.log.append(("start", self.containers[ref].name))
        return self.containers[ref]

    async def stop_container(self, ref: str, timeout: float | None = None) -> ContainerInfo:
        self.containers[ref] = replace(self.containers[ref], state="exited", exit_code=0)
        self.log.append(("stop", self.containers[ref].name))
        return self.containers[ref]

    async def restart_container(self, ref: str, timeout: float | None = None) -> ContainerInfo:
        """The engine's restart: a stop then a start, as one call."""
        await self.stop_container(ref, timeout)
        return await self.start_container(ref)

    async def remove_container(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        info = self.containers.pop(ref)
        self.log.append(("remove", info.name))
        if volumes:
            for m in info.mounts:
                if m.type == "volume" and ANONYMOUS in self.volumes.get(m.source, {}):
                    del self.volumes[m.source]

    async def wait_container(self, ref: str) -> int:
        return self.containers[ref].exit_code or 0

    async def logs(self, ref: str, follow: bool = False, tail: int | None = None) -> AsyncIterator[LogLine]:
        cmd = self.containers[ref].spec.command or ("",)
        for line in self.hook_output.get(cmd[-1], "").splitlines(keepends=True):
            yield LogLine("stdout", 0.0, line)

    async def exec_run(self, ref: str, argv: list[str], user: str | None = None,
                       env: dict[str, str] | None = None, workdir: str | None = None,
                       privileged: bool = False) -> ExecResult:
        c = self.containers[ref]
        if c.state != "running":
            raise Conflict(f"container {c.name} is not running")
        self.execs.append({"name": c.name, "argv": list(argv), "user": user, "env": dict(env or {}),
                           "workdir": workdir, "privileged": privileged})
        self.log.append(("exec", f"{c.name}:{argv[-1]}"))
        return self.exec_results.get(argv[-1], ExecResult(0))

    async def exec_attach(self, ref: str, argv: list[str], user: str | None = None,
                          env: dict[str, str] | None = None, workdir: str | None = None,
                          tty: bool = False, stdin: bool = True, detach: bool = False,
                          privileged: bool = False) -> AttachStream:
        """The hooks' exec: exec_run's scripted result, as the frames a real stream carries."""
        res = await self.exec_run(ref, argv, user=user, env=env, workdir=workdir,
                                  privileged=privileged)
        return ScriptedStream([(OUT, res.stdout.encode()), (ERR, res.stderr.encode()),
                               (EXIT, exit_payload(res.exit_code))])

    async def put_archive(self, ref: str, path: str, data: AsyncIterable[bytes],
                          copy_uid_gid: bool = False,
                          no_overwrite_dir_non_dir: bool = True) -> None:
        import io
        import tarfile

        raw = b"".join([chunk async for chunk in data])
        names = []
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r|") as tar:
            for m in tar:
                f = tar.extractfile(m) if m.isreg() else None
                self.files[m.name] = f.read() if f else (m.linkname if m.issym() else None)
                names.append(m.name)
        self.log.append(("put", f"{self.containers[ref].name}:{','.join(names)}"))

    async def remove_paths(self, ref: str, paths: list[str]) -> ArchiveResult:
        self.log.append(("rm", f"{self.containers[ref].name}:{','.join(paths)}"))
        return ArchiveResult(len(paths))

    async def stat_path(self, ref: str, path: str) -> PathStat:
        """Every path of a container is a directory (enough for `cp`'s destination)."""
        if ref not in self.containers:
            raise NotFound(f"no such container: {ref}")
        return PathStat(name=path.rstrip("/").rsplit("/", 1)[-1] or "/", size=0,
                        mode=0o040755, mtime=0.0)

    def running(self) -> list[str]:
        from composer import labels as L

        return sorted(c.labels[L.SERVICE] for c in self.containers.values() if c.state == "running")


def all_match(have: dict[str, str], want: dict[str, str] | None) -> bool:
    return all(have.get(k) == v for k, v in (want or {}).items())
