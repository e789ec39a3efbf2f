"""runtime.wsclient (the CLI's stdlib websocket client) against a real aiohttp websocket
server in this process, and against a hand-written server for what aiohttp never sends
(fragments with a ping between them, masked or reserved-bit frames). The client blocks, so
it runs in a thread while the servers run on the test's loop."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import socket
import struct
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import WSMsgType, web

from runtime.wsclient import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    PONG,
    TEXT,
    HandshakeError,
    WebSocket,
    accept_key,
    encode_frame,
    mask,
)

Handler = Callable[[web.WebSocketResponse], Awaitable[None]]


@pytest.fixture
async def serve(short_tmp: Path) -> AsyncIterator[Callable[[Handler], Awaitable[Path]]]:
    """serve(handler) -> the socket of an aiohttp app whose /ws runs handler(ws)."""
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> Path:
        async def ws_route(request: web.Request) -> web.StreamResponse:
            if request.query.get("fail"):
                raise web.HTTPConflict(headers={"X-Composer-Error": '{"message": "busy"}'})
            ws = web.WebSocketResponse(autoping=False, autoclose=False, max_msg_size=0)
            await ws.prepare(request)
            await handler(ws)
            return ws

        app = web.Application()
        app.router.add_get("/ws", ws_route)
        runner = web.AppRunner(app)
        await runner.setup()
        path = short_tmp / f"ws{len(runners)}.sock"
        await web.UnixSite(runner, str(path)).start()
        runners.append(runner)
        return path

    yield start
    for r in runners:
        await r.cleanup()


async def until(cond: Callable[[], bool]) -> None:
    """The server's handler runs on our loop: give it the time to see what was sent."""
    for _ in range(500):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the server never saw it")


def test_mask_is_the_bytewise_xor_and_frames_are_masked() -> None:
    key = b"\x01\x80\xff\x10"
    data = os.urandom(1001)
    assert mask(key, data) == bytes(b ^ key[i % 4] for i, b in enumerate(data))
    assert mask(key, mask(key, data)) == data and mask(key, b"") == b""
    for n, head in ((5, 2), (126, 4), (70000, 10)):
        f = encode_frame(BINARY, b"x" * n, key=key)
        assert f[0] == 0x80 | BINARY and f[1] & 0x80  # FIN, and the mask bit
        assert len(f) == head + 4 + n and f[head:head + 4] == key


async def test_binary_messages_both_ways_large_and_small(serve: Callable[[Handler], Awaitable[Path]]) -> None:
    got: list[bytes] = []

    async def echo(ws: web.WebSocketResponse) -> None:
        while (msg := await ws.receive()).type == WSMsgType.BINARY:
            got.append(msg.data)
            await ws.send_bytes(msg.data)
        await ws.close()

    path = await serve(echo)
    payloads = [b"", b"a" * 125, b"b" * 126, os.urandom(65535), os.urandom(65536),
                os.urandom(3 * 1024 * 1024 + 7)]  # 7-, 16- and 64-bit lengths

    def talk() -> list[bytes | None]:
        ws = WebSocket.connect(path, "/ws", max_msg_size=8 * 1024 * 1024)
        out: list[bytes | None] = []
        for p in payloads:
            ws.send_binary(p)
            out.append(ws.recv())
        ws.close()
        return out

    assert await asyncio.to_thread(talk) == payloads
    assert got == payloads  # the server unmasked every frame to the same bytes


async def test_ping_is_answered_with_its_payload_and_close_codes_carry(
        serve: Callable[[Handler], Awaitable[Path]]) -> None:
    seen: list[tuple[WSMsgType, object]] = []

    async def server(ws: web.WebSocketResponse) -> None:
        await ws.ping(b"are you there")
        msg = await ws.receive()
        seen.append((msg.type, msg.data))
        await ws.send_bytes(b"after ping")
        await ws.close(code=4001, message=b"bye")  # returns with the client's answer
        seen.append((WSMsgType.CLOSE, ws.close_code))

    path = await serve(server)

    def talk() -> tuple[bytes | None, bytes | None, int | None]:
        ws = WebSocket.connect(path, "/ws")
        first, end = ws.recv(), ws.recv()
        ws.close()
        return first, end, ws.close_code

    assert await asyncio.to_thread(talk) == (b"after ping", None, 4001)
    await until(lambda: len(seen) == 2)
    assert seen == [(WSMsgType.PONG, b"are you there"), (WSMsgType.CLOSE, 4001)]


async def test_the_client_close_is_a_normal_close(serve: Callable[[Handler], Awaitable[Path]]) -> None:
    seen: list[tuple[WSMsgType, object]] = []

    async def server(ws: web.WebSocketResponse) -> None:
        msg = await ws.receive()
        seen.append((msg.type, msg.data))

    path = await serve(server)
    await asyncio.to_thread(lambda: WebSocket.connect(path, "/ws").close())
    await until(lambda: len(seen) == 1)
    assert seen == [(WSMsgType.CLOSE, 1000)]


async def test_text_and_oversize_messages_end_the_stream_with_their_codes(
        serve: Callable[[Handler], Awaitable[Path]]) -> None:
    codes: list[object] = []

    async def server(ws: web.WebSocketResponse) -> None:
        await ws.send_str("not ours")
        codes.append((await ws.receive()).data)

    async def big(ws: web.WebSocketResponse) -> None:
        await ws.send_bytes(b"x" * 2000)
        codes.append((await ws.receive()).data)

    text_path, big_path = await serve(server), await serve(big)

    def talk(path: Path) -> tuple[bytes | None, bool]:
        ws = WebSocket.connect(path, "/ws", max_msg_size=1000)
        got = ws.recv()
        again = ws.recv()  # stays ended
        ws.close()
        return got, again is None

    assert await asyncio.to_thread(talk, text_path) == (None, True)
    assert await asyncio.to_thread(talk, big_path) == (None, True)
    await until(lambda: len(codes) == 2)
    assert codes == [1003, 1009]


async def test_a_refused_upgrade_keeps_its_status_and_headers(
        serve: Callable[[Handler], Awaitable[Path]]) -> None:
    async def never(ws: web.WebSocketResponse) -> None:
        raise AssertionError("not upgraded")

    path = await serve(never)
    with pytest.raises(HandshakeError) as failed:
        await asyncio.to_thread(WebSocket.connect, path, "/ws?fail=1")
    assert failed.value.status == 409
    assert failed.value.headers["x-composer-error"] == '{"message": "busy"}'
    with pytest.raises(HandshakeError) as missing:
        await asyncio.to_thread(WebSocket.connect, path, "/nosuch")
    assert missing.value.status == 404


# ------------------------------------------------------------ a hand-written server


def _server_frame(opcode: int, payload: bytes, *, fin: bool = True, first: int = 0,
                  masked: bool = False) -> bytes:
    head = bytes([(0x80 if fin else 0) | opcode | first])
    n = len(payload)
    bit = 0x80 if masked else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if masked:
        key = b"abcd"
        return head + key + mask(key, payload)
    return head + payload


def _read_client_frame(conn: socket.socket) -> tuple[int, bytes]:
    def take(n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = conn.recv(n - len(out))
            assert chunk, "the client went away"
            out += chunk
        return out

    first, second = take(2)
    assert second & 0x80, "a client frame must be masked"
    n = second & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", take(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", take(8))
    key = take(4)
    return first & 0x0F, mask(key, take(n))


def _raw_server(path: Path, frames: bytes, answers: list[tuple[int, bytes]],
                count: int) -> threading.Thread:
    """Accept one client, upgrade it, send `frames`, collect `count` of its frames."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)

    def run() -> None:
        conn, _ = listener.accept()
        with conn, listener:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
                       if line.lower().startswith(b"sec-websocket-key:"))
            accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
                                      .digest())
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
                         + frames)
            for _ in range(count):
                answers.append(_read_client_frame(conn))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_fragments_are_joined_around_a_ping_and_a_pong(short_tmp: Path) -> None:
    path = short_tmp / "raw.sock"
    part = os.urandom(70000)
    frames = (_server_frame(BINARY, part, fin=False) + _server_frame(PING, b"p1")
              + _server_frame(CONTINUATION, b"middle", fin=False) + _server_frame(PONG, b"x")
              + _server_frame(CONTINUATION, b"end") + _server_frame(CLOSE, struct.pack("!H", 1000)))
    answers: list[tuple[int, bytes]] = []
    t = _raw_server(path, frames, answers, 2)
    ws = WebSocket.connect(path, "/ws")
    assert ws.recv() == part + b"middleend"
    assert ws.recv() is None and ws.close_code == 1000
    ws.close()
    t.join(5)
    assert answers == [(PONG, b"p1"), (CLOSE, struct.pack("!H", 1000))]


@pytest.mark.parametrize("bad", [
    _server_frame(BINARY, b"hidden", masked=True),  # servers must not mask
    _server_frame(BINARY, b"rsv", first=0x40),  # no extension was agreed
    _server_frame(CONTINUATION, b"orphan"),  # a continuation of nothing
    _server_frame(PING, b"p", fin=False),  # a fragmented control frame
    _server_frame(BINARY, b"a", fin=False) + _server_frame(TEXT, b"b"),  # a message inside one
])
def test_protocol_errors_end_the_stream_with_1002(short_tmp: Path, bad: bytes) -> None:
    path = short_tmp / "raw.sock"
    answers: list[tuple[int, bytes]] = []
    t = _raw_server(path, bad, answers, 1)
    ws = WebSocket.connect(path, "/ws")
    assert ws.recv() is None
    ws.close()
    t.join(5)
    assert answers == [(CLOSE, struct.pack("!H", 1002))]


def test_a_wrong_accept_key_is_refused(short_tmp: Path) -> None:
    path = short_tmp / "liar.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)

    def lie() -> None:
        conn, _ = listener.accept()
        with conn, listener:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         b"Sec-WebSocket-Accept: " + accept_key(b"other").encode() + b"\r\n\r\n")
            conn.recv(1)

    t = threading.Thread(target=lie, daemon=True)
    t.start()
    with pytest.raises(HandshakeError, match="not a websocket upgrade"):
        WebSocket.connect(path, "/ws")
    t.join(5)


async def test_aiohttp_client_and_ours_see_the_same_server(
        serve: Callable[[Handler], Awaitable[Path]]) -> None:
    """The reference: aiohttp's own client gets what ours gets from one server script."""
    async def script(ws: web.WebSocketResponse) -> None:
        for size in (0, 10, 70000):
            await ws.send_bytes(bytes(range(256)) * (size // 256) + b"z" * (size % 256))
        await ws.close(code=4000)
        await ws.receive()

    path = await serve(script)
    async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(path))) as s, \
            s.ws_connect("http://composerd/ws") as theirs:
        reference = [(await theirs.receive()).data for _ in range(3)]
        await theirs.receive()

    def ours() -> list[bytes | None]:
        ws = WebSocket.connect(path, "/ws")
        out = [ws.recv() for _ in range(4)]
        ws.close()
        return out

    assert await asyncio.to_thread(ours) == [*reference, None]
