"""A watch session: file changes under develop.watch paths, acted out on the running stack.

Changes are collected and debounced: a batch is handled once no new change came for
`QUIET` seconds (an editor's save is a burst of events within a few ms), or `LONGEST`
after its first change when changes keep coming. Compose waits for 500 ms of quiet; we
wait 20 ms, so that an edit reaches the container in well under 100 ms (bench/watch.py).
A batch is handled as Compose's handleWatchBatch: `rebuild` first (build, then the service
is recreated), then the syncs, then `restart`s, then each `sync+exec` command once per
container. A sync deletes in the container what is gone on the host, then copies what is
there (files, symlinks, directories with what they hold) as one tar stream per container
through the engine's `put_archive` (the one `composer cp` uses: runtime.containerfs), which
writes inside the container's root and mounts.
An error is reported and watching goes on, as in Compose.
"""
from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import stat
import tarfile
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from composer.errors import ComposerError
from composer.hooks import exec_hooks
from composer.operations import Project, UpOptions
from composer.watch.inotify import TreeWatcher
from composer.watch.rules import Match, Rule, bind_mounted
from runtime.errors import EngineError

QUIET = 0.020  # seconds without a new change before a batch is handled
LONGEST = 0.250  # at most this long after the first change of a batch
SPOOL = 16 << 20  # a sync's tar is built in memory up to this size, then in a temp file
CHUNK = 1 << 16
BIG = 64 << 20  # files up to this size are read whole before their header is written

Log = Callable[[str], None]


class WatchError(ComposerError):
    """The stack can't be watched as configured (one line naming service and rule)."""


@dataclass
class Batch:
    rebuild: set[str] = field(default_factory=set)
    restart: set[str] = field(default_factory=set)
    syncs: dict[str, dict[str, Match]] = field(default_factory=dict)  # service -> target -> match
    execs: dict[str, list[Rule]] = field(default_factory=dict)


def rules_of(project: Project, services: Sequence[str], warn: Log) -> list[Rule]:
    """The develop.watch rules of `services` (all when empty), checked as Compose checks them
    when watching starts; a sync rule whose path a bind mount already shares is skipped."""
    names = list(services) or sorted(project.stack.services)
    project.check_services(names)
    rules: list[Rule] = []
    for name in names:
        svc = project.stack.services[name]
        if svc.develop is None:
            continue
        for i, spec in enumerate(svc.develop.watch):
            if spec.action == "rebuild" and svc.build is None:
                raise WatchError(f"can't watch service {name!r} with action rebuild without a "
                                 "build context (add build:, or use sync or restart)")
            if spec.action.startswith("sync") and bind_mounted(spec.path, svc):
                warn(f"path '{spec.path}' also declared by a bind mount volume, this path won't "
                     "be monitored!")
                continue
            rules.append(Rule(svc, i, spec))
    if not rules:
        raise WatchError("none of the selected services is configured for watch, consider "
                         "setting a 'develop' section")
    return rules


class WatchSession:
    def __init__(self, project: Project, rules: list[Rule], log: Log, err: Log, *,
                 prune: bool = True,
                 lock: Callable[[], contextlib.AbstractAsyncContextManager[None]] | None = None) -> None:
        self.project = project
        # the project lock around each batch (`watch`); None when the caller holds it (`up --watch`)
        self.lock = lock or contextlib.nullcontext
        self.rules = rules
        self.log = log
        self.err = err
        self.prune = prune
        self.handled = 0  # batches handled (for tests and the bench)
        self.synced: asyncio.Event = asyncio.Event()  # set after each handled batch
        self._pending: set[str] = set()
        self._first = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._ready = asyncio.Event()

    # -- the loop --------------------------------------------------------------------------
    async def run(self) -> None:
        """Watch until cancelled; the inotify descriptor is closed whatever happens."""
        await self.initial_sync()
        loop = asyncio.get_running_loop()
        watcher = TreeWatcher({r.path for r in self.rules}, self._changed, self._skip_dir)
        watcher.start(loop)
        self.log("Watch enabled")
        try:
            while True:
                await self._ready.wait()
                self._ready.clear()
                batch, self._pending = self._pending, set()
                try:
                    async with self.lock():
                        await self.handle(sorted(batch))
                except (ComposerError, EngineError) as e:
                    self.err(f"error: {e}")
                self.handled += 1
                self.synced.set()
        finally:
            watcher.close()
            if self._timer is not None:
                self._timer.cancel()
            self.log("Watch disabled")

    def _changed(self, path: str) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if not self._pending:
            self._first = now
        self._pending.add(path)
        if self._timer is not None:
            self._timer.cancel()
        delay = max(0.0, min(QUIET, self._first + LONGEST - now))
        self._timer = loop.call_later(delay, self._ready.set)

    def _skip_dir(self, path: str) -> bool:
        covering = [r for r in self.rules if r.covers(path)]
        return bool(covering) and all(r.skips_tree(path) for r in covering)

    # -- one batch -------------------------------------------------------------------------
    def plan(self, paths: Sequence[str]) -> Batch:
        batch = Batch()
        for path in paths:
            for rule in self.rules:
                m = rule.match(path)
                if m is None:
                    continue
                action, service = rule.spec.action, rule.service
                if action == "rebuild":
                    batch.rebuild.add(service)
                    continue
                if action == "restart":
                    batch.restart.add(service)
                    continue
                if m.container is not None:
                    batch.syncs.setdefault(service, {})[m.container] = m
                if action == "sync+restart":
                    batch.restart.add(service)
                elif action == "sync+exec" and rule not in batch.execs.setdefault(service, []):
                    batch.execs[service].append(rule)
        return batch

    async def handle(self, paths: Sequence[str]) -> None:
        batch = self.plan(paths)
        if batch.rebuild:
            await self.rebuild(sorted(batch.rebuild))
        for service, matches in sorted(batch.syncs.items()):
            self.log(f'Syncing service "{service}" after {len(matches)} changes were detected')
            await self.sync(service, list(matches.values()))
        if batch.restart:
            names = sorted(batch.restart)
            await self.project.restart(names)
            self.log(f"service(s) {json.dumps(names)} restarted")
        for service, rules in sorted(batch.execs.items()):
            for rule in rules:
                await self.run_exec(service, rule)

    async def initial_sync(self) -> None:
        """`initial_sync: true` on a sync rule: everything under its path the rule accepts is
        copied before watching starts (Compose does it for sync and sync+restart; the spec
        says sync+ actions, so sync+exec too — without running the command)."""
        for rule in self.rules:
            if not rule.spec.initial_sync or not rule.spec.action.startswith("sync"):
                continue
            matches = [m for p in await asyncio.to_thread(_walk, rule.path, rule.accepts)
                       if (m := rule.match(p)) is not None and m.container is not None]
            if matches:
                await self.sync(rule.service, matches)

    async def sync(self, service: str, matches: list[Match]) -> None:
        containers = await self.project.containers([service], all=False)
        if not containers:
            return
        copies, deletes = await asyncio.to_thread(_expand, matches)
        for c in containers:
            try:
                if deletes:
                    res = await self.project.engine.remove_paths(c.id, deletes)
                    for line in res.errors:
                        self.err(f"error: sync to {c.name}: {line}")
                if copies:
                    spool = await asyncio.to_thread(_tar, copies)
                    try:
                        # the host is the truth: a directory there replaces a file here and
                        # the reverse; owners as on the host
                        await self.project.engine.put_archive(
                            c.id, "/", _chunks(spool), copy_uid_gid=True,
                            no_overwrite_dir_non_dir=False)
                    finally:
                        spool.close()
            except EngineError as e:
                self.err(f"error: sync to {c.name}: {e}")

    async def run_exec(self, service: str, rule: Rule) -> None:
        hook = rule.spec.exec
        assert hook is not None
        for c in await self.project.containers([service], all=False):
            try:
                await exec_hooks(self.project.engine, c, service, "develop.watch exec", [hook],
                                 lambda source, line: self.log(line))
            except ComposerError as e:
                self.err(f"error: {e}")

    async def rebuild(self, services: list[str]) -> None:
        """As Compose: build, then recreate those services only (not their dependencies); the
        previous image is removed when nothing uses or names it any more (--prune)."""
        names = json.dumps(services)
        self.log(f"Rebuilding service(s) {names} after changes were detected...")
        old = {s: await self.project.image_id(s) for s in services}
        try:
            await self.project.build(services)
        except ComposerError as e:
            self.log(f"Build failed. Error: {e}")
            return
        self.log(f"service(s) {names} successfully built")
        try:
            await self.project.up(UpOptions(services=services, no_deps=True, force_recreate=True,
                                            no_build=True))
        except ComposerError as e:
            self.log(f"Failed to recreate services after update. Error: {e}")
            return
        if self.prune:
            for service, image_id in old.items():
                if image_id and image_id != await self.project.image_id(service):
                    await self._prune(image_id)

    async def _prune(self, image_id: str) -> None:
        try:
            if not (await self.project.engine.inspect_image(image_id)).tags:
                await self.project.engine.remove_image(image_id)
        except EngineError:
            pass  # still used by a container, or gone already


def _walk(top: str, accepts: Callable[[str], bool]) -> list[str]:
    """Every path under `top` (or `top` when it is a file) that `accepts` takes, not descending
    into rejected directories."""
    if not os.path.isdir(top) or os.path.islink(top):
        return [top] if os.path.lexists(top) and accepts(top) else []
    out = []
    for dirpath, dirnames, filenames in os.walk(top):
        kept = []
        for name in sorted(dirnames):
            path = os.path.join(dirpath, name)
            if accepts(path):
                out.append(path)
                kept.append(name)
        dirnames[:] = kept
        out += [p for name in sorted(filenames) if accepts(p := os.path.join(dirpath, name))]
    return out


def _expand(matches: list[Match]) -> tuple[list[tuple[str, str]], list[str]]:
    """(host path, container path) to copy — a directory with what its rule accepts below
    it — and container paths to delete (gone on the host)."""
    copies: dict[str, str] = {}
    deletes: list[str] = []
    for m in matches:
        assert m.container is not None
        if not os.path.lexists(m.host):
            deletes.append(m.container)
            continue
        copies[m.container] = m.host
        if os.path.isdir(m.host) and not os.path.islink(m.host):
            for path in _walk(m.host, m.rule.accepts):
                if path != m.host:
                    target = m.rule.match(path)
                    if target is not None and target.container is not None:
                        copies[target.container] = path
    return sorted(((h, c) for c, h in copies.items()), key=lambda x: x[1]), sorted(deletes)


def _tar(copies: list[tuple[str, str]]) -> tempfile.SpooledTemporaryFile[bytes]:
    """A tar of `copies` (parents before children), owners and modes as on the host (Compose
    copies with the host's uid/gid). A file that vanished meanwhile is left out."""
    spool: tempfile.SpooledTemporaryFile[bytes] = tempfile.SpooledTemporaryFile(SPOOL)
    with tarfile.open(fileobj=spool, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for host, container in copies:
            try:
                st = os.lstat(host)
                ti = tarfile.TarInfo(container.lstrip("/"))
                ti.mode, ti.uid, ti.gid, ti.mtime = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime
                if stat.S_ISDIR(st.st_mode):
                    ti.type = tarfile.DIRTYPE
                    tar.addfile(ti)
                elif stat.S_ISLNK(st.st_mode):
                    ti.type, ti.linkname = tarfile.SYMTYPE, os.readlink(host)
                    tar.addfile(ti)
                elif stat.S_ISREG(st.st_mode):
                    with open(host, "rb") as f:
                        if st.st_size <= BIG:
                            data = f.read()  # the header's size is what was read: no race
                            ti.size = len(data)
                            tar.addfile(ti, io.BytesIO(data))
                        else:
                            ti.size = st.st_size
                            tar.addfile(ti, f)
            except FileNotFoundError:
                continue
    spool.seek(0)
    return spool


async def _chunks(spool: tempfile.SpooledTemporaryFile[bytes]) -> AsyncIterator[bytes]:
    while chunk := spool.read(CHUNK):
        yield chunk

