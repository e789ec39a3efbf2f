"""Blocking file work on its own thread, its bytes through a pipe to or from the event loop.

`cp` and `export` walk a container's files with blocking syscalls, some of them in a mount
namespace of their own: that work runs on a fresh thread (never the pool's: a thread that
changed namespace must end with its work), and a pipe carries the tar between it and the
loop, with the kernel's backpressure. If the loop side goes away the thread's next write
fails with EPIPE and it stops; if the thread fails, the loop side gets its exception once the
pipe ends.

    produced = produce(lambda out: write_tar(..., out))      # thread writes, loop reads
    async for chunk in produced: ...
    await consume(chunks, lambda src: extract_tar(..., src))  # loop writes, thread reads
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any, BinaryIO, TypeVar

from runtime.tasks import cancel_and_wait, settle

T = TypeVar("T")
CHUNK = 1 << 16


def run_thread(fn: Callable[[], T], name: str = "composer-files") -> asyncio.Future[T]:
    """Run `fn` on a new thread; the future resolves on the loop with its result."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()

    def settle(ok: bool, value: object) -> None:
        if fut.done():
            return
        if ok:
            fut.set_result(value)  # type: ignore[arg-type]
        else:
            fut.set_exception(value)  # type: ignore[arg-type]

    def body() -> None:
        try:
            result = fn()
        except BaseException as e:  # handed to the loop
            with contextlib.suppress(RuntimeError):  # the loop is gone
                loop.call_soon_threadsafe(settle, False, e)
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, True, result)

    threading.Thread(target=body, name=name, daemon=True).start()
    return fut


def _settle(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def _readable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    loop.add_reader(fd, _settle, ready)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


async def _writable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    loop.add_writer(fd, _settle, ready)
    try:
        await ready
    finally:
        loop.remove_writer(fd)


class Produced(AsyncIterator[bytes]):
    """The bytes a thread writes; `result` is what its function returned (after the end)."""

    def __init__(self, fd: int, done: asyncio.Future[object]) -> None:
        self.fd = fd
        self.done = done

    def __aiter__(self) -> Produced:
        return self

    async def __anext__(self) -> bytes:
        while self.fd >= 0:
            try:
                data = os.read(self.fd, CHUNK)
            except BlockingIOError:
                await _readable(self.fd)
                continue
            if data:
                return data
            self._close()
            await self.done  # raises what the thread raised
        raise StopAsyncIteration

    def _close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    async def aclose(self) -> None:
        """Stop reading: the thread's next write fails (EPIPE) and it ends."""
        self._close()
        await settle(self.done)  # how the thread ended does not matter; our cancellation does


def produce(fn: Callable[[BinaryIO], object], name: str = "composer-files") -> Produced:
    """Run `fn(out)` on a thread; iterate over what it writes to `out`."""
    r, w = os.pipe2(os.O_CLOEXEC)
    os.set_blocking(r, False)

    def body() -> object:
        with open(w, "wb", buffering=CHUNK) as out:
            return fn(out)

    try:
        done: asyncio.Future[object] = run_thread(body, name)
    except BaseException:
        os.close(r)
        os.close(w)
        raise
    return Produced(r, done)


async def consume(chunks: AsyncIterable[bytes], fn: Callable[[BinaryIO], T],
                  name: str = "composer-files") -> T:
    """Run `fn(src)` on a thread, `src` reading `chunks`; returns its result (or raises
    its error, also when it stopped reading early)."""
    r, w = os.pipe2(os.O_CLOEXEC)
    os.set_blocking(w, False)

    def body() -> T:
        with open(r, "rb", buffering=CHUNK) as src:
            result = fn(src)
            while src.read(CHUNK):  # a tar's zero padding after its end: drain it
                pass
            return result

    try:
        done = run_thread(body, name)
    except BaseException:
        os.close(r)
        os.close(w)
        raise
    try:
        async for chunk in chunks:
            view = memoryview(chunk)
            while view and not done.done():
                try:
                    view = view[os.write(w, view):]
                except BlockingIOError:
                    waiter = asyncio.ensure_future(_writable(w))
                    pending: set[asyncio.Future[Any]] = {waiter, done}
                    await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    await cancel_and_wait(waiter)
                except BrokenPipeError:
                    break
            if done.done():
                break
    finally:
        os.close(w)
    return await done
