"""`--dry-run`: an engine that answers reads and only pretends to change anything.

`DryRunEngine` stands between a verb and the engine (the daemon's client, or nothing when
no daemon runs), as docker compose's DryRunClient stands between compose and the Docker
API. Reads go to the real engine; every mutation is recorded in `mutations` and answered
with a plausible result, and kept in an overlay so that later reads in the same command
see it: a container it "created" is listed, inspected, "started" and reported running (and
healthy), one it "removed" is gone. So the verb runs its ordinary code path — the
convergence plan, dependency order, health waits — and its ordinary progress lines show
what it would do (the CLI prefixes them `DRY-RUN MODE - `, as Compose does); the few
mutations that report no progress of their own (exec, an image removed, committed,
imported) are announced through `announce`.

Nothing here writes: no container, network, volume or image, no file of a container, no
project lock (a dry run changes nothing, so it needs no turn), and no daemon is started.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

from composer.errors import DryRunDone
from composer.labels import ONEOFF
from runtime.api import (
    ArchiveResult,
    BuildProgress,
    BuildRequest,
    CommitRequest,
    ContainerInfo,
    Event,
    ExecResult,
    ExecTarget,
    ImageInfo,
    LogLine,
    NetworkInfo,
    PathStat,
    PullEvent,
    State,
    Stats,
    VolumeInfo,
)
from runtime.attach import EXIT, AttachStream, exit_payload
from runtime.errors import NotFound
from runtime.types import ContainerSpec, NetworkSpec, VolumeSpec

PREFIX = "DRY-RUN MODE - "
EMPTY_TAR = b"\0" * 1024  # a tar archive with no member: its two zero end blocks
FAKE_IMAGE_ID = "sha256:" + "0" * 64

Announce = Callable[[str, str], None]  # (object, status), as the progress display takes


@dataclass(frozen=True)
class Mutation:
    """One change the command would have made: the engine call and what it names."""

    call: str
    target: str


class _EndedStream(AttachStream):
    """An attach or exec stream of a process that 'ran' and exited 0 without output."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, bytes]] = [(EXIT, exit_payload(0))]

    async def _send(self, data: bytes) -> None:
        pass

    async def _recv(self) -> tuple[int, bytes] | None:
        return self.frames.pop(0) if self.frames else None

    async def close(self) -> None:
        self.frames.clear()


def _match(have: dict[str, str], want: dict[str, str] | None) -> bool:
    return not want or all(have.get(k) == v for k, v in want.items())


class DryRunEngine:
    """The Engine API (runtime.api.EngineAPI, plus the client's `lock` and `close`) over a
    real engine or none; see the module's docstring."""

    dry_run = True

    def __init__(self, real: Any | None, announce: Announce | None = None) -> None:
        self.real = real
        self.announce = announce or (lambda obj, status: None)
        self.mutations: list[Mutation] = []
        self._made: dict[str, ContainerInfo] = {}  # id -> a container it "created"
        self._states: dict[str, ContainerInfo] = {}  # id -> a real container, "changed"
        self._gone: set[str] = set()  # ids and names of containers it "removed"
        self._networks: dict[str, NetworkInfo | None] = {}  # name -> made (None: removed)
        self._volumes: dict[str, VolumeInfo | None] = {}
        self._images: dict[str, ImageInfo | None] = {}  # ref -> pulled/built (None: removed)

    def _record(self, call: str, target: str) -> None:
        self.mutations.append(Mutation(call, target))

    # ------------------------------------------------------------- the client's own

    async def close(self) -> None:
        if self.real is not None:
            await self.real.close()

    def lock(self, project: str, **_: object) -> contextlib.AbstractAsyncContextManager[None]:
        return contextlib.nullcontext()

    async def ping(self) -> bool:
        return True

    async def version(self) -> dict[str, Any]:
        if self.real is None:
            return {}
        result: dict[str, Any] = await self.real.version()
        return result

    # ------------------------------------------------------------- containers: reads

    def _own(self, ref: str) -> ContainerInfo | None:
        for c in self._made.values():
            if ref in (c.id, c.name):
                return c
        return None

    async def inspect_container(self, ref: str) -> ContainerInfo:
        own = self._own(ref)
        if own is not None:
            return own
        if ref in self._gone or self.real is None:
            raise NotFound(f"no such container: {ref}", subject=ref)
        info: ContainerInfo = await self.real.inspect_container(ref)
        if info.id in self._gone:
            raise NotFound(f"no such container: {ref}", subject=ref)
        return self._states.get(info.id, info)

    async def list_containers(
        self, all: bool = False, labels: dict[str, str] | None = None
    ) -> list[ContainerInfo]:
        real = [] if self.real is None else await self.real.list_containers(all=True, labels=labels)
        out = [self._states.get(c.id, c) for c in real if c.id not in self._gone]
        out += [c for c in self._made.values() if _match(c.labels, labels)]
        return [c for c in out if all or c.state == "running"]

    async def wait_container(self, ref: str) -> int:
        info = await self.inspect_container(ref)
        if info.id in self._made or info.id in self._states:
            return info.exit_code or 0
        assert self.real is not None
        code: int = await self.real.wait_container(ref)
        return code

    def logs(self, ref: str, follow: bool = False, tail: int | None = None,
             since: float | None = None, until: float | None = None) -> AsyncIterator[LogLine]:
        if self.real is None or self._own(ref) is not None:
            return _nothing()
        result: AsyncIterator[LogLine] = self.real.logs(ref, follow=follow, tail=tail,
                                                        since=since, until=until)
        return result

    async def top(self, ref: str) -> list[dict[str, str]]:
        if (await self.inspect_container(ref)).id in self._made:
            return []
        assert self.real is not None
        result: list[dict[str, str]] = await self.real.top(ref)
        return result

    async def stats(self, ref: str) -> Stats:
        if (await self.inspect_container(ref)).id in self._made:
            return Stats()
        assert self.real is not None
        result: Stats = await self.real.stats(ref)
        return result

    async def stat_path(self, ref: str, path: str) -> PathStat:
        if (await self.inspect_container(ref)).id in self._made:
            return PathStat(name=path.rstrip("/").rsplit("/", 1)[-1] or "/", size=0,
                            mode=0o040755, mtime=0.0)
        assert self.real is not None
        result: PathStat = await self.real.stat_path(ref, path)
        return result

    async def get_archive(
        self, ref: str, path: str, follow_link: bool = False
    ) -> tuple[PathStat, AsyncIterator[bytes]]:
        """The path's stat (so a missing path is still an error) and an empty archive: the
        copy to the host is shown, not made."""
        st = await self.stat_path(ref, path)
        self._record("get_archive", f"{ref}:{path}")
        return st, _chunks(EMPTY_TAR)

    def export_container(self, ref: str) -> AsyncIterator[bytes]:
        if self.real is None or self._own(ref) is not None:
            return _chunks(EMPTY_TAR)
        result: AsyncIterator[bytes] = self.real.export_container(ref)
        return result

    async def attach_container(self, ref: str, logs: bool = False,
                               follow: bool = False) -> AttachStream:
        info = await self.inspect_container(ref)
        if info.id in self._made or self.real is None:
            return _EndedStream()
        stream: AttachStream = await self.real.attach_container(ref, logs=logs, follow=follow)
        return stream

    # ------------------------------------------------------------- containers: changes

    def _set(self, info: ContainerInfo, **changes: Any) -> ContainerInfo:
        new = replace(info, **changes)
        (self._made if info.id in self._made else self._states)[info.id] = new
        return new

    async def create_container(self, spec: ContainerSpec) -> ContainerInfo:
        self._record("create_container", spec.name)
        self._gone.discard(spec.name)
        info = ContainerInfo(id=f"dryrun-{spec.name}", name=spec.name, image=spec.image,
                             spec=spec, state="created", created_at=time.time(),
                             image_id=FAKE_IMAGE_ID)
        self._made[info.id] = info
        self._one_off(info, "Creating")
        return info

    def _one_off(self, info: ContainerInfo, status: str) -> None:
        """`run`'s container reports no progress of its own (its output is what shows): say
        what happens to it."""
        if info.labels.get(ONEOFF) == "True":
            self.announce(f"Container {info.name}", status)

    async def start_container(self, ref: str) -> ContainerInfo:
        info = await self.inspect_container(ref)
        self._record("start_container", info.name)
        command = " ".join(info.spec.command or ())
        self._one_off(info, f"Running {command}" if command else "Running")
        health = "healthy" if info.spec.healthcheck is not None else info.health
        return self._set(info, state="running", exit_code=None, health=health,
                         started_at=time.time())

    async def _stopped(self, call: str, ref: str, state: State = "exited") -> ContainerInfo:
        info = await self.inspect_container(ref)
        self._record(call, info.name)
        code = 0 if info.state != "running" or call == "stop_container" else 137
        return self._set(info, state=state, exit_code=code if state == "exited" else info.exit_code)

    async def stop_container(self, ref: str, timeout: float | None = None) -> ContainerInfo:
        return await self._stopped("stop_container", ref)

    async def kill_container(self, ref: str, signal: str = "SIGKILL") -> None:
        await self._stopped("kill_container", ref)

    async def restart_container(self, ref: str, timeout: float | None = None) -> ContainerInfo:
        info = await self.inspect_container(ref)
        self._record("restart_container", info.name)
        return self._set(info, state="running", exit_code=None, started_at=time.time())

    async def pause_container(self, ref: str) -> None:
        await self._stopped("pause_container", ref, "paused")

    async def unpause_container(self, ref: str) -> None:
        await self._stopped("unpause_container", ref, "running")

    async def remove_container(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        info = await self.inspect_container(ref)
        self._record("remove_container", info.name)
        self._one_off(info, "Removing")
        self._made.pop(info.id, None)
        self._states.pop(info.id, None)
        self._gone.update((info.id, info.name))

    async def remove_paths(self, ref: str, paths: list[str]) -> ArchiveResult:
        info = await self.inspect_container(ref)
        for p in paths:
            self._record("remove_paths", f"{info.name}:{p}")
        return ArchiveResult(written=len(paths))

    async def put_archive(self, ref: str, path: str, data: AsyncIterable[bytes],
                          copy_uid_gid: bool = False,
                          no_overwrite_dir_non_dir: bool = True) -> None:
        info = await self.inspect_container(ref)
        self._record("put_archive", f"{info.name}:{path}")  # `data` is never read

    async def commit_container(self, ref: str, req: CommitRequest) -> ImageInfo:
        info = await self.inspect_container(ref)
        self._record("commit_container", info.name)
        self.announce(f"Container {info.name}", f"Committing{' to ' + req.tag if req.tag else ''}")
        image = ImageInfo(id=FAKE_IMAGE_ID, tags=(req.tag,) if req.tag else ())
        if req.tag:
            self._images[req.tag] = image
        return image

    async def _exec(self, ref: str, argv: list[str]) -> ContainerInfo:
        info = await self.inspect_container(ref)
        self._record("exec", f"{info.name}: {' '.join(argv)}")
        self.announce(f"Container {info.name}", f"Executing {' '.join(argv)}")
        return info

    async def exec_run(self, ref: str, argv: list[str], user: str | None = None,
                       env: dict[str, str] | None = None, workdir: str | None = None,
                       privileged: bool = False) -> ExecResult:
        await self._exec(ref, argv)
        return ExecResult(exit_code=0)

    async def exec_attach(self, ref: str, argv: list[str], user: str | None = None,
                          env: dict[str, str] | None = None, workdir: str | None = None,
                          tty: bool = False, stdin: bool = True, detach: bool = False,
                          privileged: bool = False) -> AttachStream:
        await self._exec(ref, argv)
        return _EndedStream()

    async def exec_prepare(self, ref: str, argv: list[str], user: str | None = None,
                           env: dict[str, str] | None = None, workdir: str | None = None,
                           tty: bool = False, privileged: bool = False) -> ExecTarget:
        await self._exec(ref, argv)
        raise DryRunDone("dry run: the command was not run")

    # ------------------------------------------------------------- networks, volumes

    async def list_networks(self, labels: dict[str, str] | None = None) -> list[NetworkInfo]:
        real = [] if self.real is None else await self.real.list_networks(labels=labels)
        out = [n for n in real if n.name not in self._networks]
        out += [n for n in self._networks.values()
                if n is not None and _match(n.spec.labels, labels)]
        return out

    async def create_network(self, spec: NetworkSpec) -> NetworkInfo:
        self._record("create_network", spec.name)
        info = NetworkInfo(spec.name, spec)
        self._networks[spec.name] = info
        return info

    async def remove_network(self, name: str) -> None:
        if not any(n.name == name for n in await self.list_networks()):
            raise NotFound(f"no such network: {name}", subject=name)
        self._record("remove_network", name)
        self._networks[name] = None

    async def list_volumes(self, labels: dict[str, str] | None = None) -> list[VolumeInfo]:
        real = [] if self.real is None else await self.real.list_volumes(labels=labels)
        out = [v for v in real if v.name not in self._volumes]
        out += [v for v in self._volumes.values()
                if v is not None and _match(v.spec.labels, labels)]
        return out

    async def create_volume(self, spec: VolumeSpec) -> VolumeInfo:
        self._record("create_volume", spec.name)
        info = VolumeInfo(spec.name, spec, created_at=time.time())
        self._volumes[spec.name] = info
        return info

    async def remove_volume(self, name: str, force: bool = False) -> None:
        if not any(v.name == name for v in await self.list_volumes()):
            raise NotFound(f"no such volume: {name}", subject=name)
        self._record("remove_volume", name)
        self._volumes[name] = None

    # ------------------------------------------------------------- images

    async def list_images(self) -> list[ImageInfo]:
        real: list[ImageInfo] = [] if self.real is None else await self.real.list_images()
        gone = {ref for ref, i in self._images.items() if i is None}
        out = [i for i in real if not gone.intersection(i.tags) and i.id not in gone]
        return out + [i for i in self._images.values() if i is not None]

    async def inspect_image(self, ref: str) -> ImageInfo:
        if ref in self._images:
            image = self._images[ref]
            if image is None:
                raise NotFound(f"no such image: {ref}", subject=ref)
            return image
        if self.real is None:
            raise NotFound(f"no such image: {ref}", subject=ref)
        result: ImageInfo = await self.real.inspect_image(ref)
        return result

    async def remove_image(self, ref: str, force: bool = False) -> list[str]:
        image = await self.inspect_image(ref)  # an unknown image is still an error
        self._record("remove_image", ref)
        self.announce(f"Image {ref}", "Removing")
        for tag in image.tags or (ref,):
            self._images[tag] = None
        return [f"Untagged: {t}" for t in image.tags] or [f"Deleted: {image.id}"]

    async def import_image(self, path: str, tag: str) -> ImageInfo:
        self._record("import_image", f"{path} as {tag}")
        self.announce(f"Image {tag}", f"Importing {path}")
        image = ImageInfo(id=FAKE_IMAGE_ID, tags=(tag,))
        self._images[tag] = image
        return image

    async def load_image(self, path: str) -> list[ImageInfo]:
        self._record("load_image", path)
        self.announce("Images", f"Loading {path}")
        return []

    def build_image(self, req: BuildRequest) -> AsyncIterator[BuildProgress]:
        self._record("build_image", req.tag)
        self._images[req.tag] = ImageInfo(id=FAKE_IMAGE_ID, tags=(req.tag,))
        return _chunks(BuildProgress(image_id=FAKE_IMAGE_ID))

    def pull_image(self, ref: str) -> AsyncIterator[PullEvent]:
        self._record("pull_image", ref)
        self._images[ref] = ImageInfo(id=FAKE_IMAGE_ID, tags=(ref,))
        return _chunks(PullEvent("pulled", image_id=FAKE_IMAGE_ID))

    # ------------------------------------------------------------- events

    def events(self, since: float | None = None,
               until: float | None = None) -> AsyncIterator[Event]:
        if self.real is None:
            return _nothing()
        result: AsyncIterator[Event] = self.real.events(since=since, until=until)
        return result


async def _nothing() -> AsyncIterator[Any]:
    return
    yield  # an async generator that yields nothing


async def _chunks(*items: Any) -> AsyncIterator[Any]:
    for item in items:
        yield item


async def connect() -> DryRunEngine:
    """A dry-run engine over the daemon when one answers, else over nothing (a dry run
    starts no daemon: everything reads as absent)."""
    from runtime.calls import DaemonUnavailable, PermissionDenied
    from runtime.client import Client
    from runtime.paths import Paths

    client = Client(Paths.from_env().socket)
    try:
        if await client.ping():
            return DryRunEngine(client)
    except (DaemonUnavailable, PermissionDenied):
        pass
    await client.close()
    return DryRunEngine(None)
