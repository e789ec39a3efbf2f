"""A blocking websocket client (RFC 6455, client side) over composerd's unix socket, on the
standard library alone: what `composer exec -T` speaks instead of aiohttp (~130 ms to import).

    ws = WebSocket.connect(socket_path, "/containers/x/exec-attach?request=...")
    ws.send_binary(data)              # one masked frame; may be called from another thread
    while (data := ws.recv()) is not None:
        ...                           # a whole binary message (fragments joined)
    ws.close()

What it does, and no more, as composerd's aiohttp server speaks it:
- handshake: GET with Upgrade, a random Sec-WebSocket-Key, version 13; the answer must be
  101 with the matching Sec-WebSocket-Accept (base64 SHA-1 of key + the RFC's GUID). Any
  other answer is a `HandshakeError` with its status, reason and headers (composerd puts
  its error in the X-Composer-Error header). No extension is asked for, so no RSV bit may
  be set.
- frames out: FIN set, masked with a fresh 4-byte key each (clients must mask), 7/16/64-bit
  lengths; a lock keeps a frame whole when two threads send.
- frames in: never masked (a masked server frame is a protocol error); a message may come
  in fragments (continuation frames, control frames between them); ping is answered with
  pong of the same payload; pong is ignored; close is answered with a close of the same
  code and ends the stream (recv returns None), as does a text message (not ours) or a
  message larger than `max_msg_size` (closed with 1009) or any protocol error (1002).
- the end: close() sends close (1000) once, if no close was sent yet, and shuts the
  socket; it does not wait for the server's answer (composerd stops reading then anyway).
"""
from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct
import threading
from pathlib import Path

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
NORMAL, PROTOCOL_ERROR, UNSUPPORTED_DATA, TOO_BIG = 1000, 1002, 1003, 1009
MAX_HEADER = 64 * 1024  # bytes of handshake answer we read before giving up
RECV_SIZE = 256 * 1024
CONNECT_TIMEOUT = 10.0


class HandshakeError(ConnectionError):
    """The server answered the upgrade with something else than 101."""

    def __init__(self, status: int, reason: str, headers: dict[str, str]) -> None:
        super().__init__(f"websocket handshake failed: {status} {reason}".strip())
        self.status = status
        self.reason = reason
        self.headers = headers  # names in lowercase


class ProtocolError(ConnectionError):
    """The server broke RFC 6455 (or sent a message too large)."""


def accept_key(key: bytes) -> str:
    return base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()


def mask(key: bytes, data: bytes) -> bytes:
    """`data` XOR the repeated 4-byte `key` (RFC 6455 5.3), as one big-integer XOR: C speed
    for a 512 KiB message, where a Python loop over bytes would take ~50 ms."""
    n = len(data)
    if n == 0:
        return b""
    pad = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(pad, "little")).to_bytes(n, "little")


def encode_frame(opcode: int, payload: bytes, *, fin: bool = True,
                 key: bytes | None = None) -> bytes:
    """One client frame: masked with `key` (random when None)."""
    key = os.urandom(4) if key is None else key
    first = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", first, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", first, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, n)
    return head + key + mask(key, payload)


class WebSocket:
    def __init__(self, sock: socket.socket, buffered: bytes = b"",
                 max_msg_size: int = 4 * 1024 * 1024) -> None:
        self.sock = sock
        self.buf = bytearray(buffered)  # bytes read past the handshake, or past a frame
        self.max_msg_size = max_msg_size
        self._send_lock = threading.Lock()
        self.close_sent = False
        self.close_code: int | None = None  # what the server's close said (None: no close)
        self.ended = False  # recv() has returned None: nothing more will come

    @classmethod
    def connect(cls, socket_path: Path | str, target: str, *, host: str = "composerd",
                max_msg_size: int = 4 * 1024 * 1024) -> WebSocket:
        """Connect to the unix socket and upgrade `target` (path and query, already encoded).
        OSError when nothing listens; HandshakeError when the server says no."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.settimeout(CONNECT_TIMEOUT)
            sock.connect(str(socket_path))
            key = base64.b64encode(os.urandom(16))
            sock.sendall(
                f"GET {target} HTTP/1.1\r\n"
                f"Host: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key.decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                .encode())
            status, reason, headers, rest = _read_answer(sock)
            if status != 101:
                raise HandshakeError(status, reason, headers)
            if headers.get("upgrade", "").lower() != "websocket" or \
                    headers.get("sec-websocket-accept") != accept_key(key):
                raise HandshakeError(status, "not a websocket upgrade", headers)
            if headers.get("sec-websocket-extensions"):
                raise HandshakeError(status, "an extension we did not ask for", headers)
            sock.settimeout(None)
        except BaseException:
            sock.close()
            raise
        return cls(sock, rest, max_msg_size)

    # ---------------------------------------------------------------- sending

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        data = encode_frame(opcode, payload)
        with self._send_lock:
            if self.close_sent:
                raise ConnectionError("websocket: close already sent")
            if opcode == CLOSE:
                self.close_sent = True
            self.sock.sendall(data)

    def send_binary(self, data: bytes) -> None:
        """One binary message (one frame). OSError when the connection has gone."""
        self._send_frame(BINARY, data)

    def ping(self, payload: bytes = b"") -> None:
        self._send_frame(PING, payload)

    def _send_close(self, code: int, reason: bytes = b"") -> None:
        try:
            self._send_frame(CLOSE, struct.pack("!H", code) + reason[:123])
        except OSError:
            pass  # already sent, or the peer has gone: either way no more will be said

    # ---------------------------------------------------------------- receiving

    def _fill(self, n: int) -> None:
        while len(self.buf) < n:
            chunk = self.sock.recv(max(RECV_SIZE, n - len(self.buf)))
            if not chunk:
                raise ConnectionError("websocket: the server closed the connection")
            self.buf += chunk

    def _take(self, n: int) -> bytes:
        self._fill(n)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def _frame(self) -> tuple[bool, int, bytes]:
        first, second = self._take(2)
        if first & 0x70:
            raise ProtocolError("websocket: reserved bits set (no extension was agreed)")
        if second & 0x80:
            raise ProtocolError("websocket: the server masked a frame")
        fin, opcode, n = bool(first & 0x80), first & 0x0F, second & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self._take(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", self._take(8))
        if opcode >= CLOSE and (n > 125 or not fin):
            raise ProtocolError("websocket: a control frame longer than 125 or fragmented")
        if n > self.max_msg_size:
            raise ProtocolError(f"websocket: a message larger than {self.max_msg_size}")
        return fin, opcode, self._take(n)

    def recv(self) -> bytes | None:
        """The next binary message; None at the end (the server's close, a text message, a
        broken connection or protocol: the reason is in `close_code`)."""
        if self.ended:
            return None
        try:
            return self._recv()
        except ProtocolError as e:
            self._send_close(TOO_BIG if "larger" in str(e) else PROTOCOL_ERROR)
        except OSError:
            pass
        self.ended = True
        return None

    def _recv(self) -> bytes | None:
        parts: list[bytes] = []
        kind: int | None = None
        size = 0
        while True:
            fin, opcode, payload = self._frame()
            if opcode == PING:
                try:
                    self._send_frame(PONG, payload)
                except OSError:
                    pass
                continue
            if opcode == PONG:
                continue
            if opcode == CLOSE:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 \
                    else 1005  # "no status received"
                self._send_close(self.close_code if self.close_code != 1005 else NORMAL)
                self.ended = True
                return None
            if opcode == CONTINUATION:
                if kind is None:
                    raise ProtocolError("websocket: a continuation frame with no message")
            elif opcode in (TEXT, BINARY):
                if kind is not None:
                    raise ProtocolError("websocket: a new message inside a fragmented one")
                kind = opcode
            else:
                raise ProtocolError(f"websocket: unknown opcode {opcode}")
            size += len(payload)
            if size > self.max_msg_size:
                raise ProtocolError(f"websocket: a message larger than {self.max_msg_size}")
            parts.append(payload)
            if fin:
                break
        if kind != BINARY:
            self._send_close(UNSUPPORTED_DATA)
            self.ended = True
            return None
        return parts[0] if len(parts) == 1 else b"".join(parts)

    # ---------------------------------------------------------------- the end

    def close(self, code: int = NORMAL) -> None:
        """Say close (once) and drop the connection."""
        self._send_close(code)
        self.ended = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def _read_answer(sock: socket.socket) -> tuple[int, str, dict[str, str], bytes]:
    """The HTTP answer's status, reason, headers (lowercase names) and the bytes after them."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("websocket: the server closed the connection during the "
                                  "handshake")
        data += chunk
        if len(data) > MAX_HEADER:
            raise ConnectionError("websocket: the handshake answer is too long")
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ConnectionError(f"websocket: not an HTTP answer: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return int(parts[1]), parts[2] if len(parts) > 2 else "", headers, rest
