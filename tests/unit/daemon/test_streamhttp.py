"""runtime.streamhttp, the transport of Client's plain calls: keep-alive, parallel requests,
framing, a connection the server closed while idle, cancellation, and what a failed connect
means to the user; and that Client's plain calls no longer import aiohttp."""
from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from runtime.calls import DaemonUnavailable
from runtime.client import Client
from runtime.streamhttp import ConnectFailed, Pool
from runtime.types import ContainerSpec
from runtime.unixhttp import HTTPError
from tests.unit.daemon.fake_engine import FakeEngine

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def raw_server(short_tmp: Path) -> AsyncIterator[Callable[[Handler], Awaitable[Path]]]:
    """A unix server whose connections `handler` answers byte by byte."""
    servers: list[asyncio.AbstractServer] = []

    async def start(handler: Handler) -> Path:
        path = short_tmp / f"s{len(servers)}.sock"
        servers.append(await asyncio.start_unix_server(handler, str(path)))
        return path

    yield start
    for s in servers:
        s.close()
        await s.wait_closed()


async def head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


def answer(body: bytes, *extra: str) -> bytes:
    lines = ["HTTP/1.1 200 OK", "Content-Type: application/json; charset=utf-8",
             f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def test_sequential_calls_share_one_connection(client: Client, socket_path: Path,
                                                     engine: FakeEngine) -> None:
    for _ in range(5):
        assert await client.ping()
    assert client._pool is not None and len(client._pool._idle) == 1  # noqa: SLF001


async def test_parallel_calls_each_get_a_connection_and_their_own_answer(
        client: Client, engine: FakeEngine) -> None:
    infos = await asyncio.gather(*(client.create_container(ContainerSpec(f"p-{i}", "busybox:latest"))
                                   for i in range(8)))
    assert sorted(i.name for i in infos) == [f"p-{i}" for i in range(8)]
    again = await asyncio.gather(*(client.inspect_container(i.id) for i in infos))
    assert [a.id for a in again] == [i.id for i in infos]
    assert client._pool is not None and 1 < len(client._pool._idle) <= 8  # noqa: SLF001


async def test_errors_keep_their_class_and_message(client: Client) -> None:
    from runtime.errors import NotFound

    with pytest.raises(NotFound, match="no such container: nosuch"):
        await client.inspect_container("nosuch")


async def test_a_chunked_answer_and_an_interim_one(raw_server: Callable[[Handler], Awaitable[Path]]) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await head(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n"
                     b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n"
                     b"3\r\n[1,\r\n2;ext=1\r\n2]\r\n0\r\nX-Trailer: 1\r\n\r\n")
        await writer.drain()
        await reader.read()  # until the client closes
        writer.close()

    pool = Pool(await raw_server(handler))
    try:
        assert await pool.request("GET", "/x", None, {}) == (200, "application/json", b"[1,2]")
    finally:
        await pool.close()


async def test_an_idle_connection_the_server_closed_is_replaced(
        raw_server: Callable[[Handler], Awaitable[Path]]) -> None:
    """aiohttp's server closes keep-alive connections after a while: the next request on
    such a connection got no byte of answer, so it is sent again on a new one."""
    requests: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(await head(reader))
        writer.write(answer(b'"one"'))
        await writer.drain()
        writer.close()  # as if idle for too long, after its answer

    pool = Pool(await raw_server(handler))
    try:
        assert (await pool.request("GET", "/a", None, {}))[2] == b'"one"'
        await asyncio.sleep(0.05)
        assert (await pool.request("POST", "/b", b"{}", {}))[2] == b'"one"'
        assert [r.split(b" ")[1] for r in requests] == [b"/a", b"/b"]
    finally:
        await pool.close()


async def test_a_connection_that_breaks_mid_answer_is_an_error(
        raw_server: Callable[[Handler], Awaitable[Path]]) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await head(reader)
        writer.write(answer(b'{"a": 1}')[:-3])
        await writer.drain()
        writer.close()

    pool = Pool(await raw_server(handler))
    try:
        with pytest.raises(HTTPError, match="before the whole answer"):
            await pool.request("GET", "/x", None, {})
        assert pool._idle == []  # noqa: SLF001
    finally:
        await pool.close()


async def test_a_cancelled_request_does_not_leave_its_connection_in_the_pool(
        raw_server: Callable[[Handler], Awaitable[Path]]) -> None:
    """Its late answer must not be read as the next request's."""
    ended: list[str] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    req = await head(reader)
                except asyncio.IncompleteReadError:
                    return
                if b"/slow" in req:
                    await asyncio.sleep(0.2)
                writer.write(answer(b'"' + req.split(b" ")[1] + b'"'))
                await writer.drain()
        except ConnectionError:
            return
        finally:
            writer.close()
            ended.append(req.split(b" ")[1].decode())

    pool = Pool(await raw_server(handler))
    try:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(pool.request("GET", "/slow", None, {}), 0.05)
        assert (await pool.request("GET", "/fast", None, {}))[2] == b'"/fast"'
    finally:
        await pool.close()
    for _ in range(100):  # both server sides end: the cancelled one once its answer is out
        if len(ended) == 2:
            break
        await asyncio.sleep(0.02)
    assert sorted(ended) == ["/fast", "/slow"]


async def test_no_daemon_is_a_connect_failure(short_tmp: Path) -> None:
    pool = Pool(short_tmp / "none.sock")
    with pytest.raises(ConnectFailed) as err:
        await pool.request("GET", "/_ping", None, {})
    assert isinstance(err.value.os_error, FileNotFoundError)
    async with Client(short_tmp / "none.sock") as c:
        with pytest.raises(DaemonUnavailable, match="composerd is not running on"):
            await c.ping()


def test_client_plain_calls_import_no_aiohttp() -> None:
    """`up -d` and `down` speak only plain calls: the CLI's Client (and the operations and
    scheduler above it) must not import aiohttp (~100-130 ms) or networkx (~75 ms)."""
    code = ("import sys, runtime.client, composer.operations, composer.cli.up_cmd; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'aiohttp', 'yarl', 'networkx'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
