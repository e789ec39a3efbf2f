"""Attach: a live connection to a running container's stdio, as `docker attach`.

`AttachStream` is what `EngineAPI.attach_container` returns, in-process (`ShimAttach`, a
connection to the shim's `attach.sock`) or over composerd (`runtime.client.WsAttach`, a
websocket the daemon relays to the same socket). Both carry the frames of
runtime.process.stdio, and the daemon relays them frame by frame:

    stream = await engine.attach_container(ref, logs=True)
    await stream.write(b"hello\\n"); await stream.close_stdin()
    while (item := await stream.read()) is not None:
        name, data = item          # ("stdout" | "stderr", bytes)
    await stream.close()           # the stream ended: the container exited (or detached)
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import struct

SOCKET = "attach.sock"
HEADER = struct.Struct(">BxxxI")
IN, OUT, ERR, CLOSE_IN, RESIZE, HELLO = 0, 1, 2, 3, 4, 5
STREAM_KIND = {"stdout": OUT, "stderr": ERR}
BACKLOG = 64 * 1024
MAX_PENDING = 4 * 1024 * 1024
MAX_FRAME = 1024 * 1024


def frame(kind: int, data: bytes = b"") -> bytes:
    return HEADER.pack(kind, len(data)) + data

STREAMS = {OUT: "stdout", ERR: "stderr"}
CHUNK = 64 * 1024  # input frame size: well under any message limit of a relay
CLIENT_KINDS = frozenset({IN, CLOSE_IN, RESIZE, HELLO})


def split_frames(buf: bytearray) -> list[tuple[int, bytes]]:
    """Take every complete frame off the front of `buf`; ValueError on an oversize frame."""
    out = []
    while len(buf) >= HEADER.size:
        kind, size = HEADER.unpack_from(buf)
        if size > MAX_FRAME:
            raise ValueError(f"attach frame of {size} bytes is larger than {MAX_FRAME}")
        if len(buf) < HEADER.size + size:
            break
        out.append((kind, bytes(buf[HEADER.size:HEADER.size + size])))
        del buf[:HEADER.size + size]
    return out


class AttachStream:
    """Frames in, frames out; subclasses move the bytes."""

    async def _send(self, data: bytes) -> None:
        raise NotImplementedError

    async def _recv(self) -> tuple[int, bytes] | None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def recv_frame(self) -> tuple[int, bytes] | None:
        """The next frame as it came (for a relay); None at the end."""
        return await self._recv()

    async def send_frame(self, kind: int, payload: bytes = b"") -> None:
        """Send one client frame (for a relay); ValueError for a kind clients may not send."""
        if kind not in CLIENT_KINDS or kind == HELLO:
            raise ValueError(f"attach frame kind {kind} is not input")
        await self._send(frame(kind, payload))

    async def read(self) -> tuple[str, bytes] | None:
        """The next piece of output as (stream name, bytes); None when the stream has ended."""
        while (item := await self._recv()) is not None:
            kind, data = item
            if kind in STREAMS:
                return STREAMS[kind], data
        return None

    async def write(self, data: bytes) -> None:
        for i in range(0, len(data), CHUNK):
            await self._send(frame(IN, data[i:i + CHUNK]))

    async def close_stdin(self) -> None:
        await self._send(frame(CLOSE_IN))

    async def resize(self, rows: int, cols: int) -> None:
        await self._send(frame(RESIZE, struct.pack(">HH", rows, cols)))

    async def __aenter__(self) -> AttachStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class ShimAttach(AttachStream):
    """A connection to `<state_dir>/attach.sock` of a running container's shim."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.buf = bytearray()
        self.frames: list[tuple[int, bytes]] = []

    @classmethod
    async def open(cls, state_dir: str, logs: bool = False) -> ShimAttach:
        """Connect (through /proc/self/fd: the path may be longer than sun_path allows) and
        say HELLO; `logs` replays the recent output first. OSError when nothing listens."""
        dfd = os.open(state_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            reader, writer = await asyncio.open_unix_connection(
                f"/proc/self/fd/{dfd}/{SOCKET}", limit=MAX_FRAME + HEADER.size)
        finally:
            os.close(dfd)
        stream = cls(reader, writer)
        await stream._send(frame(HELLO, b"1" if logs else b"0"))
        return stream

    async def _send(self, data: bytes) -> None:
        if self.writer.is_closing():
            return
        self.writer.write(data)
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    async def _recv(self) -> tuple[int, bytes] | None:
        while not self.frames:
            try:
                chunk = await self.reader.read(65536)
            except ConnectionError:
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk
            self.frames = split_frames(self.buf)
        return self.frames.pop(0)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
