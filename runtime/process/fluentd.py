"""Docker's `fluentd` logging driver, on our side of the log pipe: the monitor sends each output
line to a Fluentd (or Fluent Bit) Forward-protocol endpoint, in "Message mode":

    [tag, time, {"container_id": <64 hex>, "container_name": "/<name>",
                 "source": "stdout"|"stderr", "log": <line without its newline>}]

msgpack-encoded over TCP or a unix socket. `time` is whole seconds, or with
`fluentd-sub-second-precision` Forward's EventTime (ext type 0: seconds, nanoseconds, both
big-endian uint32). A piece of a line longer than 16 KiB (split as in json-file) carries
"partial_message": "true", as Docker's.

The json-file log is still written (Docker's dual logging keeps a local cache for non-local
drivers), so `logs` works. As Docker: without `fluentd-async` the container does not start
when the endpoint cannot be reached; with it, lines wait in a bounded buffer (BUFFER_LIMIT,
oldest dropped first) while the monitor reconnects, at most once per RETRY_WAIT. A send that
fails drops the connection; its lines stay buffered for the next attempt.

msgpack is written here (str, int, map, array, ext: ~40 lines) rather than by the `msgpack`
package: the monitor stays small, and these five types are all the Forward protocol's Message
mode needs.
"""
from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import struct
import time
from collections import deque
from dataclasses import dataclass

DEFAULT_ADDRESS = "localhost:24224"
DEFAULT_PORT = 24224
BUFFER_LIMIT = 8 << 20  # bytes of encoded messages kept while the endpoint is away
RETRY_WAIT = 1.0  # seconds between connection attempts (Docker's fluentd-retry-wait default)
# the fields of Docker's tag template composer fills in (runtime.launchcfg.log_forward)
TAG_FIELDS = ("ID", "FullID", "Name", "ImageName", "ImageID", "ImageFullID")
SEND_TIMEOUT = 5.0  # how long a launch's first connection may take (fluentd-async off)
CLOSE_WAIT = 1.0  # seconds the last lines of an ended container may take to go out


@dataclass(frozen=True)
class LogForward:
    """Where the monitor also sends the output ("" address: nowhere). Filled by the engine."""

    address: str = ""  # "tcp://host:port" or "unix:///path" (normalised by parse_address)
    tag: str = ""
    container_id: str = ""
    container_name: str = ""
    async_connect: bool = False
    sub_second: bool = False


def parse_address(text: str) -> str:
    """Docker's forms -- `host`, `host:port`, `tcp://host:port`, `unix:///path` -- as
    `tcp://host:port` or `unix:///path`; ValueError with the reason for anything else."""
    text = text.strip() or DEFAULT_ADDRESS
    if text.startswith("unix://"):
        if not text[len("unix://"):].startswith("/"):
            raise ValueError("a unix socket address needs an absolute path (unix:///path)")
        return text
    if "://" in text:
        scheme, _, text = text.partition("://")
        if scheme != "tcp":
            raise ValueError(f"unsupported scheme {scheme!r} (use tcp:// or unix://)")
    if text.startswith("["):  # [v6]:port
        host, _, port = text[1:].partition("]")
        port = port.removeprefix(":") or str(DEFAULT_PORT)
    elif text.count(":") == 1:
        host, port = text.split(":")
    elif ":" not in text:
        host, port = text, str(DEFAULT_PORT)
    else:
        raise ValueError(f"invalid address {text!r} (write an IPv6 address as [addr]:port)")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"invalid address {text!r} (use host:port)")
    return f"tcp://{host}:{port}"


# -- msgpack (https://github.com/msgpack/msgpack/blob/master/spec.md) ----------------------

def pack(value: object) -> bytes:
    out = bytearray()
    _pack(value, out)
    return bytes(out)


def _pack(value: object, out: bytearray) -> None:
    if isinstance(value, str):
        data = value.encode("utf-8", "replace")
        n = len(data)
        if n < 32:
            out.append(0xA0 | n)
        elif n < 0x100:
            out += b"\xd9" + struct.pack(">B", n)
        elif n < 0x10000:
            out += b"\xda" + struct.pack(">H", n)
        else:
            out += b"\xdb" + struct.pack(">I", n)
        out += data
    elif isinstance(value, bool):  # before int: bool is an int
        out.append(0xC3 if value else 0xC2)
    elif isinstance(value, int):
        if not 0 <= value < 1 << 32:
            raise ValueError(f"only unsigned 32-bit integers are packed here: {value}")
        out += bytes([value]) if value < 0x80 else b"\xce" + struct.pack(">I", value)
    elif isinstance(value, (list, tuple)):
        _header(len(value), 0x90, b"\xdc", b"\xdd", out)
        for item in value:
            _pack(item, out)
    elif isinstance(value, dict):
        _header(len(value), 0x80, b"\xde", b"\xdf", out)
        for k, v in value.items():
            _pack(k, out)
            _pack(v, out)
    elif isinstance(value, EventTime):
        out += b"\xd7\x00" + struct.pack(">II", value.seconds, value.nanoseconds)  # fixext 8
    else:
        raise TypeError(f"cannot pack {type(value).__name__}")


def _header(n: int, fix: int, b16: bytes, b32: bytes, out: bytearray) -> None:
    if n < 16:
        out.append(fix | n)
    elif n < 0x10000:
        out += b16 + struct.pack(">H", n)
    else:
        out += b32 + struct.pack(">I", n)


@dataclass(frozen=True)
class EventTime:
    """Forward protocol's EventTime: msgpack ext type 0, 8 bytes."""

    seconds: int
    nanoseconds: int


# -- the sender ---------------------------------------------------------------------------

class FluentdSender:
    """Never blocks the monitor's loop: `send` encodes and delivers what the socket takes
    now; the rest waits (bounded) for the next send or `flush`. Connections are made without
    waiting (a connect in progress is checked at the next flush). `connect` is the blocking
    first attempt a launch makes when fluentd-async is off (in the launch child, which hands
    the connection over: `adopt`; until then a sender made with `hold` does not connect by
    itself, so the endpoint sees one connection, as with Docker); `close` gives what is
    still buffered up to CLOSE_WAIT seconds."""

    def __init__(self, fwd: LogForward, hold: bool = False) -> None:
        self.fwd = fwd
        self.hold = hold
        self.sock: socket.socket | None = None
        self.connecting = False
        self.pending: deque[bytes] = deque()
        self.pending_bytes = 0
        self.next_try = 0.0

    def _socket(self) -> tuple[socket.socket, object]:
        addr = self.fwd.address
        if addr.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            return sock, addr[len("unix://"):]
        host, _, port = addr[len("tcp://"):].rpartition(":")
        info = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)[0]
        return socket.socket(info[0], socket.SOCK_STREAM | socket.SOCK_CLOEXEC), info[4]

    def connect(self, timeout: float = SEND_TIMEOUT) -> None:
        """Connect now, waiting up to `timeout`; OSError when the endpoint is not there."""
        sock, target = self._socket()
        sock.settimeout(timeout)
        try:
            sock.connect(target)  # type: ignore[arg-type]
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self.sock, self.connecting = sock, False

    def adopt(self, fd: int) -> None:
        """Use a connection made elsewhere (the launch child's first one)."""
        self._drop()
        os.set_inheritable(fd, False)
        self.sock = socket.socket(fileno=fd)
        self.sock.setblocking(False)
        self.hold = False
        self.flush()

    def release(self) -> None:
        """No connection is coming from elsewhere: connect by ourselves from now on."""
        self.hold = False

    def _start_connect(self) -> None:
        try:
            sock, target = self._socket()
        except OSError:
            return
        sock.setblocking(False)
        err = sock.connect_ex(target)  # type: ignore[arg-type]
        if err not in (0, errno.EINPROGRESS, errno.EAGAIN):
            sock.close()
            return
        self.sock, self.connecting = sock, err != 0

    def _connected(self) -> bool:
        """Whether a connection is there (finishing one in progress without waiting)."""
        if self.sock is None:
            now = time.monotonic()
            if self.hold or now < self.next_try:
                return False
            self.next_try = now + RETRY_WAIT
            self._start_connect()
        if self.sock is None:
            return False
        if self.connecting:
            _, writable, _ = select.select([], [self.sock], [], 0)
            if not writable:
                return False
            if self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                self._drop()
                return False
            self.connecting = False
        return True

    def _drop(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self.connecting = None, False

    def send(self, stream: str, pieces: list[bytes]) -> None:
        ns = time.time_ns()
        when: object = EventTime(*divmod(ns, 1_000_000_000)) if self.fwd.sub_second else ns // 1_000_000_000
        for piece in pieces:
            record = {"container_id": self.fwd.container_id, "container_name": self.fwd.container_name,
                      "source": stream, "log": piece.rstrip(b"\n").decode("utf-8", "replace")}
            if not piece.endswith(b"\n"):
                record["partial_message"] = "true"
            self._queue(pack([self.fwd.tag, when, record]))
        self.flush()

    def _queue(self, msg: bytes) -> None:
        self.pending.append(msg)
        self.pending_bytes += len(msg)
        while self.pending_bytes > BUFFER_LIMIT and self.pending:
            self.pending_bytes -= len(self.pending.popleft())

    def flush(self) -> None:
        if not self.pending or not self._connected():
            return
        assert self.sock is not None
        data = b"".join(self.pending)
        try:
            n = self.sock.send(data)
        except BlockingIOError:
            n = 0
        except OSError:
            self._drop()
            return
        self.pending.clear()
        if n < len(data):  # the rest when the socket takes more (a message may be cut:
            self.pending.append(data[n:])  # the stream goes on from the same byte)
        self.pending_bytes = len(data) - n

    def close(self) -> None:
        if self.pending:
            if self.sock is None or self.connecting:
                self._drop()
                with contextlib.suppress(OSError):
                    self.connect(CLOSE_WAIT)
            if self.sock is not None:
                with contextlib.suppress(OSError):
                    self.sock.settimeout(CLOSE_WAIT)
                    self.sock.sendall(b"".join(self.pending))
                    self.pending.clear()
                    self.pending_bytes = 0
        self._drop()
