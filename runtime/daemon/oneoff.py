"""`run`'s one-off container in one websocket (routes.RUN_ATTACHED): attached in follow mode,
started, its stdio relayed, and with `rm` removed before the client hears how it ended.

The CLI's quick `run` (composer.cli.quickrun) creates the container, then opens this; what
the full path does in four calls after the create (attach, start, wait, remove) is one
round trip, and the end is in the right order for `--rm`: the EXIT frame goes out only
once the container is gone, so when `composer run --rm` returns, `ps -a` no longer lists
it (as `docker run --rm`, whose CLI waits for the removal).

- errors before the upgrade are statuses (an unknown container: 404), as attach's;
- a start that fails (LaunchError: exec failed 127, not executable 126, else 125): what
  the container said (at most START_DRAIN seconds of it), else one stderr line
  `error: <message>` (the full path's), then EXIT with its code;
- the client closing first (a killed CLI): with `rm` the container is removed (force),
  so nothing stays behind; without, it runs on, as after a detach;
- start and remove run to their end even if the client goes (`complete`: handlers'
  _complete, which composerd waits for before it exits).
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from runtime import rpc
from runtime.api import EngineAPI
from runtime.attach import (
    ERR,
    EXIT,
    STREAMS,
    AttachStream,
    exit_payload,
    frame,
    parse_exit,
)
from runtime.daemon.streams import CLIENT_LINGER, client_input
from runtime.daemon.weblib import web
from runtime.errors import LaunchError
from runtime.tasks import cancel_and_wait

T = TypeVar("T")
START_DRAIN = 5.0  # s: what a container that failed to start said (as the full path's drain)
Complete = Callable[[Awaitable[Any]], Awaitable[Any]]


async def _drain_failed(ws: web.WebSocketResponse, stream: AttachStream) -> bool:
    """Relay what a container that could not start said, up to its EXIT; True if any."""
    said = False

    async def drain() -> None:
        nonlocal said
        while (item := await stream.recv_frame()) is not None:
            kind, data = item
            if kind == EXIT:
                return
            if kind in STREAMS:
                await ws.send_bytes(frame(kind, data))
                said = True

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(drain(), START_DRAIN)
    return said


async def run_attached(request: web.Request, engine: EngineAPI, ref: str, rm: bool,
                       complete: Complete) -> web.StreamResponse:
    stream = await engine.attach_container(ref, follow=True)  # 404 etc. before the upgrade
    ws = web.WebSocketResponse(max_msg_size=rpc.MAX_BODY, timeout=CLIENT_LINGER)
    code: int | None = None
    recv: asyncio.Future[Any] | None = None
    out: asyncio.Future[None] | None = None
    try:
        await ws.prepare(request)
        try:
            await complete(engine.start_container(ref))
        except LaunchError as e:  # its message came through the stream (or did not)
            if not await _drain_failed(ws, stream):
                await ws.send_bytes(frame(ERR, f"error: {e.message}\n".encode()))
            code = e.exit_code
            return ws

        async def output() -> None:
            nonlocal code
            while (item := await stream.recv_frame()) is not None:
                kind, data = item
                if kind == EXIT:
                    info = parse_exit(data)
                    if info.cancelled or info.restarting:
                        continue  # a one-off has restart "no": not its end
                    code = info.code
                    return  # held back until the removal
                await ws.send_bytes(frame(kind, data))

        out = asyncio.ensure_future(output())
        while True:  # as streams.relay: this task alone reads the websocket and closes it
            recv = recv or asyncio.ensure_future(ws.receive())
            await asyncio.wait({recv, out}, return_when=asyncio.FIRST_COMPLETED)
            if not recv.done():
                break  # the run ended
            msg, recv = recv.result(), None
            if not await client_input(ws, stream, msg):
                break  # the client closed or broke the stream
        if out.done() and not out.cancelled() and out.exception() is not None:
            raise out.exception()  # type: ignore[misc]
    finally:
        async def end() -> None:
            # a task of its own: when the client left, this handler is being cancelled and
            # every settle() in it would raise again (runtime.tasks), skipping the removal
            for task in (recv, out):
                if task is not None:
                    await cancel_and_wait(task)
            await stream.close()
            if rm:
                await engine.remove_container(ref, force=True, volumes=True)

        try:
            await complete(end())
            if code is not None and not ws.closed:
                await ws.send_bytes(frame(EXIT, exit_payload(code)))
        finally:
            await ws.close()
    return ws
