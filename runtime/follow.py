"""Follow mode of attach: one client's view of a container's stdio across all its runs.

`docker compose up` attaches to a container *before* starting it, so not a byte of a
one-shot's output is lost, and keeps showing a container that a restart policy (or
`restart`) brings back. The engine does the same with a `Follower`:

    engine.attach_container(ref, follow=True) -> Follower, registered on the container
    every start:  while the init waits for "go", the engine connects to the new run's attach
                  socket and waits for its READY (runtime.attach), then hands it to `run_started`:
                  the command cannot write a byte before that
    every exit:   `run_ended(code, restarting)` -> an EXIT frame after the run's output
    removal:      `end()` -> the stream ends

A container that already runs when the follower registers is joined live: only new output
(what `docker compose up` shows for a container it reuses). Frames wait in a bounded queue;
a client that stops reading stalls its attach connection, and the monitor drops a connection
that leaves MAX_PENDING bytes unread (the container is never slowed down by it).
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from runtime.attach import EXIT, STREAMS, AttachClient, AttachStream, exit_payload
from runtime.tasks import cancel_and_wait

QUEUE_FRAMES = 64  # frames held for a slow client before the pump stops reading the socket


class Follower(AttachStream):
    def __init__(self, on_close: Callable[[Follower], None] | None = None) -> None:
        self._frames: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue(QUEUE_FRAMES)
        self._events: asyncio.Queue[tuple[str, AttachClient | bytes | None]] = asyncio.Queue()
        self._conn: AttachClient | None = None
        self._live = asyncio.Event()  # a run is attached: input has somewhere to go
        self._on_close = on_close
        self._closed = False
        self._had_run = False
        self._pump = asyncio.get_running_loop().create_task(self._run())

    # -- the engine's side
    def run_started(self, conn: AttachClient) -> None:
        """A run began with `conn` connected (READY received, or joined live)."""
        if self._closed:
            asyncio.get_running_loop().create_task(conn.close())
            return
        self._events.put_nowait(("run", conn))

    def run_ended(self, code: int, restarting: bool, cancelled: bool = False) -> None:
        """The run's process exited with `code`; `restarting`: another run follows;
        `cancelled`: no run ended, the restart announced by the last one was called off."""
        if not self._closed:
            self._events.put_nowait(("exit", exit_payload(code, restarting, cancelled)))

    def end(self) -> None:
        """The container is gone: the stream ends after what is queued."""
        if not self._closed:
            self._events.put_nowait(("end", None))

    async def _run(self) -> None:
        try:
            while True:
                what, item = await self._events.get()
                if what == "run":
                    assert isinstance(item, AttachClient)
                    await self._copy(item)
                elif what == "exit":
                    assert isinstance(item, bytes)
                    await self._frames.put((EXIT, item))
                else:
                    break
        finally:
            try:
                self._frames.put_nowait(None)
            except asyncio.QueueFull:  # a reader that stopped reading: the end still gets in
                with contextlib.suppress(asyncio.QueueEmpty):
                    self._frames.get_nowait()
                self._frames.put_nowait(None)

    async def _copy(self, conn: AttachClient) -> None:
        self._conn = conn
        self._had_run = True
        self._live.set()
        try:
            while (got := await conn.recv_frame()) is not None:
                if got[0] in STREAMS:
                    await self._frames.put(got)
        finally:
            self._live.clear()
            self._conn = None
            await conn.close()

    # -- the client's side
    async def _recv(self) -> tuple[int, bytes] | None:
        if self._closed:
            return None
        got = await self._frames.get()
        if got is None:
            self._frames.put_nowait(None)  # later reads see the end too
        return got

    async def _send(self, data: bytes) -> None:
        """Input goes to the current run. Before the first run it waits for it (`run`
        attaches, then starts); between runs it is dropped, as a stopped container's
        stdin takes nothing."""
        if self._conn is None and not self._closed and not self._had_run:
            await self._live.wait()
        conn = self._conn
        if conn is not None:
            await conn._send(data)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._on_close is not None:
            self._on_close(self)
        await cancel_and_wait(self._pump)
        if self._conn is not None:
            await self._conn.close()
        self._live.set()  # a writer waiting for a run gives up
        while not self._events.empty():  # connections handed over but never pumped
            what, item = self._events.get_nowait()
            if what == "run" and isinstance(item, AttachClient):
                await item.close()
