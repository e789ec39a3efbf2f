"""`exec -it`: run an exec prepared by the engine (ExecTarget) with a pty whose master end
relays to the caller's terminal. The monitor starts the process (setns into the
container, same cgroup, user, caps, seccomp); the session's bytes never pass the daemon.
"""
from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import struct
import termios

from runtime import serde
from runtime.api import ExecTarget
from runtime.process.config import ExecConfig
from runtime.process.launcher import Launcher
from runtime.terminal import raw_terminal


def _copy_winsize(src_fd: int, dst_fd: int) -> None:
    with contextlib.suppress(OSError):
        size = fcntl.ioctl(src_fd, termios.TIOCGWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
        fcntl.ioctl(dst_fd, termios.TIOCSWINSZ, size)


async def exec_interactive(target: ExecTarget, stdin_fd: int = 0, stdout_fd: int = 1) -> int:
    """Run it; relay stdin -> pty and pty -> stdout until it exits; return its exit code."""
    cfg = serde.from_dict(ExecConfig, target.config)
    proc = await Launcher(target.monitor).exec(target.pid, cfg)
    master = proc.stdout_fd
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    terminal = (raw_terminal(stdin_fd, lambda: _copy_winsize(stdin_fd, master))
                if os.isatty(stdin_fd) else contextlib.nullcontext())

    def from_pty() -> None:
        try:
            data = os.read(master, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: the last process holding the pty's other end has gone
            data = b""
        if not data:
            loop.remove_reader(master)
            done.set()
            return
        os.write(stdout_fd, data)

    def from_stdin() -> None:
        try:
            data = os.read(stdin_fd, 65536)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(stdin_fd)
            with contextlib.suppress(OSError):
                os.write(master, b"\x04")  # EOF on the pty's line discipline
            return
        with contextlib.suppress(OSError):
            os.write(master, data)

    loop.add_reader(master, from_pty)
    loop.add_reader(stdin_fd, from_stdin)
    try:
        with terminal:
            code = await proc.wait()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(done.wait(), 1.0)  # drain what it printed last
        return code
    finally:
        for fd in (master, stdin_fd):
            with contextlib.suppress(Exception):
                loop.remove_reader(fd)
        with contextlib.suppress(OSError):
            os.close(master)
