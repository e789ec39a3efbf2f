"""`composer attach`: the terminal joined to a running service container's stdio, and the
relay `composer run` uses for its one-off container.

The bytes come through composerd's attach websocket (runtime.attach). On a terminal with a
tty container the terminal is raw (the container's line discipline does the work, ^C is a
byte to it) and its size follows SIGWINCH; the detach keys (ctrl-p,ctrl-q as Docker) leave
the container running. Without a tty, SIGINT/SIGTERM are sent to the container
(`--sig-proxy`, on by default as Docker).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import sys
from typing import Any

from composer import labels as L
from composer.cli.common import run, with_project
from composer.cli.stdio import copy_input, copy_output, status_after_break, stdin_fd
from composer.errors import ComposerError
from composer.operations import Project
from runtime.terminal import raw_terminal

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("attach", help="attach the terminal to a running service container")
    p.add_argument("--index", type=int, default=1, help="which container of the service")
    p.add_argument("--no-stdin", dest="no_stdin", action="store_true",
                   help="do not send the terminal's input to the container")
    p.add_argument("--sig-proxy", dest="sig_proxy", default="true", choices=("true", "false"),
                   help="send SIGINT/SIGTERM to the container (no tty); default true")
    p.add_argument("--detach-keys", dest="detach_keys", default=DEFAULT_DETACH_KEYS,
                   help=f"key sequence that detaches; default {DEFAULT_DETACH_KEYS}")
    p.add_argument("service")
    p.set_defaults(func=attach_cmd)


def parse_detach_keys(spec: str) -> bytes:
    """Docker's syntax: comma-separated `ctrl-<a-z|@|[|\\|]|^|_>` or single characters."""
    out = bytearray()
    for key in spec.split(","):
        key = key.strip()
        if len(key) == 1:
            out.append(ord(key))
        elif key.startswith("ctrl-") and len(key) == 6:
            c = key[5].lower()
            if "a" <= c <= "z":
                out.append(ord(c) - ord("a") + 1)
            elif c in "@[\\]^_":
                out.append(ord(c) - 64)
            else:
                raise ComposerError(f"--detach-keys: unknown key {key!r}, use e.g. ctrl-p,ctrl-q")
        else:
            raise ComposerError(f"--detach-keys: unknown key {key!r}, use e.g. ctrl-p,ctrl-q")
    return bytes(out)


def attach_cmd(args: argparse.Namespace) -> int:
    keys = parse_detach_keys(args.detach_keys)

    async def go(project: Project) -> int:
        cs = [c for c in await project.containers([args.service], all=False)
              if c.labels.get(L.CONTAINER_NUMBER) == str(args.index)]
        if not cs:
            raise ComposerError(f"service {args.service!r} is not running (container #{args.index})")
        info = cs[0]
        stream = await project.engine.attach_container(info.id)
        detached = await relay(project.engine, info.id, stream, tty=info.spec.tty,
                               stdin=not args.no_stdin and info.spec.stdin_open,
                               close_stdin=False, sig_proxy=args.sig_proxy == "true",
                               detach_keys=keys)
        if detached:
            return 0
        if stream.exit_code is not None:
            return stream.exit_code
        return await status_after_break(
            project.engine, info.id, lost_code=1, lost="the container keeps running; "
            f"`composer attach {args.service}` joins it again")

    return run(with_project(args, go, lock=False))


class _Detacher:
    """Finds the detach sequence in the input; holds back a partial match."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        if not self.keys:
            return data, False
        buf = self.held + data
        self.held = b""
        at = buf.find(self.keys)
        if at >= 0:
            return buf[:at], True
        for n in range(min(len(self.keys) - 1, len(buf)), 0, -1):
            if buf.endswith(self.keys[:n]):
                self.held = buf[-n:]
                return buf[:-n], False
        return buf, False


async def relay(engine: Any, ref: str, stream: Any, *, tty: bool, stdin: bool,
                close_stdin: bool, sig_proxy: bool = True,
                detach_keys: bytes = b"\x10\x11") -> bool:
    """Copy the terminal to the container and its output back until the output ends (the
    container exited: False) or the detach keys were typed (True)."""
    loop = asyncio.get_running_loop()
    in_fd = stdin_fd() if stdin else -1
    raw = in_fd >= 0 and tty and os.isatty(in_fd)
    detached = asyncio.Event()
    detacher = _Detacher(detach_keys if raw else b"")
    pending: set[asyncio.Future[Any]] = set()

    def spawn(coro: Any) -> None:
        fut = asyncio.ensure_future(coro)
        pending.add(fut)
        fut.add_done_callback(pending.discard)

    def resize() -> None:
        size = shutil.get_terminal_size()
        spawn(stream.resize(size.lines, size.columns))

    def keys(data: bytes) -> bytes:
        data, hit = detacher.feed(data)
        if hit:
            detached.set()
        return data

    def proxy(sig: signal.Signals) -> None:
        spawn(engine.kill_container(ref, sig.name))

    cleanup = contextlib.ExitStack()
    proxied: list[signal.Signals] = []
    if raw:
        cleanup.enter_context(raw_terminal(in_fd, resize))
    elif sig_proxy:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, proxy, sig)
            proxied.append(sig)
    feeder: asyncio.Future[None] | None
    if in_fd >= 0:
        feeder = asyncio.ensure_future(copy_input(in_fd, stream, close=close_stdin, filter=keys))
    else:  # we have no stdin at all: the container's ends now (if that is ours to say)
        feeder = asyncio.ensure_future(stream.close_stdin()) if close_stdin and stdin else None
    out_task = asyncio.ensure_future(copy_output(stream))
    detach_task = asyncio.ensure_future(detached.wait())
    try:
        await asyncio.wait({out_task, detach_task}, return_when=asyncio.FIRST_COMPLETED)
        if pending:
            await asyncio.wait(set(pending), timeout=1.0)
        if out_task.done() and not out_task.cancelled() and out_task.exception() is not None:
            raise out_task.exception()  # type: ignore[misc]
        return detached.is_set()
    finally:
        for task in (out_task, detach_task, feeder):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        for sig in proxied:
            loop.remove_signal_handler(sig)
        cleanup.close()  # the terminal as it was
        await stream.close()
        if detached.is_set():
            sys.stderr.write("\r\nread escape sequence\r\n" if raw else "read escape sequence\n")
