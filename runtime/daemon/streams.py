"""How composerd answers with more than one JSON body: JSON-lines streams (logs, events,
build, pull), tar streams (archive, export) and the attach websocket relay. An error found
before the headers go out is a proper status; after, it ends the stream as the client
expects (an `{"error": ...}` line, a cut tar, a closed websocket).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from runtime import rpc
from runtime.attach import AttachStream, frame, split_frames
from runtime.daemon.weblib import WSCloseCode, WSMsgType, web
from runtime.errors import EngineError
from runtime.tasks import cancel_and_wait

log = logging.getLogger("composerd")

_END: Any = object()


async def client_input(ws: web.WebSocketResponse, stream: AttachStream,
                       msg: Any) -> bool:
    """Pass one websocket message of a client (attach frames: stdin, its end, a resize) to
    `stream`; False when the relay ends: the client closed or broke the stream, or sent what
    is not frames (the websocket is closed with UNSUPPORTED_DATA)."""
    if msg.type != WSMsgType.BINARY:
        return False
    try:
        for kind, payload in split_frames(bytearray(msg.data)):
            await stream.send_frame(kind, payload)
    except ValueError as e:
        await ws.close(code=WSCloseCode.UNSUPPORTED_DATA, message=str(e).encode())
        return False
    return True

async def _next(it: AsyncIterator[Any]) -> Any:
    try:
        return await anext(it)
    except StopAsyncIteration:
        return _END


async def json_lines(request: web.Request, items: AsyncIterator[Any]) -> web.StreamResponse:
    """Write `items` as JSON lines; an error after the headers went out becomes an error line."""
    it = aiter(items)
    # Take the first step before answering: an async generator runs up to its first await,
    # so it has subscribed (events) or failed (unknown container) before the client sees
    # the headers -- the client may act as soon as `open()` returns and must miss nothing.
    first = asyncio.ensure_future(_next(it))
    try:
        await asyncio.sleep(0)
        if first.done() and isinstance(first.exception(), EngineError):
            await first  # raises: a proper status code, not a broken stream
        resp = web.StreamResponse(headers={"Content-Type": rpc.STREAM_CONTENT_TYPE})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        try:
            item = await first
            while item is not _END:
                await resp.write(rpc.encode(item) + b"\n")
                item = await _next(it)
        except EngineError as e:
            await resp.write(json.dumps({"error": rpc.error_body(e)}).encode() + b"\n")
        except ConnectionError:  # the client went away
            return resp
        except Exception as e:
            log.exception("%s %s failed while streaming", request.method, request.path)
            body = {
                "message": f"internal error in composerd: {type(e).__name__}: {e}",
                "kind": "EngineError",
                "subject": None,
            }
            await resp.write(json.dumps({"error": body}).encode() + b"\n")
        with contextlib.suppress(ConnectionError):
            await resp.write_eof()
        return resp
    finally:
        if not first.done():
            await cancel_and_wait(first)
        aclose = getattr(it, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()



async def send_tar(request: web.Request, chunks: AsyncIterator[bytes],
                    headers: dict[str, str]) -> web.StreamResponse:
    """Stream tar bytes; an error after the headers went out cuts the response short (the
    client sees a broken transfer, the log says why)."""
    resp = web.StreamResponse(headers={"Content-Type": rpc.TAR_CONTENT_TYPE, **headers})
    resp.enable_chunked_encoding()
    try:
        await resp.prepare(request)
        async for chunk in chunks:
            await resp.write(chunk)
        await resp.write_eof()
    except ConnectionError:
        pass  # the client went away
    except Exception:
        log.exception("%s %s failed while streaming", request.method, request.path)
        if request.transport is not None:
            request.transport.close()  # no terminating chunk: the client knows it broke
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
    return resp



CLIENT_LINGER = 10.0  # s a websocket client has to close after the end of its stream


def websocket() -> web.WebSocketResponse:
    return web.WebSocketResponse(max_msg_size=rpc.MAX_BODY, timeout=CLIENT_LINGER)


async def relay(request: web.Request, stream: AttachStream,
                ws: web.WebSocketResponse | None = None) -> web.StreamResponse:
    """Relay `stream` on a websocket until either side ends; the stream is closed after.

    One task reads the websocket, and it is the one that closes it: aiohttp's close() from
    another task while a receive() waits drops the transport without waiting for the
    client's CLOSE, so a client write racing the end (CLOSE_IN) failed and the client's loop
    dropped the EXIT frame it had not read yet. Closed from the reader, close() sends CLOSE
    and reads (discarding late input) until the client answers, at most CLIENT_LINGER.
    `ws`: the websocket when the caller upgraded already (exec: before the command started)."""
    ws = ws if ws is not None else websocket()
    recv: asyncio.Future[Any] | None = None
    out: asyncio.Future[None] | None = None
    try:
        if not ws.prepared:
            await ws.prepare(request)

        async def output() -> None:
            while (item := await stream.recv_frame()) is not None:
                await ws.send_bytes(frame(*item))

        out = asyncio.ensure_future(output())
        while True:
            recv = recv or asyncio.ensure_future(ws.receive())
            await asyncio.wait({recv, out}, return_when=asyncio.FIRST_COMPLETED)
            if not recv.done():
                break  # the container's output ended: so does the client's stream
            msg, recv = recv.result(), None
            if not await client_input(ws, stream, msg):
                break  # the client closed (aiohttp answered its CLOSE) or broke the stream
    finally:
        # aiohttp cancels this handler when the connection goes (the client closed), and
        # cancel_and_wait passes that cancellation on: the stream is closed whatever happens
        try:
            for task in (recv, out):  # no receive() may be pending when close() runs
                if task is not None:
                    await cancel_and_wait(task)
        finally:
            await stream.close()
            await ws.close()
    return ws

