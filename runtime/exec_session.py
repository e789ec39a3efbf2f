"""An exec'd command's stdio as an attach stream (the frames of runtime.attach): what
`composer exec` without a terminal uses, so piped input reaches the command and its output
comes back as it is written, byte for byte, stdout and stderr apart.

    session = await engine.exec_attach(ref, ["sh", "-c", "wc -l"], stdin=True)
    await session.write(b"a\\nb\\n"); await session.close_stdin()
    while (item := await session.read()) is not None:
        name, data = item                 # ("stdout" | "stderr", bytes) as written
    session.exit_code                     # 0, once read() returned None

OUT/ERR frames come as the command writes (up to CHUNK bytes each); when both of its output
streams have ended, its exit code comes as one EXIT frame and the stream ends. IN frames go
to its stdin pipe as fast as the pipe takes them: `send_frame` returns once the bytes are in
the pipe, which is the backpressure a relay needs for a 100 MB `mysql < dump.sql`. CLOSE_IN
closes the pipe (a tty gets ^D), RESIZE sizes the pty. Closing the session before the
command ended kills it: nobody is left to read what it writes (Docker leaves such a command
running; we leave no strays).
"""
from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import struct
import termios
from collections import deque

from runtime.attach import (
    CHUNK,
    CLOSE_IN,
    ERR,
    EXIT,
    IN,
    OUT,
    RESIZE,
    AttachStream,
    exit_payload,
    split_frames,
)
from runtime.process.launcher import ExecProcess

READ_SIZE = 4 * CHUNK  # one read takes what a grown pipe holds; frames stay under MAX_FRAME


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class ExecSession(AttachStream):
    def __init__(self, proc: ExecProcess | None, tty: bool = False,
                 failure: tuple[int, bytes] | None = None) -> None:
        self.proc = proc
        self.tty = tty
        self.outputs: deque[tuple[int, int]] = deque()  # (fd, frame kind), served in turn
        self.stdin_fd = -1
        self.queued: list[tuple[int, bytes]] = []
        self.inbuf = bytearray()
        self.ended = False
        if proc is not None:
            if proc.stdout_fd >= 0:
                self.outputs.append((proc.stdout_fd, OUT))
            if proc.stderr_fd >= 0:
                self.outputs.append((proc.stderr_fd, ERR))
            self.stdin_fd = proc.stdout_fd if tty else proc.stdin_fd
        if failure is not None:  # the command never ran: its message, then its code
            code, message = failure
            self.queued = [(ERR, message), (EXIT, exit_payload(code))]

    @classmethod
    def finished(cls, code: int) -> ExecSession:
        """A stream that only says `code` (a detached exec: it runs on its own)."""
        session = cls(None)
        session.queued = [(EXIT, exit_payload(code))]
        return session

    @classmethod
    def failed(cls, code: int, message: str) -> ExecSession:
        """The stream of an exec that could not start (126/127 and Docker's message)."""
        return cls(None, failure=(code, (message.rstrip("\n") + "\n").encode()))

    # -- output
    async def _recv(self) -> tuple[int, bytes] | None:
        if self.queued:
            return self.queued.pop(0)
        if self.ended or self.proc is None:
            return None
        while self.outputs:
            for _ in range(len(self.outputs)):
                fd, kind = self.outputs[0]
                self.outputs.rotate(-1)  # stdout and stderr take turns: neither starves
                try:
                    data = os.read(fd, READ_SIZE)
                except BlockingIOError:
                    continue
                except OSError as e:
                    if e.errno != errno.EIO:  # EIO: a pty whose last writer has gone
                        raise
                    data = b""
                if data:
                    return kind, data
                self._output_ended(fd)
                break
            else:
                await self._wait(list(fd for fd, _ in self.outputs), writable=False)
        code = await self.proc.wait()
        self.ended = True
        return EXIT, exit_payload(code)

    def _output_ended(self, fd: int) -> None:
        self.outputs = deque((f, k) for f, k in self.outputs if f != fd)
        if fd != self.stdin_fd:  # a tty's master is also its input: kept until close()
            with contextlib.suppress(OSError):
                os.close(fd)
            if self.proc is not None:
                if fd == self.proc.stdout_fd:
                    self.proc.stdout_fd = -1
                elif fd == self.proc.stderr_fd:
                    self.proc.stderr_fd = -1

    async def _wait(self, fds: list[int], *, writable: bool) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        add, remove = (loop.add_writer, loop.remove_writer) if writable else \
            (loop.add_reader, loop.remove_reader)
        for fd in fds:
            add(fd, _wake, fut)
        try:
            await fut
        finally:
            for fd in fds:
                remove(fd)

    # -- input
    async def _send(self, data: bytes) -> None:
        self.inbuf += data
        for kind, payload in split_frames(self.inbuf):
            if kind == IN:
                await self._write_stdin(payload)
            elif kind == CLOSE_IN:
                self._close_stdin()
            elif kind == RESIZE and self.tty and self.stdin_fd >= 0 and len(payload) == 4:
                rows, cols = struct.unpack(">HH", payload)
                with contextlib.suppress(OSError):
                    fcntl.ioctl(self.stdin_fd, termios.TIOCSWINSZ,
                                struct.pack("HHHH", rows, cols, 0, 0))

    async def _write_stdin(self, data: bytes) -> None:
        view = memoryview(data)
        while view and self.stdin_fd >= 0:
            try:
                n = os.write(self.stdin_fd, view)
            except BlockingIOError:
                await self._wait([self.stdin_fd], writable=True)
                continue
            except OSError:  # EPIPE: the command closed its stdin or has exited
                self._drop_stdin()
                return
            view = view[n:]

    def _close_stdin(self) -> None:
        if self.stdin_fd < 0:
            return
        if self.tty:
            with contextlib.suppress(OSError):
                os.write(self.stdin_fd, b"\x04")  # EOF on the pty's line discipline
            return
        self._drop_stdin()

    def _drop_stdin(self) -> None:
        if self.tty or self.stdin_fd < 0:
            return
        with contextlib.suppress(OSError):
            os.close(self.stdin_fd)
        if self.proc is not None:
            self.proc.stdin_fd = -1
        self.stdin_fd = -1

    async def close(self) -> None:
        if self.proc is None:
            return
        if self.proc.exit_code is None and not self.ended:
            self.proc.kill()  # nobody reads it any more
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.proc.wait(), 5)
        self.proc.close()
        self.outputs.clear()
        self.stdin_fd = -1
        self.ended = True
