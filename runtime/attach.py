"""Attach: a live connection to a running container's stdio, as `docker attach`.

`AttachStream` is what `EngineAPI.attach_container` returns, in-process (`AttachClient`, a
connection to the container's `attach.sock`, served by the monitor) or over composerd (`runtime.client.WsAttach`, a
websocket the daemon relays to the same socket). Both carry the frames of
runtime.process.stdio (defined below), and the daemon relays them frame by frame:

    stream = await engine.attach_container(ref, logs=True)
    await stream.write(b"hello\\n"); await stream.close_stdin()
    while (item := await stream.read()) is not None:
        name, data = item          # ("stdout" | "stderr", bytes)
    await stream.close()           # the stream ended: the container exited (or detached)
"""
from __future__ import annotations

import json
import os
import socket
import struct
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import asyncio

# The wire format (the monitor's side is runtime.process.stdio; its docstring has the table).
SOCKET = "attach.sock"  # in the container's state dir
HEADER = struct.Struct(">BxxxI")  # Docker's: kind, 3 zero bytes, size (big-endian u32)
IN, OUT, ERR, CLOSE_IN, RESIZE, HELLO = 0, 1, 2, 3, 4, 5  # frame kinds
READY = 6  # monitor -> client: the HELLO was taken; every later output byte reaches the client
EXIT = 7  # engine -> client: a run ended; payload JSON {"exit_code": n, "restarting": bool}
STREAM_KIND = {"stdout": OUT, "stderr": ERR}
STREAMS = {OUT: "stdout", ERR: "stderr"}
CLIENT_KINDS = frozenset({IN, CLOSE_IN, RESIZE, HELLO})
BACKLOG = 64 * 1024  # output the monitor keeps per container for a replay
MAX_PENDING = 4 * 1024 * 1024  # output queued for a client that does not read, then dropped
MAX_FRAME = 1024 * 1024  # a larger frame is a protocol error
CHUNK = 64 * 1024  # input frame size: well under any message limit of a relay
BATCH = 8  # input frames sent together (512 KiB, under the relay's 1 MiB message limit)
READY_TIMEOUT = 10.0  # seconds the monitor has to answer HELLO when asked for READY


def frame(kind: int, data: bytes = b"") -> bytes:
    return HEADER.pack(kind, len(data)) + data


class ExitInfo(NamedTuple):
    """What an EXIT frame says: the run's exit code, whether a restart follows, and
    `cancelled`: no run ended, a pending restart was called off (`stop` during a backoff)."""

    code: int
    restarting: bool = False
    cancelled: bool = False


def exit_payload(code: int, restarting: bool = False, cancelled: bool = False) -> bytes:
    data: dict[str, object] = {"exit_code": code, "restarting": restarting}
    if cancelled:
        data["cancelled"] = True
    return json.dumps(data).encode()


def exit_frame(code: int, restarting: bool = False) -> bytes:
    return frame(EXIT, exit_payload(code, restarting))


def parse_exit(payload: bytes) -> ExitInfo:
    """The EXIT frame's payload; a garbled one reads as code 255, no restart."""
    try:
        data = json.loads(payload)
        return ExitInfo(int(data["exit_code"]), bool(data.get("restarting", False)),
                        bool(data.get("cancelled", False)))
    except (ValueError, KeyError, TypeError):
        return ExitInfo(255)


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
    """Frames in, frames out; subclasses move the bytes.

    `read()` gives output until the end of a run: None when an EXIT frame comes (its code is
    then `exit_code`) or when the stream has ended. A stream that follows a container across
    its runs (the engine's follow mode) goes on with the next run after an EXIT."""

    exit_code: int | None = None
    restarting: bool = False

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
            if kind == EXIT:
                info = parse_exit(data)
                if not info.cancelled:
                    self.exit_code, self.restarting = info.code, info.restarting
                    return None
        return None

    async def write(self, data: bytes) -> None:
        """Input for the container's stdin; returns once the bytes are on their way (the
        transport took them), which is the backpressure of a bulk copy."""
        frames = [frame(IN, data[i:i + CHUNK]) for i in range(0, len(data), CHUNK)]
        for i in range(0, len(frames), BATCH):  # a few frames per message: fewer round trips
            await self._send(b"".join(frames[i:i + BATCH]))

    async def close_stdin(self) -> None:
        await self._send(frame(CLOSE_IN))

    async def resize(self, rows: int, cols: int) -> None:
        await self._send(frame(RESIZE, struct.pack(">HH", rows, cols)))

    async def __aenter__(self) -> AttachStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _loop() -> asyncio.AbstractEventLoop:
    """The running loop, asyncio imported only here: the wire format and AttachStream above
    are also the quick CLI's (runtime.quickclient), which runs without asyncio."""
    import asyncio

    return asyncio.get_running_loop()


class AttachClient(AttachStream):
    """A connection to `<state_dir>/attach.sock` of a running container (the monitor's).

    A plain non-blocking socket with `sock_recv`/`sock_sendall`, not asyncio streams: when
    the monitor closes it as the container exits, a late write of ours fails (EPIPE) or the
    close resets the connection, and an asyncio StreamReader then raises that error before
    handing over the output it already holds. The kernel gives queued data before the
    error, so reading the socket itself loses nothing."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.frames: list[tuple[int, bytes]] = []
        self.broken = False  # our side can no longer write: the container has gone

    @classmethod
    async def open(cls, state_dir: str, logs: bool = False, ready: bool = False) -> AttachClient:
        """Connect (through /proc/self/fd: the path may be longer than sun_path allows) and
        say HELLO; `logs` replays the recent output first. With `ready`, return only once the
        monitor has answered READY: from then on no output can pass us by (the engine attaches
        this way before the command runs). OSError when nothing listens or answers."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        sock.setblocking(False)
        dfd = os.open(state_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            await _loop().sock_connect(sock, f"/proc/self/fd/{dfd}/{SOCKET}")
        except BaseException:
            sock.close()
            raise
        finally:
            os.close(dfd)
        stream = cls(sock)
        await stream._send(frame(HELLO, b"1" if logs else b"0"))
        if ready:
            import asyncio

            try:
                first = await asyncio.wait_for(stream._recv(), READY_TIMEOUT)
            except BaseException:
                sock.close()
                raise
            if first is None or first[0] != READY:
                sock.close()
                raise ConnectionError("the container's monitor did not answer the attach")
        return stream

    async def _send(self, data: bytes) -> None:
        if self.broken or self.sock.fileno() < 0:
            return
        try:
            await _loop().sock_sendall(self.sock, data)
        except OSError:  # EPIPE/ECONNRESET: the container has exited; its output is still read
            self.broken = True

    async def _recv(self) -> tuple[int, bytes] | None:
        loop = _loop()
        while not self.frames:
            if self.sock.fileno() < 0:
                return None
            try:
                chunk = await loop.sock_recv(self.sock, 65536)
            except OSError:  # ECONNRESET comes after every queued byte: the end
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk
            self.frames = split_frames(self.buf)
        return self.frames.pop(0)

    async def close(self) -> None:
        self.sock.close()
