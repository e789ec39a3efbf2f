"""A wake-up when something changes in a directory: inotify(7) through ctypes (the standard
library has no binding), for `logs -f` to see a line within milliseconds instead of polling.

    watch = DirWatch.open("/var/lib/composer/containers/<id>")   # None-safe: see below
    await watch.wait(0.25)     # returns on a change in the directory, or after 0.25 s
    watch.close()

Only "something changed" is reported; the reader looks at the files itself. When inotify is
not available (no syscall, or the user's watch limit is reached) `open` returns a DirWatch
that just sleeps, so the caller polls instead.
"""
from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os

IN_MODIFY = 0x002
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
CHANGES = IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
POLL = 0.1  # seconds between looks when inotify is not there

_libc: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL | None:
    global _libc
    if _libc is None:
        with contextlib.suppress(OSError):
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return _libc


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class DirWatch:
    def __init__(self, fd: int) -> None:
        self.fd = fd  # -1: no inotify, wait() sleeps

    @classmethod
    def open(cls, directory: str) -> DirWatch:
        lib = _lib()
        if lib is None:
            return cls(-1)
        fd = lib.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            return cls(-1)
        if lib.inotify_add_watch(fd, os.fsencode(directory), CHANGES) < 0:
            os.close(fd)
            return cls(-1)
        return cls(fd)

    def _drain(self) -> bool:
        """Consume the queued events; True if there were any."""
        got = False
        while True:
            try:
                if not os.read(self.fd, 4096):
                    return got
                got = True
            except BlockingIOError:
                return got
            except OSError:
                return got

    async def wait(self, timeout: float) -> None:
        """Until a change in the directory (or `timeout` seconds)."""
        if self.fd < 0:
            await asyncio.sleep(min(timeout, POLL))
            return
        if self._drain():
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        loop.add_reader(self.fd, _wake, fut)
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            pass
        finally:
            loop.remove_reader(self.fd)
        self._drain()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
