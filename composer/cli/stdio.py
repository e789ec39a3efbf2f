"""Our stdin into a container and its output onto our stdout/stderr, as bytes, as they come:
what `exec`, `run` and `attach` share (runtime.attach streams).

    code = await session(stream, stdin_fd=0)     # exec: input until EOF, output until EXIT

Input is read in chunks and written one after the other (`stream.write` returns when the
daemon took them), so a 100 MB `exec -T db mysql < dump.sql` arrives whole and in order, and
a container that reads slowly slows us down instead of piling the file up in memory. A pipe
or terminal is watched with the event loop; a regular file (or /dev/null), which epoll
refuses, is read in a worker thread -- such a read never waits for a user.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

from composer.cli.blockingio import READ_SIZE, stdin_fd, write_output
from composer.errors import STATUS_UNKNOWN, DaemonLost

__all__ = ["READ_SIZE", "copy_input", "copy_output", "read_chunks", "session", "stdin_fd",
           "write_output", "status_after_break"]


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def read_chunks(fd: int) -> AsyncIterator[bytes]:
    """What arrives on `fd` until EOF (or an error reading it)."""
    loop = asyncio.get_running_loop()
    pollable = True
    try:
        loop.add_reader(fd, lambda: None)
        loop.remove_reader(fd)
    except (PermissionError, OSError, ValueError):
        pollable = False
    while True:
        if pollable:
            ready: asyncio.Future[None] = loop.create_future()
            loop.add_reader(fd, _wake, ready)
            try:
                await ready
            finally:
                loop.remove_reader(fd)
            try:
                data = os.read(fd, READ_SIZE)
            except BlockingIOError:
                continue
            except OSError:
                return
        else:
            try:
                data = await asyncio.to_thread(os.read, fd, READ_SIZE)
            except OSError:
                return
        if not data:
            return
        yield data


async def copy_input(fd: int, stream: Any, *, close: bool,
                     filter: Callable[[bytes], bytes] | None = None) -> None:
    """`fd` into the stream until EOF; then end the container's stdin if `close`."""
    async for data in read_chunks(fd):
        if filter is not None:
            data = filter(data)
        if data:
            await stream.write(data)
    if close:
        await stream.close_stdin()


async def copy_output(stream: Any) -> None:
    """Output until the end of the run (an EXIT frame) or of the stream."""
    while (item := await stream.read()) is not None:
        write_output(*item)


async def session(stream: Any, in_fd: int) -> int:
    """exec without a tty: input from `in_fd` (-1: none, stdin closed at once) while the
    output goes to ours; returns the command's exit code."""
    feeder = asyncio.ensure_future(
        copy_input(in_fd, stream, close=True) if in_fd >= 0 else stream.close_stdin())
    try:
        await copy_output(stream)
    except BrokenPipeError:  # our reader left (`| head -1`): as a shell pipeline would
        return 141
    finally:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await feeder
        await stream.close()
    return stream.exit_code if stream.exit_code is not None else 255


async def status_after_break(engine: Any, ref: str, lost: str = STATUS_UNKNOWN,
                             lost_code: int = 255) -> int:
    """The exit code of container `ref` whose stream ended before its EXIT: composerd's
    answer, or DaemonLost(`lost`) when composerd is gone (exit 255 by default, as ssh's
    lost connection: not a code the command could have given)."""
    from runtime.calls import DaemonUnavailable

    try:
        return int(await engine.wait_container(ref))
    except DaemonUnavailable as e:
        raise DaemonLost(lost, exit_code=lost_code) from e
