"""composerd's socket: bind it private (0600, or 0660 root:composer), serve the app on it,
and tell a live socket from a stale one left by a daemon that died.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import stat
from pathlib import Path

from runtime import access
from runtime.api import EngineAPI
from runtime.daemon.app import create_app
from runtime.daemon.weblib import web
from runtime.errors import EngineError
from runtime.unixsock import bind_private

log = logging.getLogger("composerd")


class DaemonError(EngineError):
    """The daemon itself cannot start: already running, socket path taken, not root."""


def bind_socket(path: Path, gid: int | None = None) -> socket.socket:
    """Bind a unix socket at `path` created 0600 (umask during bind: no window where it is
    open); with an access group `gid` it becomes 0660 root:group afterwards (runtime.access)."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        bind_private(sock, str(path))
    except OSError as e:
        sock.close()
        raise DaemonError(
            f"cannot bind the socket {path}: {e.strerror.lower() if e.strerror else e}"
        ) from None
    access.share_socket(path, gid)
    sock.setblocking(False)
    return sock


async def serve(
    engine: EngineAPI, socket_path: Path, *, debug: bool = False, shutdown_timeout: float = 1.0
) -> web.AppRunner:
    """Start serving `engine` on `socket_path`; stop with `await runner.cleanup()`."""
    runner = web.AppRunner(
        create_app(engine),
        handler_cancellation=True,  # a client that disconnects cancels its request (wait, logs -f)
        shutdown_timeout=shutdown_timeout,
        access_log=log if debug else None,
    )
    await runner.setup()
    sock = bind_socket(socket_path, access.access_gid())
    try:
        await web.SockSite(runner, sock).start()
    except BaseException:
        sock.close()
        await runner.cleanup()
        raise
    return runner


async def socket_answers(path: Path) -> bool:
    """True if something accepts connections on `path`; remove it if it is a stale socket."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return False
    if not stat.S_ISSOCK(st.st_mode):
        raise DaemonError(f"{path} exists and is not a socket: remove it or pass another --socket")
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), 2)
    except TimeoutError:  # a listener too busy to accept is still a listener
        return True
    except (ConnectionRefusedError, FileNotFoundError):
        log.info("removing stale socket %s", path)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return False
    writer.close()
    return True

