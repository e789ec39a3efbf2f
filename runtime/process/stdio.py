"""A container's stdio in the monitor: output into the json log and to attached clients,
input from attached clients into the container's stdin. One `StdioPump` per container, all
driven by the monitor's single `Poll` loop (runtime.process.monitor): nothing here blocks,
so a container whose client or log reader stalls never holds up another container.

Every container has its `<state_dir>/attach.sock` (mode 0600, root only, like the daemon's
socket), served by the monitor. A client speaks frames (constants and `frame` in
runtime.attach, which the CLI imports without this package) with Docker's 8-byte header,
`kind, 0, 0, 0, size (big-endian u32)`, then `size` bytes:

    monitor -> client   OUT (1) stdout bytes (all of a tty's output), ERR (2) stderr bytes
    client -> monitor   HELLO (5) first, payload b"1" to replay the recent output (up to
                        BACKLOG bytes) before the live stream, b"0" for live only; the
                        monitor answers READY (6) before the replay: every byte after it is
                        sent; IN (0) bytes for stdin, CLOSE_IN (3) end of stdin (a tty gets
                        ^D), RESIZE (4) payload ">HH" rows, cols for the tty

The loop is single-threaded, so replay-then-live has no gap and no duplicate. When the
container's output ends (it exited) the pump takes the connections still pending, gives
HELLOs in flight HELLO_WAIT seconds and every client LINGER seconds to take what is queued
for it, then closes them: the stream's end is the container's end. Input waits in a buffer
while the container does not read (never blocks the loop); a client that does not read its
output for MAX_PENDING bytes is dropped.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import select
import socket
import struct
import termios
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from runtime.attach import (
    BACKLOG,
    CLOSE_IN,
    HEADER,
    HELLO,
    IN,
    MAX_FRAME,
    MAX_PENDING,
    READY,
    RESIZE,
    SOCKET,
    STREAM_KIND,
    frame,
)
from runtime.process.logs import JsonLogWriter
from runtime.unixsock import bind_private

HELLO_WAIT = 0.2  # seconds a client that connected as the output ended has to say HELLO
LINGER = 2.0  # seconds every client has, once the output ended, to take what is queued
Handler = Callable[[int, int], None]


class Poll:
    """One poll(2) loop over many fds, each with its handler(fd, events)."""

    def __init__(self) -> None:
        self.poller = select.poll()
        self.handlers: dict[int, Handler] = {}

    def register(self, fd: int, mask: int, handler: Handler) -> None:
        self.poller.register(fd, mask)
        self.handlers[fd] = handler

    def modify(self, fd: int, mask: int) -> None:
        self.poller.modify(fd, mask)

    def unregister(self, fd: int) -> None:
        if self.handlers.pop(fd, None) is not None:
            with contextlib.suppress(KeyError, OSError):
                self.poller.unregister(fd)

    def run_once(self, timeout: float | None) -> None:
        """Wait up to `timeout` seconds (None: until something happens) and dispatch."""
        try:
            events = self.poller.poll(None if timeout is None else max(0, int(timeout * 1000)))
        except InterruptedError:
            return
        for fd, ev in events:
            handler = self.handlers.get(fd)
            if handler is not None:
                handler(fd, ev)

    def run_until(self, done: Callable[[], bool], tick: float = 0.05) -> None:
        """Dispatch until `done()` (tests drive one pump this way)."""
        while not done():
            self.run_once(tick)


def listen(state_dir: str) -> socket.socket:
    """Bind `<state_dir>/attach.sock` (through /proc/self/fd: the path may be longer than
    sun_path allows) and listen; close-on-exec, so the container never holds it."""
    dfd = os.open(state_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        path = f"/proc/self/fd/{dfd}/{SOCKET}"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        bind_private(sock, path)
        sock.listen(16)
        sock.setblocking(False)
        return sock
    finally:
        os.close(dfd)


@dataclass
class _Client:
    sock: socket.socket
    ready: bool = False  # HELLO received
    paused: bool = False  # not read while the container's stdin is backed up
    inbuf: bytearray = field(default_factory=bytearray)
    outbuf: bytearray = field(default_factory=bytearray)


class StdioPump:
    """One container's stdio, driven by `poll` until the container's output is closed and its
    clients had their last words; then `on_closed()` is called (once).

    `readers` maps the container's output fds to their stream names; `stdin_fd` is where
    input goes (the write end of the stdin pipe, the pty master, or -1 when the container has
    no open stdin); `tty` says `stdin_fd` is a pty master."""

    def __init__(self, readers: dict[int, str], writer: JsonLogWriter, poll: Poll,
                 stdin_fd: int = -1, tty: bool = False, listener: socket.socket | None = None,
                 on_closed: Callable[[], None] | None = None) -> None:
        self.readers = dict(readers)
        self.writer = writer
        self.poll = poll
        self.stdin_fd = stdin_fd
        self.tty = tty
        self.listener = listener
        self.on_closed = on_closed
        self.clients: dict[int, _Client] = {}
        self.backlog: deque[tuple[int, bytes]] = deque()
        self.backlog_size = 0
        self.pending_in = bytearray()
        self.close_in = False  # CLOSE_IN came: close stdin when pending_in is written
        self.ending_since = 0.0  # monotonic time the output ended (0: still running)
        self.closed = False
        if stdin_fd >= 0:
            os.set_blocking(stdin_fd, False)
        for fd in self.readers:
            os.set_blocking(fd, False)
            poll.register(fd, select.POLLIN, self._event)
        if listener is not None:
            poll.register(listener.fileno(), select.POLLIN, self._event)

    # -- dispatch
    def _event(self, fd: int, ev: int) -> None:
        if fd in self.readers and ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
            self._read_output(fd)
        if self.listener is not None and fd == self.listener.fileno():
            self._accept()
        elif fd in self.clients:
            self._client_event(fd, ev)
        if fd == self.stdin_fd and fd not in self.readers and ev:
            self._flush_stdin()  # POLLOUT, or POLLERR: its reader has gone
        elif fd == self.stdin_fd and ev & select.POLLOUT:
            self._flush_stdin()
        if not self.readers and not self.closed:
            self.tick()

    def tick(self) -> None:
        """The output has ended: a client that connected just now still gets its replay;
        close once every client is served or the time is up."""
        now = time.monotonic()
        if not self.ending_since:
            self.ending_since = now
            while self.listener is not None:  # connections made before the end still count
                try:
                    sock, _ = self.listener.accept()
                except OSError:
                    break
                self._add_client(sock)
        waited = now - self.ending_since
        hellos = any(not c.ready for c in self.clients.values()) and waited < HELLO_WAIT
        queued = any(c.outbuf for c in self.clients.values()) and waited < LINGER
        if not hellos and not queued:
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for fd in list(self.readers):
            self.poll.unregister(fd)
            os.close(fd)
        self.readers.clear()
        for fd in list(self.clients):
            self._drop(fd)
        if self.listener is not None:
            self.poll.unregister(self.listener.fileno())
            self.listener.close()
            self.listener = None
        if self.stdin_fd >= 0:
            self.poll.unregister(self.stdin_fd)
            with contextlib.suppress(OSError):
                os.close(self.stdin_fd)
        self.stdin_fd = -1
        if self.on_closed is not None:
            self.on_closed()

    # -- output
    def _read_output(self, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: the pty's last slave closed
            data = b""
        stream = self.readers[fd]
        if data:
            self.writer.feed(stream, data)
            self._broadcast(STREAM_KIND[stream], data)
            return
        self.writer.flush(stream)
        self.poll.unregister(fd)
        del self.readers[fd]
        if fd == self.stdin_fd:  # the pty master: input ends with it
            self.stdin_fd = -1
        os.close(fd)

    def _broadcast(self, kind: int, data: bytes) -> None:
        if self.listener is None:
            return
        self.backlog.append((kind, data))
        self.backlog_size += len(data)
        while self.backlog_size > BACKLOG:  # keep exactly the last BACKLOG bytes
            old_kind, old = self.backlog[0]
            excess = self.backlog_size - BACKLOG
            if len(old) <= excess:
                self.backlog.popleft()
                self.backlog_size -= len(old)
            else:
                self.backlog[0] = (old_kind, old[excess:])
                self.backlog_size -= excess
        out = frame(kind, data)
        for fd, c in list(self.clients.items()):
            if c.ready:
                self._send(fd, c, out)

    def _send(self, fd: int, c: _Client, data: bytes) -> None:
        if not c.outbuf:
            try:
                n = c.sock.send(data, socket.MSG_NOSIGNAL)
            except BlockingIOError:
                n = 0
            except OSError:
                self._drop(fd)
                return
            data = data[n:]
            if not data:
                return
        c.outbuf += data
        if len(c.outbuf) > MAX_PENDING:  # it does not read: let it go rather than stall
            self._drop(fd)
            return
        self.poll.modify(fd, self._mask(c))

    # -- clients
    def _accept(self) -> None:
        assert self.listener is not None
        try:
            sock, _ = self.listener.accept()
        except OSError:
            return
        self._add_client(sock)

    def _add_client(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.clients[sock.fileno()] = _Client(sock)
        self.poll.register(sock.fileno(), select.POLLIN, self._event)

    def _drop(self, fd: int) -> None:
        c = self.clients.pop(fd, None)
        if c is not None:
            self.poll.unregister(fd)
            c.sock.close()
    def _client_event(self, fd: int, ev: int) -> None:
        c = self.clients[fd]
        if ev & select.POLLOUT and c.outbuf:
            try:
                n = c.sock.send(c.outbuf, socket.MSG_NOSIGNAL)
            except BlockingIOError:
                n = 0
            except OSError:
                self._drop(fd)
                return
            del c.outbuf[:n]
            if not c.outbuf:
                self.poll.modify(fd, self._mask(c))
        if not ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
            return
        if len(self.pending_in) >= MAX_PENDING and not ev & (select.POLLHUP | select.POLLERR):
            self._pause(fd, c)  # the container reads slower than input comes: hold the client
            return
        try:
            data = c.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(fd)
            return
        c.inbuf += data
        while len(c.inbuf) >= HEADER.size:
            kind, size = HEADER.unpack_from(c.inbuf)
            if size > MAX_FRAME:
                self._drop(fd)
                return
            if len(c.inbuf) < HEADER.size + size:
                break
            payload = bytes(c.inbuf[HEADER.size:HEADER.size + size])
            del c.inbuf[:HEADER.size + size]
            self._handle(fd, c, kind, payload)
            if fd not in self.clients:
                return

    def _handle(self, fd: int, c: _Client, kind: int, payload: bytes) -> None:
        if kind == HELLO and not c.ready:
            c.ready = True
            replay = b"".join(frame(k, d) for k, d in self.backlog) if payload == b"1" else b""
            self._send(fd, c, frame(READY) + replay)
        elif kind == IN:
            self._write_stdin(payload)
        elif kind == CLOSE_IN:
            self._close_stdin()
        elif kind == RESIZE and self.tty and self.stdin_fd >= 0 and len(payload) == 4:
            rows, cols = struct.unpack(">HH", payload)
            with contextlib.suppress(OSError):
                fcntl.ioctl(self.stdin_fd, termios.TIOCSWINSZ,
                            struct.pack("HHHH", rows, cols, 0, 0))

    # -- input
    def _write_stdin(self, data: bytes) -> None:
        if self.stdin_fd < 0 or not data or self.close_in:
            return
        self.pending_in += data  # bounded: clients are paused past MAX_PENDING
        self._flush_stdin()

    def _pause(self, fd: int, c: _Client) -> None:
        """Stop reading `c` until the container took its input: the client's writes then
        block (backpressure all the way to `composer run < dump.sql`), nothing is dropped."""
        c.paused = True
        self.poll.modify(fd, self._mask(c))

    def _resume(self) -> None:
        for fd, c in self.clients.items():
            if c.paused:
                c.paused = False
                self.poll.modify(fd, self._mask(c))

    @staticmethod
    def _mask(c: _Client) -> int:
        return (0 if c.paused else select.POLLIN) | (select.POLLOUT if c.outbuf else 0)

    def _flush_stdin(self) -> None:
        self._flush_stdin_fd()
        if len(self.pending_in) < MAX_PENDING // 2:
            self._resume()

    def _flush_stdin_fd(self) -> None:
        fd = self.stdin_fd
        if fd < 0:
            self.pending_in.clear()
            return
        try:
            while self.pending_in:
                n = os.write(fd, self.pending_in)
                del self.pending_in[:n]
        except BlockingIOError:
            pass
        except OSError:  # EPIPE: the container closed its stdin (the monitor ignores SIGPIPE)
            self.pending_in.clear()
            if fd not in self.readers:
                self.poll.unregister(fd)
                os.close(fd)
                self.stdin_fd = -1
            return
        if self.close_in and not self.pending_in and fd not in self.readers:
            self.poll.unregister(fd)
            os.close(fd)
            self.stdin_fd = -1
            return
        want = select.POLLOUT if self.pending_in else 0
        if fd in self.readers:  # the pty master is also an output reader
            self.poll.modify(fd, select.POLLIN | want)
        elif want:
            self.poll.register(fd, want, self._event)  # registering twice is a modify
        else:
            self.poll.unregister(fd)

    def _close_stdin(self) -> None:
        if self.stdin_fd < 0:
            return
        if self.tty:
            self._write_stdin(b"\x04")  # EOF on the pty's line discipline
            return
        self.close_in = True  # once what waits has been written
        self._flush_stdin()
