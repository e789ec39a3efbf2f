"""The engine: containers, networks, volumes and images on this host (the Engine API).

It joins the stores and drivers; each step of a container's life is one method here:

    create   image config + spec -> record (state dir, anonymous volumes); nothing runs
    start    rootfs dirs, mounts, LaunchConfig -> launcher; while the init waits in its fresh
             namespaces `prepare(pid)` puts it in its cgroup and wires its network; then the
             published ports; a task waits for the exit
    exit     cgroup OOM check, network released, state recorded, restart policy asked
    stop     stop signal, grace period, then SIGKILL to every process of the cgroup
    remove   cgroup, network, rootfs dirs, state dir (and anonymous volumes with volumes=True)

A failed start rolls back what it made (AsyncExitStack), so nothing is left half-made.
What the engine holds in memory per container (process, exit future, waiter, followers,
lock) is one `runtime.live.Live`, and every lifecycle method goes through its lock (the
table in runtime/live.py; docs/architecture.md, "The engine").
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from runtime import deferredpkg, engine_files, hostdevices, injected, resolve, serde
from runtime.api import (
    ArchiveResult,
    BuildProgress,
    BuildRequest,
    CommitRequest,
    ContainerInfo,
    Event,
    ExecResult,
    ExecTarget,
    Health,
    ImageInfo,
    LogLine,
    NetworkInfo,
    PathStat,
    PullEvent,
    Stats,
    VolumeInfo,
)
from runtime.attach import AttachClient
from runtime.cgroups import Cgroup, CgroupManager, CgroupNotFound, open_manager
from runtime.cgroups.base import DEFAULT_ROOT
from runtime.containers import ContainerRecord, ContainerTable, Resolved, RunState, now
from runtime.devrules import DeviceRule
from runtime.errors import Conflict, EngineError, InvalidArgument, LaunchError, NotFound
from runtime.events import EventBus, container_attributes, events_between
from runtime.exec_session import ExecSession
from runtime.follow import Follower
from runtime.images import importer
from runtime.images.build_leftovers import remove_interrupted_steps, remove_stale_steps
from runtime.images.store import ImageStore
from runtime.launchcfg import (
    apparmor_profile,
    container_security,
    launch_config,
    mount_points,
    read_seccomp_profile,
    shared_namespaces,
    user_namespace,
    volume_subpath,
)
from runtime.live import Live
from runtime.network.files import hosts_file
from runtime.network.manager import NetworkManager
from runtime.network.names import container_ifnames
from runtime.paths import Paths, safe_name
from runtime.process import apparmor
from runtime.process.config import (
    DEFAULT_NAMESPACES,
    DEFAULT_SHM_SIZE,
    DeviceNode,
    ExecConfig,
    LaunchConfig,
    MountPoint,
    Security,
    effective_caps,
)
from runtime.process.launcher import ExecProcess, ExitStatus, Launched, Launcher
from runtime.process.logread import read_log
from runtime.storage import quota, rootfs, shm
from runtime.storage.rootfs import RootfsLayout
from runtime.storage.volumes import VolumeStore
from runtime.supervisor import Supervisor, check_spec
from runtime.tasks import cancel_and_wait, settle
from runtime.types import ContainerSpec, Mount, NetworkSpec, PortBinding, VolumeSpec

log = logging.getLogger(__name__)
SIGNAL_READY_WAIT = 2.0  # at most this long a stop waits for pid 1 to catch its signal


def signal_deliverable(pid: int, sig: int) -> bool:
    """Whether `sig` sent to `pid` now reaches it: it catches or blocks it (a pid-namespace
    init ignores any other signal but SIGKILL/SIGSTOP), or it is gone / unreadable (send)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            masks = {k: int(v, 16) for k, _, v in (line.partition(":\t") for line in f)
                     if k in ("SigBlk", "SigCgt")}
    except (OSError, ValueError):
        return True
    bit = 1 << (sig - 1)
    if sig in (signal.SIGKILL, signal.SIGSTOP) or any(m & bit for m in masks.values()):
        return True
    # tini waits in sigtimedwait(2) with every signal blocked; while it waits, the kernel
    # shows the waited-for signals as neither blocked nor caught (it keeps the real mask
    # aside, where /proc does not show it), yet a signal sent now is the one it takes
    return _in_sigwait(pid)


def _in_sigwait(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/wchan") as f:
            return "sigtimedwait" in f.read()
    except OSError:
        return False


async def _until_signal_deliverable(pid: int, sig: int, limit: float) -> None:
    deadline = time.monotonic() + limit
    while not signal_deliverable(pid, sig) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


async def _wait_exit_for(exited: asyncio.Future[int] | None, timeout: float) -> bool:
    """Whether the run whose exit future this is ended within `timeout` seconds."""
    if exited is None:
        return True
    try:
        await asyncio.wait_for(asyncio.shield(exited), timeout)
        return True
    except TimeoutError:
        return False


Q = TypeVar("Q")  # what a streamed operation yields (_drain)
_apparmor_warned = False  # "apparmor not enabled" is said once per process

RUNNING_STATES = ("running", "paused", "restarting")
REMOVE_ATTEMPTS = 5  # kill-and-wait rounds against concurrent starts before remove gives up


def _signum(name: str | int) -> int:
    if isinstance(name, int) or name.isdigit():
        return int(name)
    n = name.upper()
    if not n.startswith("SIG"):
        n = "SIG" + n
    try:
        return int(signal.Signals[n])
    except KeyError:
        raise InvalidArgument(f"unknown signal {name!r}: use a name like SIGTERM or a number") from None


class Engine:
    def __init__(
        self,
        paths: Paths,
        *,
        cgroup_root: str | Path = DEFAULT_ROOT,
        cgroup_parent: str | None = None,
        network: NetworkManager | None = None,
        launcher: Launcher | None = None,
        cgroups: CgroupManager | None = None,
        images: ImageStore | None = None,
        volumes: VolumeStore | None = None,
    ) -> None:
        """The real stores, drivers and launcher by default; tests pass their own (unit
        tests drive the lifecycle with fakes, without root)."""
        self.paths = paths
        for d in (paths.root, paths.containers):
            d.mkdir(parents=True, exist_ok=True)
        if not paths.run.is_dir():  # composerd made it already: 0700, or 0710 root:composer
            paths.run.mkdir(mode=0o700, parents=True)  # for the access group (runtime.access)
            os.chmod(paths.run, 0o700)
        self.table = ContainerTable(paths.containers)
        self.images = images or ImageStore(paths)
        self.volumes = volumes or VolumeStore(paths.volumes)
        self.networks = network or NetworkManager(paths)
        parent = cgroup_parent or os.environ.get("COMPOSER_CGROUP_PARENT", "composer")
        self.cgroups = cgroups or open_manager(cgroup_root, parent)
        self.launcher = launcher or Launcher(str(paths.run / "monitor.sock"))
        self.bus = EventBus()
        self.supervisor = Supervisor(self, self.bus, on_health=self._on_health)
        self._live: dict[str, Live] = {}  # per container (runtime.live): run, exit, lock
        self._detached: set[asyncio.Task[None]] = set()  # `exec -d` commands still running
        self.apparmor_on = False  # the kernel has AppArmor: containers get a profile
        self._apparmor_load: asyncio.Task[None] | None = None  # composer-default, loading

    # -- lifecycle ----------------------------------------------------------------------
    @classmethod
    async def open(cls, paths: Paths | None = None, **kw: object) -> Engine:
        engine = cls(paths or Paths.from_env(), **kw)  # type: ignore[arg-type]

        async def delegate(pid: int) -> None:
            # under systemd (v2) the monitor, which launches and holds every container, goes
            # into the delegated scope before anything is launched: see docs/cgroups.md
            await asyncio.to_thread(engine.cgroups.delegate, [pid])

        engine.launcher.on_session = delegate
        try:
            await engine.launcher.start_server()
            await engine._init_apparmor()
            await engine.networks.start()
            # RUN steps an engine killed mid-build left running: no build runs yet
            await asyncio.to_thread(remove_stale_steps, engine.cgroups, engine.launcher)
            await asyncio.to_thread(remove_interrupted_steps, engine.paths.root)
            await engine._adopt_all()
        except BaseException:
            await engine.close()
            raise
        return engine

    async def close(self) -> None:
        """Stop serving. Running containers keep running (the monitor supervises them)."""
        waits = [self._apparmor_load] if self._apparmor_load is not None else []
        for task in list(self._detached):  # `exec -d` reapers: their connections close
            task.cancel()
            waits.append(task)
        for live in self._live.values():
            for f in live.followers:  # their streams end with the daemon
                f.end()
            if live.waiter is not None:
                live.waiter.cancel()
                waits.append(live.waiter)
        for aw in waits:  # every step runs, also while our own task is being cancelled
            with contextlib.suppress(asyncio.CancelledError):
                await settle(aw)
        for close in (self.supervisor.close, self.networks.close, self.launcher.close):
            with contextlib.suppress(asyncio.CancelledError):
                await close()
        self.bus.close()
        me = asyncio.current_task()
        if me is not None and me.cancelling():
            raise asyncio.CancelledError  # the cancellation goes on once everything is closed

    async def _init_apparmor(self) -> None:
        """Load composer-default where the kernel has AppArmor (in the background: compiling
        it takes apparmor_parser a second or more, and the daemon answers meanwhile; a start
        waits for it); say once where the kernel has no AppArmor."""
        global _apparmor_warned
        self.apparmor_on = await asyncio.to_thread(apparmor.enabled)
        if not self.apparmor_on:
            if not _apparmor_warned:
                log.warning("%s", apparmor.NOT_ENABLED)
                _apparmor_warned = True
            return

        async def load() -> None:
            try:
                await asyncio.to_thread(apparmor.ensure_default, self.paths.root / "apparmor")
            except apparmor.AppArmorError as e:  # starts retry, and fail with this message
                log.error("%s", e)

        self._apparmor_load = asyncio.create_task(load())

    async def _ensure_apparmor(self, rec: ContainerRecord, sec: Security) -> None:
        """The profile a container's process will exec under is loaded (Docker reloads its
        default too: package upgrades and `aa-teardown` unload profiles)."""
        if self._apparmor_load is not None:
            await asyncio.shield(self._apparmor_load)
        if sec.apparmor == apparmor.DEFAULT_PROFILE:
            await asyncio.to_thread(apparmor.ensure_default, self.paths.root / "apparmor")
        elif sec.apparmor and not await asyncio.to_thread(apparmor.is_loaded, sec.apparmor):
            raise InvalidArgument(
                f"container {rec.name}: AppArmor profile {sec.apparmor!r} is not loaded: load it "
                "with apparmor_parser -r, or change security_opt apparmor=", subject=rec.name)

    @staticmethod
    def _exec_security(sec: Security, privileged: bool) -> Security:
        """An exec's confinement: the container's (as its init's), with every capability
        for `exec --privileged`."""
        return replace(sec, capabilities=effective_caps((), (), True)) if privileged else sec

    async def _security(self, rec: ContainerRecord) -> Security:
        """The one confinement of every process of `rec`: its init, execs and health checks."""
        sec = container_security(rec, self.apparmor_on)
        await self._ensure_apparmor(rec, sec)
        return sec

    async def _adopt_all(self) -> None:
        records = self.table.load_all()
        for d in self.table.leftover_dirs():  # half created or half removed by a dead engine
            log.info("removing %s: a container directory without a record", d)
            await asyncio.to_thread(quota.release, d, d / rootfs.ROOTFS)
            await asyncio.to_thread(rootfs.cleanup, d)
            await asyncio.to_thread(shutil.rmtree, d, True)
        for rec in records:
            live = self._live[rec.id] = Live()
            if rec.run.state not in RUNNING_STATES:
                if rec.run.state == "created" and (rec.dir / "process.json").exists() or \
                        self._cgroup_exists(rec.id):
                    # a start the dead engine never recorded: end what it left running
                    await self._release(rec)
                continue
            launched = None
            with contextlib.suppress(NotFound):
                launched = self.launcher.adopt(str(rec.dir))
            if launched is not None:
                async with live.lock:
                    self._track(rec, live, launched)
                self.supervisor.watch(self._supervised_info(rec))
            else:  # it ended while no engine was watching
                status = self.launcher.exit_status(str(rec.dir)) or ExitStatus(255, None, now())
                await self._finish(rec, live, status, restart=False)

    def _cgroup_exists(self, cid: str) -> bool:
        try:
            self.cgroups.open(cid)
            return True
        except CgroupNotFound:
            return False

    def _live_of(self, rec: ContainerRecord) -> Live:
        """The container's in-memory record (runtime.live); NotFound once it was removed."""
        live = self._live.get(rec.id)
        if live is None or live.removed:
            raise NotFound(f"no such container: {rec.name} (it was removed)", subject=rec.name)
        return live

    def _launched_of(self, cid: str) -> Launched | None:
        """The container's running process, None when it runs none (or is gone)."""
        live = self._live.get(cid)
        return live.launched if live is not None else None

    def _emit(self, rec: ContainerRecord, action: str, **attrs: str) -> None:
        attributes = container_attributes(rec.name, rec.spec.image, rec.spec.labels, **attrs)
        self.bus.publish(Event(time.time(), "container", action, rec.id, rec.name, attributes))

    def _on_health(self, cid: str, status: Health) -> None:
        rec = self.table.by_id.get(cid)
        if rec is not None:
            rec.health = status

    # -- containers: create -------------------------------------------------------------
    async def create_container(self, spec: ContainerSpec) -> ContainerInfo:
        safe_name(spec.name, "container name")
        if self.table.name_taken(spec.name):
            raise Conflict(
                f"container name {spec.name!r} is already in use: remove it first or pick another name",
                subject=spec.name,
            )
        image = self._image(spec.image)
        for m in spec.mounts:
            if m.type == "image":
                self._image(m.source)  # missing: NotFound naming it, as for the container's image
        cfg = image.config
        cid = self.table.new_id()
        if spec.uts_mode == "host" and spec.hostname:
            raise InvalidArgument(f"container {spec.name}: hostname and uts_mode host conflict "
                                  "(the host's name is used): drop one of them")
        hostname = (socket.gethostname() if spec.uts_mode == "host"
                    else resolve.container_hostname(spec.hostname, cid))
        targets = {m.target.rstrip("/") or "/" for m in spec.mounts}
        extra = tuple(
            Mount("volume", v, "") for v in cfg.volumes if (v.rstrip("/") or "/") not in targets
        )
        resolved = Resolved(
            image_id=image.id,
            argv=tuple(resolve.resolve_argv(spec.entrypoint, spec.command, cfg.entrypoint,
                                            cfg.cmd, name=spec.name)),
            env=tuple(resolve.merge_env(cfg.env, spec.env, hostname)),
            cwd=spec.working_dir or cfg.working_dir or "/",
            user=spec.user if spec.user is not None else cfg.user,
            hostname=hostname,
            stop_signal=spec.stop_signal or cfg.stop_signal or "SIGTERM",
            lowerdirs=tuple(self.images.lowerdirs(image)),
            image_volumes=tuple(cfg.volumes),
            extra_mounts=extra,
            healthcheck=spec.healthcheck if spec.healthcheck is not None else cfg.healthcheck,
        )
        # validate now what would otherwise fail only at start
        _signum(resolved.stop_signal)
        effective_caps(spec.cap_add, spec.cap_drop, spec.privileged)
        check_spec(spec)
        user_namespace(spec, DEFAULT_NAMESPACES)
        shared_namespaces(spec, DEFAULT_NAMESPACES, {}, {"ipc": 1, "pid": 1})  # the modes' syntax
        container_ifnames([a.interface_name for a in spec.networks], spec.name)
        hostdevices.resolve(spec)  # a missing device or a bad rule fails here, as in Docker
        apparmor_profile(spec, self.apparmor_on)
        # a custom seccomp profile is read (and checked) once, as Docker's client does
        resolved = replace(resolved, seccomp_profile=await asyncio.to_thread(
            read_seccomp_profile, spec))
        size_key = f"container {spec.name}: storage_opt.size"
        if spec.storage_size:
            await asyncio.to_thread(quota.require, self.paths.containers, size_key)
        d = self.paths.container_dir(cid)
        d.mkdir(parents=True)
        rec = ContainerRecord(cid, spec, resolved, now(), d)
        try:
            if spec.storage_size:  # before start makes upper/work: they inherit the project
                await asyncio.to_thread(quota.limit_dir, self.paths.root, d, d / rootfs.ROOTFS,
                                        spec.storage_size, size_key)
            self._ensure_volumes(rec)
            rec.save_config()
            rec.update()
            self.table.add(rec)
            self._live[cid] = Live()
        except BaseException:
            quota.release(d, d / rootfs.ROOTFS)
            shutil.rmtree(d, ignore_errors=True)
            raise
        self._emit(rec, "create")
        return rec.info()

    def _image(self, ref: str):  # type: ignore[no-untyped-def]
        """The image for `ref`; busybox is made from the host's busybox-static when missing."""
        try:
            return self.images.get(ref)
        except NotFound:
            if ref.split(":")[0].removeprefix("docker.io/").removeprefix("library/") == "busybox":
                return self.images.ensure_busybox(ref if ":" in ref else "busybox:latest")
            raise

    def _ensure_volumes(self, rec: ContainerRecord) -> None:
        """Named volumes are created on first use (as Docker); anonymous ones get a name now."""
        for m in (*rec.spec.mounts, *rec.resolved.extra_mounts):
            if m.type == "volume" and m.source:
                self.volumes.create(m.source)
        if any(m.type == "volume" and not m.source for m in (*rec.spec.mounts, *rec.resolved.extra_mounts)):
            anon: list[Mount] = []
            for m in rec.resolved.extra_mounts:
                anon.append(replace(m, source=self.volumes.create(None).name) if not m.source else m)
            spec_mounts = tuple(
                replace(m, source=self.volumes.create(None).name)
                if m.type == "volume" and not m.source else m
                for m in rec.spec.mounts
            )
            rec.spec = replace(rec.spec, mounts=spec_mounts)
            rec.resolved = replace(rec.resolved, extra_mounts=tuple(anon))

    # -- containers: start --------------------------------------------------------------
    async def start_container(self, ref: str) -> ContainerInfo:
        rec = self.table.get(ref)
        live = self._live_of(rec)
        async with live.lock:
            if live.removed:  # while this start waited for the lock
                raise NotFound(f"no such container: {ref} (it was removed)", subject=ref)
            if rec.run.state in ("running", "paused") and live.launched is not None:
                return rec.info()
            await self._start(rec, live)
        return rec.info()

    async def _start(self, rec: ContainerRecord, live: Live) -> None:
        spec = rec.spec
        live.released = False  # this run will hold a cgroup, maybe a network, shm
        join_pid = self._join_target(spec)

        def files() -> tuple[tuple[DeviceNode, ...], tuple[DeviceRule, ...], RootfsLayout,
                             tuple[MountPoint, ...], dict[str, str]]:
            """The start's file work, in a thread: a volume's first use copies the image's
            files into it (any size), and the loop meanwhile answers the stack's DNS."""
            device_nodes, device_rules = hostdevices.resolve(spec)  # now: numbers can change
            lay = rootfs.prepare(rec.dir, rec.resolved.lowerdirs)
            mounts = mount_points(spec, rec.resolved.extra_mounts, self._volume_path(rec),
                                  lambda ref: list(self.images.lowerdirs(self._image(ref))))
            _, uid_map, gid_map = user_namespace(spec, DEFAULT_NAMESPACES)
            mounts = (*mounts, *injected.materialise(spec, rec.dir, uid_map, gid_map))
            return device_nodes, device_rules, lay, mounts, self._etc_files(rec, join_pid)

        device_nodes, device_rules, lay, mounts, etc = await asyncio.to_thread(files)
        ns_pids, shm_source = self._shared_ipc_pid(rec)
        try:
            cfg = launch_config(rec, lay, mounts, join_pid=join_pid, etc_files=etc,
                                devices=device_nodes,
                                security=await self._security(rec), ns_pids=ns_pids,
                                shm_source=shm_source)
        except BaseException:
            shm.unmount(rec.dir)
            raise
        addresses: dict[str, str] = {}
        attached: list[Follower] = []  # followers connected to this run's attach socket

        def make_cgroup() -> Cgroup:
            cg = self.cgroups.create(rec.id)
            cg.apply(spec.resources)
            if not spec.privileged:  # before the first process joins: no moment without it
                cg.restrict_devices(device_rules)
            return cg

        async def prepare(pid: int) -> None:
            move: asyncio.Future[None] | None = None
            if not cfg.cgroup_dir or pid not in cg.pids():  # else clone3 put it there
                # a write to cgroup.procs waits in the kernel for an RCU grace period
                # (cgroup_threadgroup_rwsem) unless another move came just before: ~10 ms
                # here. In a thread, beside the network's netlink work (the init waits for
                # "go" whatever the order), and the loop keeps serving meanwhile. Handed to
                # the executor now (to_thread would wait for the loop's next turn)
                move = asyncio.get_running_loop().run_in_executor(None, cg.add_pid, pid)
            try:
                await wire(pid)
            except BaseException:
                if move is not None:
                    with contextlib.suppress(Exception):  # the network's error comes first
                        await move
                raise
            if move is not None:
                await move
            attached.extend(await self._attach_followers(rec, live))  # last: only go comes after

        async def wire(pid: int) -> None:
            nonlocal addresses
            if spec.network_mode in ("bridge", "default", ""):
                addresses = await self.networks.attach(
                    rec.id, pid, spec.networks, self._dns_names(rec), dns_servers=spec.dns)
            elif spec.network_mode == "none" and not self.launcher.inits_bring_lo_up:
                await self.networks.setup_loopback(pid)  # a monitor from before the init did
            self._write_net_files(rec, addresses)

        async with contextlib.AsyncExitStack() as undo:
            undo.push_async_callback(self._release, rec)
            try:
                cg = make_cgroup()  # before the launch: a v2 one receives the init at birth
                cfg = replace(cfg, cgroup_dir=self._clone_into(cg, cfg))
                launched = await self.launcher.launch(cfg, prepare)
            except LaunchError as e:
                rec.update(state="exited" if rec.run.started_at else "created", exit_code=e.exit_code,
                           error=e.message)
                for f in attached:  # they saw its error message; now its code
                    f.run_ended(e.exit_code, False)
                raise
            except BaseException:
                for f in attached:
                    f.run_ended(125, False)
                raise
            undo.callback(self.launcher.kill, launched, signal.SIGKILL)
            ports: tuple[PortBinding, ...] = ()
            if spec.ports and addresses:
                first_ip = next(iter(addresses.values()))
                ports = tuple(await self.networks.publish(rec.id, first_ip, spec.ports))
            undo.pop_all()
        rec.update(
            state="running", pid=launched.pid, monitor_pid=launched.monitor_pid,
            start_ticks=launched.start_time, exit_code=None, oom_killed=False,
            started_at=now(), finished_at=None, stopped_by_user=False, error="",
            ports=ports, addresses=addresses,
        )
        rec.health = "starting" if self._health_enabled(rec) else ""
        self._track(rec, live, launched)
        self.supervisor.watch(self._supervised_info(rec))
        self._emit(rec, "start")

    def _health_enabled(self, rec: ContainerRecord) -> bool:
        hc = rec.resolved.healthcheck
        return hc is not None and bool(hc.test) and hc.test[0] != "NONE"

    def _supervised_info(self, rec: ContainerRecord) -> ContainerInfo:
        info = rec.info()
        return replace(info, spec=replace(info.spec, healthcheck=rec.resolved.healthcheck))

    def _join_target(self, spec: ContainerSpec) -> int | None:
        if not spec.network_mode.startswith("container:"):
            return None
        target = self.table.get(spec.network_mode.split(":", 1)[1])
        launched = self._launched_of(target.id)
        if target.run.state != "running" or launched is None:
            raise Conflict(
                f"container {spec.name}: cannot join the network of {target.name}: it is not running",
                subject=spec.name,
            )
        return launched.pid

    def _shared_ipc_pid(self, rec: ContainerRecord) -> tuple[dict[str, int], str]:
        """(init pid per joined namespace, host dir for /dev/shm) for ipc_mode / pid_mode.
        Joining IPC needs a donor that is shareable (or uses the host's), as Docker."""
        spec = rec.spec
        pids: dict[str, int] = {}
        shm_source = ""
        for kind, mode in (("ipc", spec.ipc_mode), ("pid", spec.pid_mode)):
            if not mode.startswith("container:"):
                continue
            target = self.table.get(mode.split(":", 1)[1])
            launched = self._launched_of(target.id)
            if target.run.state != "running" or launched is None:
                raise Conflict(f"container {spec.name}: cannot join the {kind} namespace of "
                               f"{target.name}: it is not running", subject=spec.name)
            if kind == "ipc":
                if target.spec.ipc_mode not in ("shareable", "host"):
                    raise Conflict(f"container {spec.name}: cannot join the IPC namespace of "
                                   f"{target.name}: it is not shareable (give it ipc: shareable)",
                                   subject=spec.name)
                shm_source = "/dev/shm" if target.spec.ipc_mode == "host" else shm.path(target.dir)
            pids[kind] = launched.pid
        if spec.ipc_mode == "host":
            shm_source = "/dev/shm"
        elif spec.ipc_mode == "shareable":
            shm_source = shm.mount(rec.dir, spec.shm_size or DEFAULT_SHM_SIZE)
        return pids, shm_source

    def _volume_path(self, rec: ContainerRecord):  # type: ignore[no-untyped-def]
        def path(m: Mount) -> str:
            vol = self.volumes.get(m.source)
            if vol.options and not os.path.isdir(vol.mountpoint):
                raise InvalidArgument(f"container {rec.name}: volume {vol.name} binds {vol.mountpoint}, "
                                      "which is not a directory on this host: create it")
            if not m.subpath:  # the image's files would land in the volume's root: not copied
                self.volumes.init_from_image(m.source, list(rec.resolved.lowerdirs), m.target, m.nocopy)
            return volume_subpath(vol.mountpoint, m.subpath, vol.name) if m.subpath else vol.mountpoint
        return path

    def _dns_names(self, rec: ContainerRecord) -> list[str]:
        names = [rec.name, rec.resolved.hostname]
        return list(dict.fromkeys(n for n in names if n))

    def _etc_files(self, rec: ContainerRecord, join_pid: int | None) -> dict[str, str]:
        """Per-container /etc/hostname, /etc/hosts, /etc/resolv.conf (hosts/resolv are filled
        in `prepare`, once the addresses are known)."""
        d = rec.dir
        (d / "hostname").write_text(rec.resolved.hostname + "\n")
        for name in ("hosts", "resolv.conf"):
            if not (d / name).exists():
                (d / name).write_text("")
        files = {"/etc/hostname": str(d / "hostname"), "/etc/hosts": str(d / "hosts"),
                 "/etc/resolv.conf": str(d / "resolv.conf")}
        if join_pid is not None:  # share the target's files, as Docker
            target = next(r for r in self.table.all()
                          if (run := self._launched_of(r.id)) is not None and run.pid == join_pid)
            files["/etc/hosts"] = str(target.dir / "hosts")
            files["/etc/resolv.conf"] = str(target.dir / "resolv.conf")
        elif rec.spec.network_mode == "host":
            self._write_net_files(rec, {})
        return files

    def _write_net_files(self, rec: ContainerRecord, addresses: dict[str, str]) -> None:
        spec = rec.spec
        host_mode = spec.network_mode == "host"
        gateway = None
        if addresses:
            with contextlib.suppress(EngineError):
                gateway = self.networks.gateway_of(next(iter(addresses)))
        if host_mode:
            try:
                hosts = Path("/etc/hosts").read_text()
            except OSError:
                hosts = "127.0.0.1\tlocalhost\n"
            hosts += "".join(f"{ip}\t{name}\n" for name, ip in spec.extra_hosts if ip != "host-gateway")
        else:
            hosts = hosts_file(rec.resolved.hostname, list(addresses.values()), spec.domainname,
                               spec.extra_hosts, gateway)
        (rec.dir / "hosts").write_text(hosts)
        # none mode (no addresses) is not the host's namespace: its loopback is its own
        (rec.dir / "resolv.conf").write_text(self.networks.resolv_conf(
            rec.id, spec.dns, spec.dns_search, spec.dns_opt, host_mode=host_mode))

    def _clone_into(self, cg: Cgroup, cfg: LaunchConfig) -> str:
        """The v2 directory the init can be cloned into (CLONE_INTO_CGROUP), or "": a v1
        host (one directory per controller), a monitor from before the field, or a user
        namespace (its init is forked inside the namespace: the engine moves it)."""
        dirs = cg.directories()
        if (cg.version != "v2" or len(dirs) != 1 or "user" in cfg.namespaces
                or not self.launcher.clones_into_cgroup):
            return ""
        return str(dirs[0])

    def _track(self, rec: ContainerRecord, live: Live, launched: Launched) -> None:
        """A run began (or was adopted): a task waits for its exit (the caller holds the lock)."""
        live.new_run(launched)
        live.waiter = asyncio.get_running_loop().create_task(self._wait_exit(rec, live, launched))

    async def _wait_exit(self, rec: ContainerRecord, live: Live, launched: Launched) -> None:
        status = await self.launcher.wait(launched)
        await self._finish(rec, live, status, restart=True, run=launched)

    async def _finish(self, rec: ContainerRecord, live: Live, status: ExitStatus, *,
                      restart: bool, run: Launched | None = None) -> None:
        """The container's process has ended: record it, release what it held, ask the
        restart policy. Under the lock: a stop, kill or remove sees the run whole or ended."""
        async with live.lock:
            if live.removed or (run is not None and live.launched is not run):
                return  # removed meanwhile (remove released it all), or not this run
            oom = False
            with contextlib.suppress(CgroupNotFound, OSError):
                cg = self.cgroups.open(rec.id)
                oom = cg.oom_killed()
            live.released = await self._release(rec, exited=True)
            rec.update(state="exited", pid=0, monitor_pid=0, exit_code=status.code, oom_killed=oom,
                       finished_at=status.finished_at, ports=(), addresses={})
            rec.health = ""
            live.end_run(status.code)
            if oom:
                self._emit(rec, "oom")
            self._emit(rec, "die", exitCode=str(status.code))
            restarting = live.restarts > 0
            if restarting:  # restart_container stops it to start it again: not an end
                rec.update(state="restarting")
            elif restart:
                decision = self.supervisor.on_exit(rec.id, status.code)
                if decision.restart:
                    restarting = True
                    rec.update(state="restarting", restart_count=decision.restart_count)
                elif rec.spec.auto_remove:
                    asyncio.get_running_loop().create_task(
                        self.remove_container(rec.id, force=True))
            self._followers_run_ended(live, status.code, restarting=restarting)

    async def _release(self, rec: ContainerRecord, exited: bool = False) -> bool:
        """Everything a started container holds on the host, except its state dir. Idempotent.
        False if a step failed (it was left for the next release to try again). `exited`:
        its init has exited and was reaped (its network namespace is going)."""
        clean = True
        try:
            shm.unmount(rec.dir)
        except (EngineError, OSError):
            clean = False
        try:
            await self.networks.unpublish(rec.id)
        except (EngineError, OSError):
            clean = False
        try:
            await self.networks.detach(rec.id, netns_ended=exited)
        except (EngineError, OSError):
            clean = False
        with contextlib.suppress(CgroupNotFound):
            cg = self.cgroups.open(rec.id)
            try:
                cg.kill_all()
            except (EngineError, OSError):
                clean = False
            cg.remove()
        return clean

    # -- containers: stop, kill, wait, remove --------------------------------------------
    async def stop_container(self, ref: str, timeout: float | None = None) -> ContainerInfo:
        rec = self.table.get(ref)
        live = self._live_of(rec)
        async with live.lock:  # read the run and signal it; the waits below are without it
            self.supervisor.user_stopped(rec.id)
            launched, exited = live.launched, live.exited
            if rec.run.state == "restarting" and launched is None:
                if live.restarts:  # restart_container: it starts again right away
                    return rec.info()
                rec.update(state="exited", stopped_by_user=True)  # its pending restart is off
                for f in live.followers:
                    f.run_ended(rec.run.exit_code or 0, False, cancelled=True)
                return rec.info()
            if launched is None:
                return rec.info()
            rec.update(stopped_by_user=True)
            grace = rec.spec.stop_grace_period if timeout is None else timeout
            with contextlib.suppress(EngineError, OSError):
                cg = self.cgroups.open(rec.id)
                if rec.run.state == "paused":
                    cg.thaw()
            sig = _signum(rec.resolved.stop_signal)
        # pid 1 of a pid namespace drops a signal it neither handles nor blocks: one sent
        # while its init (tini, a shell) is still starting is lost, and the stop would wait
        # out the whole grace period. Give the init a moment to be ready for it (taken
        # out of the grace period, which still bounds the whole stop). The lock is free
        # meanwhile: a kill (Docker: at once, also during a stop) and the exit's _finish
        # are not held up; the signal goes to this run only (Launcher.kill checks its
        # start time).
        t0 = time.monotonic()
        await _until_signal_deliverable(launched.pid, sig, min(grace, SIGNAL_READY_WAIT))
        self.launcher.kill(launched, sig)
        if not await _wait_exit_for(exited, max(0.0, grace - (time.monotonic() - t0))):
            async with live.lock:
                if live.launched is launched:
                    await self._kill_all(rec, launched)
            await _wait_exit_for(exited, 30)
        self._emit(rec, "stop")
        return rec.info()

    async def restart_container(self, ref: str, timeout: float | None = None) -> ContainerInfo:
        """Stop (grace period `timeout`) and start again, as `docker restart`. In between the
        container reads "restarting", not "exited": whoever follows it (`logs -f`, an
        attached `up`) stays with it."""
        rec = self.table.get(ref)
        live = self._live_of(rec)
        live.restarts += 1
        try:
            await self.stop_container(rec.id, timeout)
            try:
                info = await self.start_container(rec.id)
            except BaseException:
                async with live.lock:
                    if rec.run.state == "restarting" and live.launched is None \
                            and not live.removed:
                        rec.update(state="exited")  # it did not come back
                        self._followers_run_ended(live, rec.run.exit_code or 0,
                                                  restarting=False)
                raise
        finally:
            live.restarts -= 1
        self._emit(rec, "restart")
        return info

    async def _kill_all(self, rec: ContainerRecord, launched: Launched | None) -> None:
        """SIGKILL to the run's init and every process of the container's cgroup."""
        if launched is not None:
            self.launcher.kill(launched, signal.SIGKILL)
        with contextlib.suppress(CgroupNotFound, OSError, EngineError):
            cg = self.cgroups.open(rec.id)
            await asyncio.to_thread(cg.kill_all)

    async def kill_container(self, ref: str, signal: str = "SIGKILL") -> None:
        rec = self.table.get(ref)
        sig = _signum(signal)
        live = self._live_of(rec)
        async with live.lock:  # a stop in its grace period does not hold it
            if live.removed:
                raise NotFound(f"no such container: {ref} (it was removed)", subject=ref)
            launched = live.launched
            if launched is None:
                raise Conflict(f"container {rec.name} is not running", subject=rec.name)
            self.supervisor.user_stopped(rec.id)
            rec.update(stopped_by_user=True)
            if sig == 9:
                await self._kill_all(rec, launched)
            else:
                self.launcher.kill(launched, sig)
        self._emit(rec, "kill", signal=str(sig))

    async def wait_container(self, ref: str) -> int:
        rec = self.table.get(ref)
        while rec.run.state in RUNNING_STATES:
            live = self._live.get(rec.id)
            if live is None or live.removed:
                break
            if live.exited is None:
                await asyncio.sleep(0.05)
                continue
            await asyncio.shield(live.exited)
            if rec.run.state != "restarting":
                break
            await asyncio.sleep(0.05)
        return rec.run.exit_code if rec.run.exit_code is not None else 0

    async def remove_container(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        rec = self.table.get(ref)
        live = self._live_of(rec)
        killed: Launched | None = None
        for _ in range(REMOVE_ATTEMPTS):
            launched = live.launched
            if rec.run.state in RUNNING_STATES and launched is not None and launched is not killed:
                if not force:
                    raise Conflict(
                        f"container {rec.name} is running: stop it first or remove it with force",
                        subject=rec.name,
                    )
                self.supervisor.user_stopped(rec.id)
                exited = live.exited
                async with live.lock:
                    if live.launched is launched:
                        await self._kill_all(rec, launched)
                await _wait_exit_for(exited, 30)  # its exit is recorded under the lock
                killed = launched
            # under the container's lock: a start in flight finishes first (then the loop
            # kills what it started), and no start begins while the container goes
            async with live.lock:
                if live.removed:
                    return  # a concurrent remove did it
                now = live.launched
                if rec.run.state in RUNNING_STATES and now is not None and now is not killed:
                    continue  # started again meanwhile: kill that run too
                await self._remove_locked(rec, live, volumes)
            return
        raise EngineError(f"container {rec.name} could not be removed: it keeps being started")

    async def _remove_locked(self, rec: ContainerRecord, live: Live, volumes: bool) -> None:
        live.removed = True  # whoever holds it or waits for its lock finds it gone
        self._live.pop(rec.id, None)
        self.supervisor.forget(rec.id)
        if live.waiter is not None:
            live.waiter.cancel()
        if not (live.released and live.launched is None):  # else its exit did it all
            await self._release(rec)
        self.table.discard(rec.id)
        live.end_run(rec.run.exit_code or 0)
        await asyncio.to_thread(_drop_files, rec.dir)
        if volumes:
            for m in (*rec.spec.mounts, *rec.resolved.extra_mounts):
                if m.type == "volume" and m.source and self._is_anonymous(m.source):
                    with contextlib.suppress(EngineError):
                        self.volumes.remove(m.source, force=True, in_use=self._volume_users)
        for f in live.followers:
            f.end()
        live.followers.clear()
        self._emit(rec, "destroy")

    def _is_anonymous(self, name: str) -> bool:
        try:
            return self.volumes.get(name).anonymous
        except NotFound:
            return False

    # -- containers: queries --------------------------------------------------------------
    async def inspect_container(self, ref: str) -> ContainerInfo:
        return self.table.get(ref).info()

    async def list_containers(
        self, all: bool = False, labels: dict[str, str] | None = None
    ) -> list[ContainerInfo]:
        out = []
        for rec in sorted(self.table.all(), key=lambda r: r.created_at):
            if not all and rec.run.state not in RUNNING_STATES:
                continue
            if labels and any(rec.spec.labels.get(k) != v for k, v in labels.items()):
                continue
            out.append(rec.info())
        return out

    async def pause_container(self, ref: str) -> None:
        rec = self.table.get(ref)
        live = self._live_of(rec)
        async with live.lock:  # not while a start, an exit or a removal is half done
            if rec.run.state != "running" or live.launched is None:
                raise Conflict(f"container {rec.name} is not running", subject=rec.name)
            await asyncio.to_thread(self.cgroups.open(rec.id).freeze)
            rec.update(state="paused")
        self._emit(rec, "pause")

    async def unpause_container(self, ref: str) -> None:
        rec = self.table.get(ref)
        live = self._live_of(rec)
        async with live.lock:
            if rec.run.state != "paused" or live.launched is None:
                raise Conflict(f"container {rec.name} is not paused", subject=rec.name)
            await asyncio.to_thread(self.cgroups.open(rec.id).thaw)
            rec.update(state="running")
        self._emit(rec, "unpause")

    async def logs(
        self, ref: str, follow: bool = False, tail: int | None = None,
        since: float | None = None, until: float | None = None,
    ) -> AsyncIterator[LogLine]:
        """The container's log (runtime.process.logread): the last `tail` entries (None: all)
        with `since` <= time <= `until` (epoch seconds), then with `follow` new ones until it
        stops for good -- a restart (policy or restart_container) is not an end -- or is
        removed. Conflict for a container whose logging driver is `none`."""
        rec = self.table.get(ref)
        if rec.spec.logging.driver == "none":
            raise Conflict(f"container {rec.name} keeps no logs: its logging driver is none",
                           subject=rec.name)
        path = str(rec.dir / "container.log")

        def stopped() -> bool:
            return rec.run.state not in RUNNING_STATES or rec.id not in self.table.by_id

        async for e in read_log(path, tail=tail, follow=follow, stop=stopped, since=since,
                                until=until):
            yield LogLine(e.stream, e.time, e.data)  # type: ignore[arg-type]

    async def _exec_config(self, ref: str, argv: list[str], user: str | None,
                           env: dict[str, str] | None, workdir: str | None,
                           tty: bool = False, privileged: bool = False,
                           ) -> tuple[ContainerRecord, Launched, ExecConfig]:
        """The exec's settings from the container's; `privileged` (exec --privileged) gives
        this process every capability, as Docker (seccomp, AppArmor, mounts stay the
        container's)."""
        rec = self.table.get(ref)
        launched = self._launched_of(rec.id)
        if launched is None or rec.run.state != "running":
            raise Conflict(f"container {rec.name} is not running", subject=rec.name)
        base = resolve.env_list_to_dict(rec.resolved.env)
        base.update(env or {})
        cfg = ExecConfig(
            argv=tuple(argv), env=tuple(f"{k}={v}" for k, v in base.items()),
            cwd=workdir or rec.resolved.cwd or "/",
            user=user if user is not None else rec.resolved.user,
            group_add=rec.spec.group_add,
            tty=tty,
            security=self._exec_security(await self._security(rec), privileged),
            cgroup_procs=self._cgroup_procs(rec),
        )
        return rec, launched, cfg

    async def exec_run(
        self,
        ref: str,
        argv: list[str],
        user: str | None = None,
        env: dict[str, str] | None = None,
        workdir: str | None = None,
        privileged: bool = False,
        timeout: float | None = None,  # ours, beyond EngineAPI: the command is killed after
    ) -> ExecResult:
        _, launched, cfg = await self._exec_config(ref, argv, user, env, workdir,
                                                   privileged=privileged)
        code, out, err = await self.launcher.exec_run(launched, cfg, timeout)
        return ExecResult(code, out.decode(errors="replace"), err.decode(errors="replace"))

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
    ) -> ExecSession:
        """Start `argv` in the running container and return its stdio as a stream
        (runtime.exec_session): input from `write()` when `stdin`, output as it is written,
        then its exit code. `detach`: it runs on its own (no stdio) and the stream ends at
        once with code 0. A command that cannot start is a stream of its message and
        126/127, as `docker exec` prints them. `ready()` is awaited once the container is
        known to run, before the command starts (composerd answers the websocket upgrade
        there: the client's own start overlaps the launch's ~10 ms)."""
        _, launched, cfg = await self._exec_config(ref, argv, user, env, workdir, tty,
                                                   privileged)
        if ready is not None:
            await ready()
        if detach:
            cfg = replace(cfg, detach=True)
        try:
            proc = await self.launcher.exec(launched, cfg, stdin=stdin and not detach)
        except LaunchError as e:
            return ExecSession.failed(e.exit_code, e.message)
        if detach:
            task = asyncio.get_running_loop().create_task(self._reap_exec(proc))
            self._detached.add(task)
            task.add_done_callback(self._detached.discard)
            return ExecSession.finished(0)
        return ExecSession(proc, tty=tty)

    @staticmethod
    async def _reap_exec(proc: ExecProcess) -> None:
        """A detached exec: wait for its end (the monitor's exec helper reports it), then let
        go of the connection."""
        try:
            await proc.wait()
        finally:
            proc.close()

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
        """For `exec -it`: the caller runs the exec through the monitor itself, so the pty
        is its own terminal's peer and no bytes of the session pass through the daemon."""
        _, launched, cfg = await self._exec_config(ref, argv, user, env, workdir, tty,
                                                   privileged)
        return ExecTarget(launched.pid, launched.start_time, serde.to_dict(cfg),
                          self.launcher.socket_path)

    async def attach_container(self, ref: str, logs: bool = False,
                               follow: bool = False) -> AttachClient | Follower:
        """A live connection to the container's stdio through the monitor (runtime.attach);
        `logs` replays the recent output first. Conflict when it is not running.

        `follow` (runtime.follow): any state but removed; a running container is joined
        now (live, or with the replay if `logs`), and every later start is attached before
        its command runs; an EXIT frame ends each run; the stream ends with the container's
        removal (or when the caller closes it)."""
        rec = self.table.get(ref)
        if follow:
            live = self._live_of(rec)
            async with live.lock:  # start/exit are not half done meanwhile
                if live.removed:
                    raise NotFound(f"no such container: {ref} (it was removed)", subject=ref)
                follower = Follower(on_close=self._forget_follower(live))
                if live.launched is not None and rec.run.state in ("running", "paused"):
                    try:
                        follower.run_started(await AttachClient.open(str(rec.dir), logs=logs))
                    except OSError:
                        pass  # its output ends right now: the exit comes as usual
                live.followers.append(follower)
                return follower
        if self._launched_of(rec.id) is None or rec.run.state not in ("running", "paused"):
            raise Conflict(f"container {rec.name} is not running: start it before attaching",
                           subject=rec.name)
        try:
            return await AttachClient.open(str(rec.dir), logs=logs)
        except OSError as e:
            raise Conflict(f"cannot attach to container {rec.name}: {e.strerror or e}",
                           subject=rec.name) from None

    # -- containers: files (runtime.engine_files) -----------------------------------------
    async def stat_path(self, ref: str, path: str) -> PathStat:
        return await engine_files.stat_path(self, ref, path)

    async def get_archive(
        self, ref: str, path: str, follow_link: bool = False
    ) -> tuple[PathStat, AsyncIterator[bytes]]:
        return await engine_files.get_archive(self, ref, path, follow_link)

    async def put_archive(
        self, ref: str, path: str, data: AsyncIterable[bytes], copy_uid_gid: bool = False,
        no_overwrite_dir_non_dir: bool = True,
    ) -> None:
        await engine_files.put_archive(self, ref, path, data, copy_uid_gid,
                                       no_overwrite_dir_non_dir)

    async def remove_paths(self, ref: str, paths: list[str]) -> ArchiveResult:
        return await engine_files.remove_paths(self, ref, paths)

    def export_container(self, ref: str) -> AsyncIterator[bytes]:
        return engine_files.export_container(self, ref)

    async def commit_container(self, ref: str, req: CommitRequest) -> ImageInfo:
        return await engine_files.commit_container(self, ref, req)

    @staticmethod
    def _forget_follower(live: Live) -> Callable[[Follower], None]:
        def forget(f: Follower) -> None:
            with contextlib.suppress(ValueError):
                live.followers.remove(f)
        return forget

    async def _attach_followers(self, rec: ContainerRecord, live: Live) -> list[Follower]:
        """While the init waits for "go": connect every follower to the new run's attach socket
        and wait
        for its READY, so the first byte the command writes reaches them."""
        done = []
        for f in list(live.followers):
            try:
                client = await AttachClient.open(str(rec.dir), ready=True)
            except (OSError, TimeoutError) as e:
                log.warning("container %s: a follower could not attach: %s", rec.name, e)
                continue
            f.run_started(client)
            done.append(f)
        return done

    @staticmethod
    def _followers_run_ended(live: Live, code: int, *, restarting: bool) -> None:
        for f in live.followers:
            f.run_ended(code, restarting)

    def _cgroup_procs(self, rec: ContainerRecord) -> tuple[str, ...]:
        try:
            cg = self.cgroups.open(rec.id)
        except CgroupNotFound:
            return ()
        return tuple(str(d / "cgroup.procs") for d in cg.directories())

    async def top(self, ref: str) -> list[dict[str, str]]:
        rec = self.table.get(ref)
        return await asyncio.to_thread(self._top, rec.id)  # /proc of every process: a thread

    def _top(self, cid: str) -> list[dict[str, str]]:
        try:
            pids = self.cgroups.open(cid).pids()
        except CgroupNotFound:
            return []
        rows = []
        for pid in sorted(pids):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            uid = next((ln.split()[1] for ln in status.splitlines() if ln.startswith("Uid:")), "?")
            ppid = next((ln.split()[1] for ln in status.splitlines() if ln.startswith("PPid:")), "?")
            rows.append({"PID": str(pid), "PPID": ppid, "UID": uid, "CMD": cmd})
        return rows

    async def stats(self, ref: str) -> Stats:
        rec = self.table.get(ref)
        try:
            s = self.cgroups.open(rec.id).stats()
        except CgroupNotFound:
            return Stats()
        rx = tx = 0
        launched = self._launched_of(rec.id)
        if launched is not None and rec.spec.network_mode != "host":
            rx, tx = _net_bytes(launched.pid)
        return Stats(s.memory_usage, s.memory_peak, s.memory_limit, s.cpu_usage_ns, s.pids,
                     s.io_read_bytes, s.io_write_bytes, rx, tx)

    # -- networks -------------------------------------------------------------------------
    async def create_network(self, spec: NetworkSpec) -> NetworkInfo:
        info = await self.networks.create(spec)
        self.bus.publish(Event(time.time(), "network", "create", spec.name, spec.name))
        return info

    async def remove_network(self, name: str) -> None:
        users = [r.name for r in self.table.all()
                 if r.run.state in RUNNING_STATES and name in r.run.addresses]
        if users:
            raise Conflict(
                f"network {name} is in use by container(s) {', '.join(users)}: stop them first",
                subject=name,
            )
        await self.networks.remove(name)
        self.bus.publish(Event(time.time(), "network", "destroy", name, name))

    async def list_networks(self, labels: dict[str, str] | None = None) -> list[NetworkInfo]:
        return self.networks.list(labels)

    # -- volumes --------------------------------------------------------------------------
    async def create_volume(self, spec: VolumeSpec) -> VolumeInfo:
        if spec.external:
            return self.volumes.get(spec.name).info()
        return self.volumes.create(spec.name, spec.labels, spec.driver_opts).info()

    def _volume_users(self, name: str) -> list[str]:
        return [r.name for r in self.table.all()
                if any(m.type == "volume" and m.source == name
                       for m in (*r.spec.mounts, *r.resolved.extra_mounts))]

    async def remove_volume(self, name: str, force: bool = False) -> None:
        self.volumes.remove(name, force=force, in_use=self._volume_users)

    async def list_volumes(self, labels: dict[str, str] | None = None) -> list[VolumeInfo]:
        return [v.info() for v in self.volumes.list(labels)]

    # -- images ---------------------------------------------------------------------------
    async def list_images(self) -> list[ImageInfo]:
        return [i.info() for i in self.images.list()]

    async def inspect_image(self, ref: str) -> ImageInfo:
        return self._image(ref).info()  # type: ignore[no-any-return]

    def _image_users(self, image_id: str) -> list[str]:
        def mounts_it(rec: ContainerRecord) -> bool:  # an image mount holds its layers too
            for m in rec.spec.mounts:
                if m.type == "image":
                    with contextlib.suppress(NotFound):
                        if self.images.get(m.source).id == image_id:
                            return True
            return False

        return [r.name for r in self.table.all() if r.resolved.image_id == image_id or mounts_it(r)]

    async def remove_image(self, ref: str, force: bool = False) -> list[str]:
        return await asyncio.to_thread(self.images.remove, ref, force, self._image_users)

    async def import_image(self, path: str, tag: str) -> ImageInfo:
        img = await asyncio.to_thread(importer.import_rootfs, self.images, path, [tag])
        self.bus.publish(Event(time.time(), "image", "import", img.id, tag))
        return img.info()

    async def load_image(self, path: str) -> list[ImageInfo]:
        imgs = await asyncio.to_thread(importer.load, self.images, path)
        for img in imgs:
            self.bus.publish(Event(time.time(), "image", "load", img.id, ",".join(img.tags)))
        return [i.info() for i in imgs]

    async def pull_image(self, ref: str) -> AsyncIterator[PullEvent]:
        """Pull from a registry; yields progress, then an event carrying the image id."""
        queue: asyncio.Queue[PullEvent | None] = asyncio.Queue()
        # imported on the first pull, off the loop (docs/daemon.md "Memory")
        await deferredpkg.preload("aiohttp", "runtime.images.registry")
        from runtime.images import registry

        def progress(p: registry.PullProgress) -> None:
            queue.put_nowait(PullEvent(p.status, p.id, p.current, p.total))

        async def work() -> None:
            try:
                img = await registry.pull(self.images, ref, progress=progress)
                queue.put_nowait(PullEvent("pulled", image_id=img.id))
                self.bus.publish(Event(time.time(), "image", "pull", img.id, ref))
            except EngineError as e:
                queue.put_nowait(PullEvent("error", error=str(e)))
            except Exception as e:  # noqa: BLE001 - reported to the client, logged here
                log.exception("pull failed")
                queue.put_nowait(PullEvent("error", error=f"pull of {ref} failed: {e}"))
            finally:
                queue.put_nowait(None)

        async for item in self._drain(work(), queue):
            yield item

    async def _drain(self, work: Coroutine[Any, Any, None],
                     queue: asyncio.Queue[Q | None]) -> AsyncIterator[Q]:
        """Run `work` and yield what it puts on `queue` until it puts None."""
        task = asyncio.get_running_loop().create_task(work)
        try:
            while (item := await queue.get()) is not None:
                yield item
        finally:
            if not task.done():
                await cancel_and_wait(task)

    async def build_image(self, req: BuildRequest) -> AsyncIterator[BuildProgress]:
        """Build from a Dockerfile; yields output lines, then the image id (or the error)."""
        # imported on the first build, off the loop (docs/daemon.md "Memory")
        await deferredpkg.preload("aiohttp", "runtime.images.registry", "runtime.images.build",
                                  "runtime.images.build_adapters")
        from runtime.images import registry
        from runtime.images.build import Builder
        from runtime.images.build_adapters import LauncherRun, StoreImages, StoreLayers

        queue: asyncio.Queue[BuildProgress | None] = asyncio.Queue()
        runner = LauncherRun(self.launcher, self.cgroups, network=req.network, shm_size=req.shm_size,
                             extra_hosts=req.extra_hosts, secrets=req.secrets, ssh=req.ssh,
                             entitlements=req.entitlements)

        async def pull(ref: str) -> None:
            await registry.pull(self.images, ref)

        builder = Builder(layers=StoreLayers(self.images.layers), images=StoreImages(self.images),
                          runner=runner, state_root=self.paths.root, puller=pull)
        dockerfile = req.dockerfile if os.path.isabs(req.dockerfile) else os.path.join(
            req.context, req.dockerfile)
        tags = list(dict.fromkeys(t for t in (req.tag, *req.tags) if t))

        async def work() -> None:
            try:
                iid = await builder.build(
                    req.context, dockerfile, tag=tags, target=req.target,
                    build_args=req.build_args, no_cache=req.no_cache,
                    progress=lambda line: queue.put_nowait(BuildProgress(line=line)),
                    dockerfile_text=req.dockerfile_inline, labels=req.labels, pull=req.pull,
                    named_contexts=req.named_contexts, entitlements=req.entitlements)
                queue.put_nowait(BuildProgress(image_id=iid))
                self.bus.publish(Event(time.time(), "image", "build", iid, req.tag))
            except EngineError as e:
                queue.put_nowait(BuildProgress(error=str(e)))
            except Exception as e:  # noqa: BLE001 - reported to the client, logged here
                log.exception("build failed")
                queue.put_nowait(BuildProgress(error=f"build failed: {e}"))
            finally:
                queue.put_nowait(None)

        async for item in self._drain(work(), queue):
            yield item

    # -- events ---------------------------------------------------------------------------
    def events(self, since: float | None = None,
               until: float | None = None) -> AsyncIterator[Event]:
        return events_between(self.bus, since, until)


def _net_bytes(pid: int) -> tuple[int, int]:
    """(received, sent) bytes of the interfaces (but lo) of `pid`'s network namespace."""
    rx = tx = 0
    try:
        lines = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
    except OSError:
        return 0, 0
    for line in lines:
        name, _, counters = line.partition(":")
        fields = counters.split()
        if name.strip() != "lo" and len(fields) >= 9:
            rx += int(fields[0])
            tx += int(fields[8])
    return rx, tx


def _drop_files(container_dir: Path) -> None:
    """A removed container's quota, rootfs (unmounted) and state dir in one worker-thread
    trip instead of three: each trip is a hand-off to a thread and back, which a loaded host
    makes cost milliseconds. The rest of a remove's time is the unlinks and rmdirs (~20 for
    a container that wrote nothing)."""
    quota.release(container_dir, container_dir / rootfs.ROOTFS)
    rootfs.cleanup(container_dir)
    shutil.rmtree(container_dir, True)


__all__ = ["Engine", "RunState"]
