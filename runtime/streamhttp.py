"""Plain HTTP/1.1 requests to composerd over asyncio unix streams, for runtime.client.Client.

Client's request/response calls (create, start, stop, remove, inspect, list...) are one
request and one JSON answer each. They go through this pool of keep-alive connections
rather than aiohttp: importing aiohttp costs ~100-130 ms, a quarter of an `up -d` of ten
services, and these calls need none of it. aiohttp stays for what needs it (JSON-line
streams, uploads, websockets) and is imported on their first use.

    pool = Pool(socket_path)
    status, content_type, body = await pool.request("GET", "/containers?all=1", None, {})
    await pool.close()

Each request takes an idle connection or opens one (the scheduler runs up to 8 calls at
once: one connection each); a connection goes back to the pool only once its answer was
read whole and the server keeps it. A request cancelled half way closes its connection,
so a late answer can't be read as the next request's.
"""
from __future__ import annotations

import asyncio
from pathlib import Path

from runtime.unixhttp import MAX_HEADERS, MAX_LINE, HTTPError, parse_header, parse_status

CONNECT_TIMEOUT = 10.0  # seconds, as Client's aiohttp sock_connect


class ConnectFailed(ConnectionError):
    """The connect to the socket failed: `os_error` says why (no daemon, no access)."""

    def __init__(self, os_error: OSError) -> None:
        super().__init__(str(os_error))
        self.os_error = os_error


class _Unanswered(HTTPError):
    """The connection ended before any byte of the answer."""


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        self.writer.close()


class Pool:
    def __init__(self, socket_path: Path | str, *, host: str = "composerd",
                 connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self.socket_path = str(socket_path)
        self.host = host
        self.connect_timeout = connect_timeout
        self._idle: list[_Conn] = []

    async def _connect(self) -> _Conn:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(self.socket_path, limit=MAX_LINE),
                self.connect_timeout)
        except TimeoutError:
            raise ConnectFailed(TimeoutError(f"no answer within {self.connect_timeout:g}s")) \
                from None
        except OSError as e:
            raise ConnectFailed(e) from None
        return _Conn(reader, writer)

    async def request(self, method: str, target: str, body: bytes | None,
                      headers: dict[str, str]) -> tuple[int, str, bytes]:
        """(status, content type without parameters, body). ConnectFailed when the socket
        can't be reached; another ConnectionError (HTTPError) when a connection breaks."""
        conn = self._idle.pop() if self._idle else None
        reused = conn is not None
        if conn is None:
            conn = await self._connect()
        try:
            try:
                answer, keep = await self._exchange(conn, method, target, body, headers)
            except _Unanswered:
                if not reused:
                    raise HTTPError("the server closed the connection without an answer") from None
                # the server had closed this idle keep-alive connection before our request
                # came: it did nothing of it, so once more on a new connection
                conn.close()
                conn = await self._connect()
                answer, keep = await self._exchange(conn, method, target, body, headers)
            except asyncio.IncompleteReadError:
                raise HTTPError("the connection ended before the whole answer came") from None
        except BaseException:
            conn.close()
            raise
        if keep:
            self._idle.append(conn)
        else:
            conn.close()
        return answer

    async def _exchange(self, conn: _Conn, method: str, target: str, body: bytes | None,
                        headers: dict[str, str]) -> tuple[tuple[int, str, bytes], bool]:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        try:
            conn.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))
            await conn.writer.drain()
            first = await self._line(conn.reader)
        except (BrokenPipeError, ConnectionResetError):
            raise _Unanswered from None
        if not first:
            raise _Unanswered
        reader = conn.reader
        while True:
            status = self._status(first)
            head = await self._headers(reader)
            if not 100 <= status < 200:
                break
            first = await self._line(reader)
        ctype = head.get("content-type", "").split(";")[0].strip().lower()
        keep = head.get("connection", "").lower() != "close"
        if method == "HEAD" or status in (204, 304):
            return (status, ctype, b""), keep
        if "chunked" in head.get("transfer-encoding", "").lower():
            return (status, ctype, await self._chunked(reader)), keep
        length = head.get("content-length")
        if length is None:
            return (status, ctype, await reader.read()), False  # until the connection ends
        try:
            n = int(length)
        except ValueError:
            raise HTTPError(f"invalid Content-Length {length!r}") from None
        return (status, ctype, await reader.readexactly(n)), keep

    @staticmethod
    async def _line(reader: asyncio.StreamReader) -> bytes:
        try:
            return await reader.readline()
        except ValueError:  # longer than the limit
            raise HTTPError("a line of the answer is too long") from None

    @staticmethod
    def _status(line: bytes) -> int:
        return parse_status(line)[0]

    async def _headers(self, reader: asyncio.StreamReader) -> dict[str, str]:
        out: dict[str, str] = {}
        for _ in range(MAX_HEADERS + 1):
            if not parse_header(await self._line(reader), out):
                return out
        raise HTTPError(f"more than {MAX_HEADERS} headers")

    async def _chunked(self, reader: asyncio.StreamReader) -> bytes:
        parts: list[bytes] = []
        while True:
            line = await self._line(reader)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise HTTPError(f"invalid chunk size {line[:40]!r}") from None
            if size == 0:
                while (trailer := await self._line(reader)) not in (b"\r\n", b"\n"):
                    if not trailer:
                        raise HTTPError("the connection ended in the trailers")
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            if await self._line(reader) not in (b"\r\n", b"\n"):
                raise HTTPError("the connection ended inside a chunk")

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
        for conn in idle:
            try:
                await conn.writer.wait_closed()
            except OSError:
                pass
