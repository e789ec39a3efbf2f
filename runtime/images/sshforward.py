"""An ssh agent forwarded into one build step (RUN --mount=type=ssh).

The step does not get the agent's own socket: it gets a socket of ours, made in the step's
scratch folder (outside the layer) with the mount's mode and owner, that relays every
connection to the agent. So the mount's `mode`, `uid` and `gid` hold whatever the agent
socket's own permissions are, and the agent is reachable only while the step runs: closing
the relay cuts every connection a left-over process still holds (BuildKit, too, serves the
agent through a socket of its own that ends with the step).
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from pathlib import Path

from runtime.tasks import settle

CHUNK = 64 << 10


class AgentRelay:
    """A unix socket at `path` (mode, owner as given) relaying to the agent at `agent`."""

    def __init__(self, path: Path, agent: str, *, mode: int, uid: int, gid: int) -> None:
        self.path = path
        self.agent = agent
        self.mode, self.uid, self.gid = mode, uid, gid
        self._server: asyncio.base_events.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(self.path))
            os.chown(self.path, self.uid, self.gid)
            os.chmod(self.path, self.mode)
            self._server = await asyncio.start_unix_server(self._serve, sock=sock)
        except BaseException:
            sock.close()
            raise

    def stop(self) -> None:
        """Stop listening, cut every relayed connection, remove the socket (synchronous: a
        caller being cancelled still leaves nothing open)."""
        if self._server is not None:
            self._server.close()
        for task in self._pipes:
            task.cancel()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def close(self) -> None:
        """stop(), then wait until the relayed connections have ended."""
        self.stop()
        for task in list(self._pipes):
            await settle(task)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        try:
            try:
                up_reader, up_writer = await asyncio.open_unix_connection(self.agent)
            except OSError:
                return  # the agent went away: the client sees its connection closed
            try:
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            finally:
                up_writer.close()
        finally:
            writer.close()
            self._pipes.discard(task)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:
        pass
