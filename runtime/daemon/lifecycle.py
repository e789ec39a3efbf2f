"""composerd's life: one daemon per run dir (an flock), the run dir's mode, the pid file,
the engine it opens, serving until SIGTERM/SIGINT, and a shutdown that lets orphaned calls
finish and closes the engine. Containers keep running under the monitor; a restarted daemon
re-adopts them (Engine.open).
"""
from __future__ import annotations

import asyncio
import contextlib
import fcntl
import importlib
import inspect
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from runtime import access
from runtime.api import EngineAPI
from runtime.daemon.handlers import ORPHANS, VERSION
from runtime.daemon.serving import DaemonError, serve, socket_answers
from runtime.paths import Paths

log = logging.getLogger("composerd")

ENGINE_ENV = "COMPOSERD_ENGINE"  # "module:factory" — tests only; default runtime.engine:Engine.open
DEFAULT_ENGINE = "runtime.engine:Engine.open"
PID_FILE = "composerd.pid"
LOCK_FILE = "composerd.lock"
LOG_FILE = "composerd.log"
ORPHAN_GRACE = 60.0  # seconds run() waits for orphans before closing the engine

EngineFactory = Callable[[Paths], Awaitable[EngineAPI]]


def _take_daemon_lock(run: Path) -> int:
    """One daemon per run dir: an flock the kernel drops when the daemon dies (even -9)."""
    fd = os.open(run / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DaemonError(f"composerd is already running{_pid_hint(run)}: stop it first") from None
    return fd


def _pid_hint(run: Path) -> str:
    try:
        return f" (pid {int((run / PID_FILE).read_text())})"
    except (OSError, ValueError):
        return ""


def secure_run_dir(run: Path) -> None:
    """0700, or 0710 root:composer when the access group exists (runtime.access); never
    chmod a shared dir such as /tmp (sticky) or someone else's. Project locks beside it."""
    run.mkdir(mode=0o700, parents=True, exist_ok=True)
    gid = access.access_gid()
    access.share_dir(run, gid)
    access.share_lock_dir(run / "locks", gid)
    if gid is not None:
        log.info("members of group %s may use composerd (root-equivalent)", access.group_name())


async def run(
    paths: Paths,
    engine_factory: EngineFactory,
    *,
    socket_path: Path | None = None,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[], None] | None = None,
    debug: bool = False,
) -> None:
    """The daemon's life: take the run-dir lock, open the engine, serve until SIGTERM/`stop`."""
    socket_path = socket_path or paths.socket
    stop = stop or asyncio.Event()
    secure_run_dir(paths.run)
    lock_fd = _take_daemon_lock(paths.run)
    try:
        if await socket_answers(socket_path):
            raise DaemonError(f"another composerd answers on {socket_path}: stop it first")
        engine = await engine_factory(paths)
        try:
            runner = await serve(engine, socket_path, debug=debug)
            ino = socket_path.stat().st_ino
            pid_file = paths.run / PID_FILE
            pid_file.write_text(f"{os.getpid()}\n")
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            try:
                log.info("composerd %s serving on %s (pid %d)", VERSION, socket_path, os.getpid())
                if on_ready is not None:
                    on_ready()
                await stop.wait()
                log.info("stopping: containers keep running")
            finally:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
                orphans = runner.app[ORPHANS]
                await runner.cleanup()  # cancels handlers: their state changes become orphans
                if orphans:  # let them finish before the engine closes
                    await asyncio.wait(set(orphans), timeout=ORPHAN_GRACE)
                with contextlib.suppress(FileNotFoundError):
                    if socket_path.stat().st_ino == ino:
                        socket_path.unlink()
                with contextlib.suppress(FileNotFoundError):
                    pid_file.unlink()
        finally:
            close = getattr(engine, "close", None)
            if close is not None:
                res = close()
                if inspect.isawaitable(res):
                    await res
    finally:
        os.close(lock_fd)


def load_engine_factory(spec: str | None = None) -> EngineFactory:
    """`module:attr.path` -> the callable; default `runtime.engine:Engine.open` or $COMPOSERD_ENGINE."""
    spec = spec or os.environ.get(ENGINE_ENV) or DEFAULT_ENGINE
    module, _, attr = spec.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)

    async def factory(paths: Paths) -> EngineAPI:
        res = obj(paths)
        return await res if inspect.isawaitable(res) else res  # type: ignore[no-any-return]

    return factory

