"""The engine's file verbs on one container: stat, get/put archive (`cp`, `watch`'s syncs),
remove paths (`watch`), export, commit.

Each runs its file work on a fresh thread (runtime.threadpipe) against the container's root
(runtime.containerfs): `/proc/<pid>/root` while it runs, else its overlay mounted in that
thread's private mount namespace — under the container's lock, so it is not started
meanwhile. A stopped container with its own user namespace is refused (its image layers are
only seen with the right owners through the idmapped mounts its start makes).
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from runtime import containerfs as cfs
from runtime import deferredpkg
from runtime.api import ArchiveResult, CommitRequest, Event, ImageInfo, PathStat
from runtime.containers import ContainerRecord
from runtime.errors import Conflict, InvalidArgument
from runtime.launchcfg import mount_points, user_namespace
from runtime.process.config import MountPoint
from runtime.process.userns import IdMap
from runtime.threadpipe import Produced, consume, produce, run_thread

if TYPE_CHECKING:
    from runtime.engine import Engine

T = TypeVar("T")
RUNNING = ("running", "paused")


def _resolve(fut: asyncio.Future[T], value: T) -> None:
    if not fut.done():
        fut.set_result(value)


def _maps(rec: ContainerRecord) -> tuple[tuple[IdMap, ...], tuple[IdMap, ...]]:
    _, uid_map, gid_map = user_namespace(rec.spec, ())
    return uid_map, gid_map


def _running(engine: Engine, rec: ContainerRecord) -> bool:
    return rec.run.state in RUNNING and engine._launched_of(rec.id) is not None


async def _on_root(engine: Engine, rec: ContainerRecord, work: Callable[[cfs.Root], T], *,
                   mounts: bool = True) -> Callable[[], T]:
    """A function that runs `work` on the container's root (call it on a fresh thread)."""
    launched = engine._launched_of(rec.id) if rec.run.state in RUNNING else None
    if launched is not None:
        uid_map, gid_map = _maps(rec)

        def on_running() -> T:
            root = cfs.running_root(launched.pid, launched.start_time, rec.name, uid_map, gid_map)
            try:
                return work(root)
            finally:
                os.close(root.fd)
        return on_running
    if rec.spec.userns_mode not in (None, "", "host"):
        raise Conflict(f"container {rec.name} has its own user namespace: start it to copy "
                       "files in or out", subject=rec.name)
    binds: tuple[MountPoint, ...] = ()
    if mounts:
        points = await asyncio.to_thread(
            mount_points, rec.spec, rec.resolved.extra_mounts, engine._volume_path(rec))
        binds = tuple(m for m in points if m.type == "bind")

    def on_stopped() -> T:
        return cfs.stopped_root(str(rec.dir), rec.resolved.lowerdirs, binds,
                                read_only=rec.spec.read_only, name=rec.name, work=work)
    return on_stopped


@contextlib.asynccontextmanager
async def _steady(engine: Engine, rec: ContainerRecord) -> AsyncIterator[None]:
    """A stopped container stays stopped while its overlay is mounted for us; a running one
    needs no lock (its root is its own)."""
    if _running(engine, rec):
        yield
        return
    async with engine._live_of(rec).lock:
        yield


async def stat_path(engine: Engine, ref: str, path: str) -> PathStat:
    rec = engine.table.get(ref)
    async with _steady(engine, rec):
        fn = await _on_root(engine, rec, lambda root: root.stat(path))
        return await run_thread(fn)


class _Archive(AsyncIterator[bytes]):
    """Chunks of a tar made on a thread; closing it ends the thread (and releases the lock
    that keeps a stopped container from starting meanwhile)."""

    def __init__(self, produced: Produced, release: Callable[[], None]) -> None:
        self.produced = produced
        self.release = release

    def __aiter__(self) -> _Archive:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self.produced.__anext__()
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        await self.produced.aclose()
        self.release()


async def _archive(engine: Engine, rec: ContainerRecord, path: str, *, follow_link: bool,
                   cross_mounts: bool, bare: bool) -> tuple[PathStat, _Archive]:
    """The stat of `path` and a stream of its tar, made on a thread."""
    loop = asyncio.get_running_loop()
    stat_ready: asyncio.Future[PathStat] = loop.create_future()
    lock: asyncio.Lock | None = None
    if not _running(engine, rec):
        lock = engine._live_of(rec).lock
        await lock.acquire()

    def release() -> None:
        if lock is not None and lock.locked():
            lock.release()

    try:
        out_box: list[BinaryIO] = []

        def work(root: cfs.Root) -> PathStat:
            # the stat first: a missing path is an error status, not a broken stream
            st = root.stat(path, follow=follow_link)
            loop.call_soon_threadsafe(_resolve, stat_ready, st)
            return cfs.write_tar(root, path, out_box[0], follow_link=follow_link,
                                 cross_mounts=cross_mounts, bare=bare)

        on_root = await _on_root(engine, rec, work, mounts=cross_mounts)

        def write(out: BinaryIO) -> PathStat:
            out_box.append(out)
            return on_root()

        produced = produce(write, name=f"archive-{rec.id[:12]}")
        first: set[asyncio.Future[Any]] = {stat_ready, produced.done}
        await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
        if not stat_ready.done():
            await produced.aclose()
            produced.done.result()  # raises the thread's error
            raise InvalidArgument(f"nothing to copy at {rec.name}:{path}")  # pragma: no cover
        return stat_ready.result(), _Archive(produced, release)
    except BaseException:
        release()
        raise


async def get_archive(engine: Engine, ref: str, path: str, follow_link: bool = False
                      ) -> tuple[PathStat, AsyncIterator[bytes]]:
    rec = engine.table.get(ref)
    return await _archive(engine, rec, path, follow_link=follow_link, cross_mounts=True,
                          bare=False)


async def export_container(engine: Engine, ref: str) -> AsyncIterator[bytes]:
    """The container's filesystem as a tar (Docker's export): its image and its changes,
    not what is mounted over them (volumes, binds, tmpfs, /proc...)."""
    rec = engine.table.get(ref)
    _, chunks = await _archive(engine, rec, "/", follow_link=False, cross_mounts=False,
                               bare=True)
    try:
        async for chunk in chunks:
            yield chunk
    finally:
        await chunks.aclose()


async def put_archive(engine: Engine, ref: str, path: str, data: AsyncIterable[bytes],
                      copy_uid_gid: bool = False, no_overwrite_dir_non_dir: bool = True) -> None:
    """Extract the tar `data` into the directory `path` of the container (which must exist):
    owners as the tar says with `copy_uid_gid`, else the container's root."""
    rec = engine.table.get(ref)
    async with _steady(engine, rec):
        box: list[BinaryIO] = []

        def work(root: cfs.Root) -> None:
            cfs.extract_tar(root, path, box[0], cfs.owner_in(root, keep=copy_uid_gid),
                            no_overwrite_dir_non_dir=no_overwrite_dir_non_dir)

        on_root = await _on_root(engine, rec, work)

        def read(src: BinaryIO) -> None:
            box.append(src)
            on_root()

        await consume(data, read, name=f"extract-{rec.id[:12]}")


async def remove_paths(engine: Engine, ref: str, paths: list[str]) -> ArchiveResult:
    """Remove each path (directories with what they hold) in the container, resolved inside
    its root (`composer watch` deletes what is gone on the host); a missing path is no
    error, one that fails is reported and the others are still removed."""
    rec = engine.table.get(ref)
    async with _steady(engine, rec):
        fn = await _on_root(engine, rec, lambda root: cfs.remove_paths(root, paths))
        removed, errors = await run_thread(fn)
    return ArchiveResult(removed, tuple(errors))


async def commit_container(engine: Engine, ref: str, req: CommitRequest) -> ImageInfo:
    """A new image: the container's image plus its writable layer (see runtime.commit)."""
    # imported on the first commit, off the loop: it brings the Dockerfile parser
    # (docs/daemon.md "Memory")
    await deferredpkg.preload("runtime.commit")
    from runtime.commit import commit_config, runtime_made

    rec = engine.table.get(ref)
    if not req.pause:
        raise InvalidArgument("commit without pausing is not supported: the writable layer "
                              "of a running container must not change while it is read "
                              "(leave --pause at its default)")
    if req.tag:
        from runtime.rpc import image_ref
        image_ref(req.tag)
    base = engine.images.get(rec.resolved.image_id)
    cfg = commit_config(base.config, rec.spec, rec.resolved.env, rec.resolved.hostname, req)
    upper = rec.dir / "rootfs" / "upper"
    async with engine._live_of(rec).lock:
        frozen = False
        if rec.run.state == "running" and engine._launched_of(rec.id) is not None:
            cg = engine.cgroups.open(rec.id)
            await asyncio.to_thread(cg.freeze)
            frozen = True
        try:
            if upper.is_dir():
                layer = await asyncio.to_thread(
                    engine.images.layers.add_dir, upper,
                    lambda rel, st, p: runtime_made(rel, st, p) and _not_in_image(rec, rel))
                layers = [*base.layers, layer.diff_id]
            else:  # never started: nothing changed
                layers = list(base.layers)
        finally:
            if frozen:
                await asyncio.to_thread(engine.cgroups.open(rec.id).thaw)
    img = await asyncio.to_thread(engine.images.put, cfg, layers, [req.tag] if req.tag else [])
    engine.bus.publish(Event(time.time(), "image", "commit", img.id, req.tag or img.id))
    return img.info()


def _not_in_image(rec: ContainerRecord, rel: str) -> bool:
    """True when no layer of the image has `rel` (so the runtime made it)."""
    return not any(os.path.lexists(os.path.join(d, rel)) for d in rec.resolved.lowerdirs)
