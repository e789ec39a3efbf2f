"""An in-memory EngineAPI for the daemon's tests: no kernel, no root, real semantics.

Containers are records whose "process" the test drives (`exit(ref, code)`, `add_log`);
errors are the engine's (NotFound, Conflict, InvalidArgument) with lowercase messages.
It wires a Supervisor and an EventBus the way the real Engine should. `FakeEngine.open`
is the factory `COMPOSERD_ENGINE=tests.unit.daemon.fake_engine:FakeEngine.open` names.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import io
import itertools
import posixpath
import signal as signals
import struct
import tarfile
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace

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
    Stats,
    VolumeInfo,
)
from runtime.attach import (
    CLOSE_IN,
    ERR,
    EXIT,
    IN,
    OUT,
    RESIZE,
    AttachStream,
    exit_payload,
    split_frames,
)
from runtime.errors import Conflict, InvalidArgument, NotFound
from runtime.events import EventBus, events_between
from runtime.paths import Paths
from runtime.supervisor import Backoff, RestartDecision, Supervisor
from runtime.types import ContainerSpec, NetworkSpec, VolumeSpec

ExecHandler = Callable[[str, list[str]], "ExecResult | Awaitable[ExecResult]"]

_pids = itertools.count(1000)


RUNNING_STATES = ("running", "paused", "restarting")  # as runtime.engine: `ps` lists them
STOPPED_CODE = 128 + signals.SIGTERM  # a stop ends the process by its signal, as a real one


@dataclass
class _Box:
    info: ContainerInfo
    logs: list[LogLine] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    files: dict[str, bytes] = field(default_factory=dict)  # what put_archive wrote: path -> data


def _matches(labels: dict[str, str], want: dict[str, str] | None) -> bool:
    return all(labels.get(k) == v for k, v in (want or {}).items())


class FakeAttach(AttachStream):
    """Echoes: stdin comes back on stdout as `echo: ...`, a resize as `size R C`, and the
    end of stdin ends the stream (as a `cat` container would)."""

    def __init__(self) -> None:
        self.out: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()
        self.closed = False

    async def _send(self, data: bytes) -> None:
        for kind, payload in split_frames(bytearray(data)):
            if kind == IN:
                self.out.put_nowait((OUT, b"echo: " + payload))
            elif kind == RESIZE:
                rows, cols = struct.unpack(">HH", payload)
                self.out.put_nowait((ERR, f"size {rows} {cols}\n".encode()))
            elif kind == CLOSE_IN:
                self.out.put_nowait(None)

    async def _recv(self) -> tuple[int, bytes] | None:
        return await self.out.get()

    async def close(self) -> None:
        self.closed = True


class FakeCat(AttachStream):
    """A `cat` exec: input comes back as output; the end of stdin ends it with code 0."""

    def __init__(self) -> None:
        self.out: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()

    async def _send(self, data: bytes) -> None:
        for kind, payload in split_frames(bytearray(data)):
            if kind == IN:
                self.out.put_nowait((OUT, payload))
            elif kind == CLOSE_IN:
                self.out.put_nowait((EXIT, exit_payload(0)))
                self.out.put_nowait(None)

    async def _recv(self) -> tuple[int, bytes] | None:
        return await self.out.get()

    async def close(self) -> None:
        pass


FAKE_COMMANDS = ("cat", "echo", "env", "false", "sleep", "crash")  # what exec_run knows


class FakeEngine:
    def __init__(self, *, supervise: bool = False, backoff: Backoff | None = None) -> None:
        self.bus = EventBus()
        self.containers: dict[str, _Box] = {}
        self.networks: dict[str, NetworkInfo] = {}
        self.attached: list[FakeAttach] = []
        self.volumes: dict[str, VolumeInfo] = {}
        self.images: dict[str, ImageInfo] = {
            "sha256:" + "b" * 64: ImageInfo(
                "sha256:" + "b" * 64, ("busybox:latest",), 1_200_000, 1.0
            ),
            "sha256:" + "c" * 64: ImageInfo(
                "sha256:" + "c" * 64, ("library/nginx:1.25",), 9_000_000, 2.0
            ),
        }
        self.exec_handler: ExecHandler | None = None
        self.exec_calls: list[tuple[str, list[str]]] = []
        self.exec_ready: list[tuple[str, list[str]]] = []  # exec_attach's ready() calls
        self.decisions: list[RestartDecision] = []  # what the supervisor answered on exits
        self.closed = False
        self.create_delay = 0.0  # seconds create_container takes (client-disconnect tests)
        self.supervisor = (
            Supervisor(self, self.bus, backoff=backoff or Backoff()) if supervise else None
        )

    @classmethod
    async def open(cls, paths: Paths) -> FakeEngine:
        return cls(supervise=True)

    async def close(self) -> None:
        self.closed = True
        if self.supervisor is not None:
            await self.supervisor.close()
        self.bus.close()

    # ------------------------------------------------------------ helpers for tests

    def _box(self, ref: str) -> _Box:
        if ref in self.containers:
            return self.containers[ref]
        for box in self.containers.values():
            if box.info.name == ref:
                return box
        found = [b for cid, b in self.containers.items() if cid.startswith(ref)]
        if len(found) == 1:
            return found[0]
        raise NotFound(f"no such container: {ref}", subject=ref)

    def _emit(self, action: str, info: ContainerInfo, **attrs: str) -> None:
        attributes = {"name": info.name, **info.labels, **attrs}
        self.bus.publish(Event(time.time(), "container", action, info.id, info.name, attributes))

    async def _set(self, box: _Box, **changes: object) -> ContainerInfo:
        box.info = replace(box.info, **changes)  # type: ignore[arg-type]
        async with box.changed:
            box.changed.notify_all()
        return box.info

    async def exit(self, ref: str, code: int, *, oom: bool = False) -> None:
        """The container's process ended by itself with `code`."""
        box = self._box(ref)
        if box.info.state not in ("running", "paused"):
            raise Conflict(f"container {box.info.name} is not running")
        await self._set(
            box, state="exited", pid=0, exit_code=code, oom_killed=oom, finished_at=time.time()
        )
        self._emit("die", box.info, exitCode=str(code))
        if self.supervisor is not None:
            decision = self.supervisor.on_exit(box.info.id, code)
            self.decisions.append(decision)
            if decision.restart:
                await self._set(box, state="restarting", restart_count=decision.restart_count)

    async def add_log(self, ref: str, data: str, stream: str = "stdout") -> None:
        box = self._box(ref)
        box.logs.append(LogLine(stream, time.time(), data))  # type: ignore[arg-type]
        async with box.changed:
            box.changed.notify_all()

    # ------------------------------------------------------------ containers

    async def create_container(self, spec: ContainerSpec) -> ContainerInfo:
        if any(b.info.name == spec.name for b in self.containers.values()):
            raise Conflict(
                f"container name {spec.name} is already in use: remove it or pick another name",
                subject=spec.name,
            )
        if not any(spec.image in (img.id, *img.tags) for img in self.images.values()):
            raise NotFound(
                f"no such image: {spec.image}: pull or build it first", subject=spec.image
            )
        await asyncio.sleep(self.create_delay)
        cid = hashlib.sha256(f"{spec.name}{time.time_ns()}".encode()).hexdigest()
        info = ContainerInfo(cid, spec.name, spec.image, spec, created_at=time.time())
        self.containers[cid] = _Box(info)
        self._emit("create", info)
        return info

    async def start_container(self, ref: str) -> ContainerInfo:
        box = self._box(ref)
        if box.info.state == "running":
            return box.info
        if box.info.state == "paused":
            raise Conflict(f"container {box.info.name} is paused: unpause it instead")
        health = "starting" if box.info.spec.healthcheck else ""
        info = await self._set(
            box,
            state="running",
            pid=next(_pids),
            exit_code=None,
            started_at=time.time(),
            health=health,
        )
        self._emit("start", info)
        if self.supervisor is not None:
            self.supervisor.watch(info)
        return info

    async def stop_container(self, ref: str, timeout: float | None = None) -> ContainerInfo:
        box = self._box(ref)
        if self.supervisor is not None:
            self.supervisor.user_stopped(box.info.id)
        if box.info.state in ("running", "paused"):
            code = STOPPED_CODE
            await self._set(box, state="exited", pid=0, exit_code=code, finished_at=time.time())
            self._emit("die", box.info, exitCode=str(code))
            self._emit("stop", box.info)
            if self.supervisor is not None:
                self.supervisor.on_exit(box.info.id, code)
        elif box.info.state == "restarting":
            await self._set(box, state="exited")
        return box.info

    async def kill_container(self, ref: str, signal: str = "SIGKILL") -> None:
        box = self._box(ref)
        if box.info.state != "running":
            raise Conflict(f"container {box.info.name} is not running", subject=box.info.name)
        if self.supervisor is not None:
            self.supervisor.user_stopped(box.info.id)
        await self.exit(box.info.id, 128 + signals.Signals[signal].value)

    async def wait_container(self, ref: str) -> int:
        box = self._box(ref)
        async with box.changed:
            await box.changed.wait_for(
                lambda: box.info.state not in ("running", "paused", "restarting")
            )
        return box.info.exit_code or 0

    async def remove_container(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        box = self._box(ref)
        if box.info.state in ("running", "paused", "restarting"):
            if not force:
                raise Conflict(
                    f"container {box.info.name} is running: stop it first or use force",
                    subject=box.info.name,
                )
            await self.stop_container(box.info.id)
        if self.supervisor is not None:
            self.supervisor.forget(box.info.id)
        del self.containers[box.info.id]
        self._emit("destroy", box.info)

    async def inspect_container(self, ref: str) -> ContainerInfo:
        info = self._box(ref).info
        if self.supervisor is not None:
            h = self.supervisor.health(info.id)
            if h is not None:
                info = replace(info, health=h.status)
        return info

    async def list_containers(
        self, all: bool = False, labels: dict[str, str] | None = None
    ) -> list[ContainerInfo]:
        return [
            b.info
            for b in self.containers.values()
            if (all or b.info.state in RUNNING_STATES) and _matches(b.info.labels, labels)
        ]

    async def pause_container(self, ref: str) -> None:
        box = self._box(ref)
        if box.info.state != "running":
            raise Conflict(f"container {box.info.name} is not running")
        await self._set(box, state="paused")

    async def unpause_container(self, ref: str) -> None:
        box = self._box(ref)
        if box.info.state != "paused":
            raise Conflict(f"container {box.info.name} is not paused")
        await self._set(box, state="running")

    async def logs(
        self, ref: str, follow: bool = False, tail: int | None = None,
        since: float | None = None, until: float | None = None,
    ) -> AsyncIterator[LogLine]:
        box = self._box(ref)
        start = 0 if tail is None else max(0, len(box.logs) - tail)
        sent = start
        for line in box.logs[start:]:
            if (since is None or line.time >= since) and (until is None or line.time <= until):
                yield line
        sent = len(box.logs)
        while follow:
            async with box.changed:
                await box.changed.wait_for(
                    lambda n=sent: (  # type: ignore[misc]
                        len(box.logs) > n
                        or box.info.state not in ("running", "paused", "restarting")
                    )
                )
            for line in box.logs[sent:]:
                yield line
            sent = len(box.logs)
            if box.info.state not in ("running", "paused", "restarting"):
                return

    async def stat_path(self, ref: str, path: str) -> PathStat:
        """A file put_archive wrote (files only: directories are not modelled)."""
        box = self._box(ref)
        if path not in box.files:
            raise NotFound(f"no such file in {box.info.name}: {path}", subject=path)
        return PathStat(posixpath.basename(path), len(box.files[path]), 0o100644, time.time())

    async def get_archive(self, ref: str, path: str,
                          follow_link: bool = False) -> tuple[PathStat, AsyncIterator[bytes]]:
        st = await self.stat_path(ref, path)
        data = self._box(ref).files[path]

        async def chunks() -> AsyncIterator[bytes]:
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as tar:
                ti = tarfile.TarInfo(st.name)
                ti.size = len(data)
                tar.addfile(ti, io.BytesIO(data))
            yield buf.getvalue()

        return st, chunks()

    async def put_archive(self, ref: str, path: str, data: AsyncIterable[bytes],
                          copy_uid_gid: bool = False,
                          no_overwrite_dir_non_dir: bool = True) -> None:
        box = self._box(ref)
        if box.info.state != "running":
            raise Conflict(f"container {box.info.name} is not running", subject=box.info.name)
        raw = b"".join([chunk async for chunk in data])
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r|") as tar:
            for m in tar:
                f = tar.extractfile(m) if m.isreg() else None
                box.files[posixpath.join(path, m.name)] = f.read() if f else b""

    async def remove_paths(self, ref: str, paths: list[str]) -> ArchiveResult:
        box = self._box(ref)
        gone = [p for p in paths if box.files.pop(p, None) is not None]
        return ArchiveResult(len(gone), tuple(f"{p}: no such file" for p in paths if p not in gone))

    async def restart_container(self, ref: str, timeout: float | None = None) -> ContainerInfo:
        box = self._box(ref)
        await self.stop_container(box.info.id, timeout)
        info = await self.start_container(box.info.id)
        self._emit("restart", info)
        return info

    async def attach_container(self, ref: str, logs: bool = False,
                               follow: bool = False) -> FakeAttach:
        box = self._box(ref)
        if box.info.state != "running" and not follow:
            raise Conflict(
                f"container {box.info.name} is not running: start it before attaching",
                subject=box.info.name,
            )
        stream = FakeAttach()
        if logs:
            for line in box.logs:
                stream.out.put_nowait((OUT if line.stream == "stdout" else ERR,
                                       line.data.encode()))
        self.attached.append(stream)
        return stream

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
        ready: Callable[[], Awaitable[None]] | None = None,
    ) -> AttachStream:
        """`cat` echoes its input until the end of stdin; anything else runs as exec_run
        and streams its result. `ready()` as the engine's: once the container is known."""
        box = self._box(ref)
        if ready is not None:
            if box.info.state != "running":
                raise Conflict(f"container {box.info.name} is not running: start it first",
                               subject=box.info.name)
            if self.exec_handler is None and argv and argv[0] not in FAKE_COMMANDS:
                # the fake's "command not found" is a check before the start (as the real
                # engine's unknown or stopped container), so it stays a proper status
                raise InvalidArgument(
                    f"exec failed: {argv[0]}: command not found in container {box.info.name}")
            self.exec_ready.append((box.info.id, list(argv)))  # before exec_calls
            await ready()
        if argv and argv[0] == "cat":
            self.exec_calls.append((ref, list(argv)))
            return FakeCat()
        res = await self.exec_run(ref, argv, user=user, env=env, workdir=workdir,
                                  privileged=privileged)
        stream = FakeAttach()
        if res.stdout:
            stream.out.put_nowait((OUT, res.stdout.encode()))
        if res.stderr:
            stream.out.put_nowait((ERR, res.stderr.encode()))
        stream.out.put_nowait((EXIT, exit_payload(res.exit_code)))
        stream.out.put_nowait(None)
        return stream

    async def exec_prepare(
        self,
        ref: str,
        argv: list[str],
        user: str | None = None,
        env: dict[str, str] | None = None,
        workdir: str | None = None,
        tty: bool = False,
        privileged: bool = False,
    ) -> ExecTarget:
        box = self._box(ref)
        if box.info.state != "running":
            raise Conflict(
                f"container {box.info.name} is not running: start it first", subject=box.info.name
            )
        cfg = {"argv": list(argv), "user": user or "", "cwd": workdir or "/", "tty": tty,
               "privileged": privileged, "env": [f"{k}={v}" for k, v in (env or {}).items()]}
        return ExecTarget(pid=box.info.pid or 1, start_time=0, config=cfg, monitor="/fake.sock")

    async def exec_run(
        self,
        ref: str,
        argv: list[str],
        user: str | None = None,
        env: dict[str, str] | None = None,
        workdir: str | None = None,
        privileged: bool = False,
    ) -> ExecResult:
        box = self._box(ref)
        if box.info.state != "running":
            raise Conflict(
                f"container {box.info.name} is not running: start it first", subject=box.info.name
            )
        self.exec_calls.append((box.info.id, list(argv)))
        if self.exec_handler is not None:
            res = self.exec_handler(box.info.id, list(argv))
            return await res if inspect.isawaitable(res) else res  # type: ignore[return-value]
        if argv[0] == "echo":
            return ExecResult(0, " ".join(argv[1:]) + "\n")
        if argv[0] == "env":
            return ExecResult(
                0,
                "".join(f"{k}={v}\n" for k, v in (env or {}).items())
                + f"USER={user}\nPWD={workdir}\n" + ("PRIVILEGED=1\n" if privileged else ""),
            )
        if argv[0] == "false":
            return ExecResult(1)
        if argv[0] == "sleep":
            await asyncio.sleep(float(argv[1]))
            return ExecResult(0)
        if argv[0] == "crash":
            raise RuntimeError("fake engine bug\nsecond line")
        raise InvalidArgument(
            f"exec failed: {argv[0]}: command not found in container {box.info.name}"
        )

    async def top(self, ref: str) -> list[dict[str, str]]:
        box = self._box(ref)
        return [{"PID": str(box.info.pid), "CMD": " ".join(box.info.spec.command or ())}]

    async def stats(self, ref: str) -> Stats:
        self._box(ref)
        return Stats(memory_usage=1024, memory_limit=2048, cpu_usage_ns=5, pids=1)

    # ------------------------------------------------------------ networks, volumes, images

    async def export_container(self, ref: str) -> AsyncIterator[bytes]:
        """A tar of what put_archive wrote (the image's files are not modelled)."""
        box = self._box(ref)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for path, data in sorted(box.files.items()):
                ti = tarfile.TarInfo(path.lstrip("/"))
                ti.size = len(data)
                tar.addfile(ti, io.BytesIO(data))
        yield buf.getvalue()

    async def commit_container(self, ref: str, req: CommitRequest) -> ImageInfo:
        """A new image named `req.tag` (the container's files are not modelled)."""
        box = self._box(ref)
        iid = "sha256:" + hashlib.sha256(f"{box.info.id}{time.time_ns()}".encode()).hexdigest()
        self.images[iid] = ImageInfo(iid, (req.tag,) if req.tag else (), 42, time.time())
        return self.images[iid]

    async def create_network(self, spec: NetworkSpec) -> NetworkInfo:
        if spec.name in self.networks:
            return self.networks[spec.name]  # `up` creates its networks every time
        info = NetworkInfo(spec.name, spec, bridge="cmpfake0", subnet=spec.subnet or "10.99.0.0/24")
        self.networks[spec.name] = info
        return info

    async def remove_network(self, name: str) -> None:
        if name not in self.networks:
            raise NotFound(f"no such network: {name}", subject=name)
        users = [b.info.name for b in self.containers.values()
                 if b.info.state in RUNNING_STATES
                 and any(a.network == name for a in b.info.spec.networks)]
        if users:
            raise Conflict(f"network {name} is in use by container(s) {', '.join(users)}",
                           subject=name)
        del self.networks[name]

    async def list_networks(self, labels: dict[str, str] | None = None) -> list[NetworkInfo]:
        return [n for n in self.networks.values() if _matches(n.spec.labels, labels)]

    async def create_volume(self, spec: VolumeSpec) -> VolumeInfo:
        if spec.name in self.volumes:
            return self.volumes[spec.name]
        info = VolumeInfo(
            spec.name, spec, mountpoint=f"/fake/volumes/{spec.name}", created_at=time.time()
        )
        self.volumes[spec.name] = info
        return info

    async def remove_volume(self, name: str, force: bool = False) -> None:
        if name not in self.volumes:
            if force:
                return
            raise NotFound(f"no such volume: {name}", subject=name)
        users = [b.info.name for b in self.containers.values()
                 if any(m.type == "volume" and m.source == name for m in b.info.spec.mounts)]
        if users:  # even with force, as Docker
            raise Conflict(f"volume {name} is in use by container(s) {', '.join(users)}",
                           subject=name)
        del self.volumes[name]

    async def list_volumes(self, labels: dict[str, str] | None = None) -> list[VolumeInfo]:
        return [v for v in self.volumes.values() if _matches(v.spec.labels, labels)]

    async def list_images(self) -> list[ImageInfo]:
        return list(self.images.values())

    async def inspect_image(self, ref: str) -> ImageInfo:
        for img in self.images.values():
            if ref == img.id or ref in img.tags:
                return img
        raise NotFound(f"no such image: {ref}", subject=ref)

    async def remove_image(self, ref: str, force: bool = False) -> list[str]:
        img = await self.inspect_image(ref)
        users = [
            b.info.name for b in self.containers.values() if b.info.image in (img.id, *img.tags)
        ]
        if users and not force:
            raise Conflict(
                f"image {ref} is used by container {users[0]}: remove it first or use force",
                subject=ref,
            )
        del self.images[img.id]
        return [*img.tags, img.id]

    async def import_image(self, path: str, tag: str) -> ImageInfo:
        iid = "sha256:" + hashlib.sha256(path.encode()).hexdigest()
        self.images[iid] = ImageInfo(iid, (tag,), 42, time.time())
        return self.images[iid]

    async def load_image(self, path: str) -> list[ImageInfo]:
        return [await self.import_image(path, "loaded:1")]

    async def build_image(self, req: BuildRequest) -> AsyncIterator[BuildProgress]:
        yield BuildProgress(line=f"step 1/2 : FROM busybox (context {req.context})")
        await asyncio.sleep(0)
        yield BuildProgress(line=f"step 2/2 : RUN echo {req.build_args.get('X', '')}")
        if req.target == "broken":
            yield BuildProgress(error="build failed: target broken does not exist")
            return
        img = await self.import_image(req.context + req.dockerfile, req.tag or "<none>")
        yield BuildProgress(image_id=img.id)

    async def pull_image(self, ref: str) -> AsyncIterator[PullEvent]:
        if ref.startswith("missing"):
            raise NotFound(f"no such image in the registry: {ref}", subject=ref)
        yield PullEvent("downloading", layer="abc123", current=10, total=20)
        yield PullEvent("downloading", layer="abc123", current=20, total=20)
        img = await self.import_image("registry:" + ref, ref)
        yield PullEvent("pulled", image_id=img.id)

    def events(self, since: float | None = None,
               until: float | None = None) -> AsyncIterator[Event]:
        if since is None and until is None:
            return self.bus.subscribe()
        return events_between(self.bus, since, until)
