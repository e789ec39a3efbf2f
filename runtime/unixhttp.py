"""HTTP/1.1 over a unix socket, the little of it that runtime.quickclient needs: a request
with an optional body, then the status, the headers and a body framed by Content-Length,
chunked transfer coding, or the end of the connection; read whole or line by line (log
streams). Keep-alive: the next request reuses the connection once a body has been read.

Why not http.client: importing it costs ~13 ms (email's header parser, ssl), an eighth of
the 100 ms a `composer ps` may take in all; what composerd's aiohttp server sends is plain.

    conn = Connection(path)
    resp = conn.request("GET", "/containers?all=1")
    resp.status, resp.content_type(), resp.read()
"""
from __future__ import annotations

import socket
from io import BufferedReader
from pathlib import Path

MAX_LINE = 64 * 1024  # a status, header or chunk-size line longer than this is an error
MAX_HEADERS = 100


class HTTPError(ConnectionError):
    """The server's answer is not HTTP/1.x as we read it (or the connection broke in it)."""


def parse_status(line: bytes) -> tuple[int, str]:
    """(status, reason) of an HTTP/1.x status line."""
    parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise HTTPError(f"not an HTTP/1.x status line: {line[:80]!r}")
    return int(parts[1]), parts[2] if len(parts) > 2 else ""


def parse_header(line: bytes, into: dict[str, str]) -> bool:
    """Add a header line to `into` (lowercase name); False at the blank line that ends them."""
    if line in (b"\r\n", b"\n"):
        return False
    if not line.endswith(b"\n"):
        raise HTTPError("the connection ended in the headers")
    name, sep, value = line.decode("latin-1").partition(":")
    if not sep:
        raise HTTPError(f"invalid header line {line[:80]!r}")
    into[name.strip().lower()] = value.strip()
    return True


class Response:
    def __init__(self, rfile: BufferedReader, status: int, reason: str, headers: dict[str, str],
                 *, has_body: bool) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers  # names in lowercase; a repeated header: the last one
        self._rfile = rfile
        self._pending = b""
        coding = headers.get("transfer-encoding", "").lower()
        self._chunked = has_body and "chunked" in coding
        length = headers.get("content-length")
        if not has_body:
            self._left: int | None = 0
        elif self._chunked:
            self._left = None
        elif length is not None:
            try:
                self._left = int(length)
            except ValueError:
                raise HTTPError(f"invalid Content-Length {length!r}") from None
        else:
            self._left = None  # until the connection ends
        self._until_close = has_body and not self._chunked and length is None
        self._done = self._left == 0

    @property
    def reusable(self) -> bool:
        """The body was read to its end and the server keeps the connection."""
        return self._done and not self._until_close and \
            self.headers.get("connection", "").lower() != "close"

    def isclosed(self) -> bool:
        return self._done

    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def _more(self) -> bytes:
        """The next piece of the body; b"" at its end."""
        if self._done:
            return b""
        if self._chunked:
            line = self._rfile.readline(MAX_LINE)
            if not line.endswith(b"\n"):
                raise HTTPError("the connection ended inside a chunked body")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise HTTPError(f"invalid chunk size {line[:40]!r}") from None
            if size == 0:
                while (trailer := self._rfile.readline(MAX_LINE)) not in (b"\r\n", b"\n"):
                    if not trailer:
                        raise HTTPError("the connection ended in the trailers")
                self._done = True
                return b""
            data = self._rfile.read(size)
            if len(data) < size or self._rfile.readline(MAX_LINE) not in (b"\r\n", b"\n"):
                raise HTTPError("the connection ended inside a chunk")
            return data
        if self._left is None:  # until the end of the connection
            data = self._rfile.read1(65536)
            if not data:
                self._done = True
            return data
        data = self._rfile.read1(min(self._left, 65536))
        if not data:
            raise HTTPError("the connection ended before the whole body came")
        self._left -= len(data)
        self._done = self._left == 0
        return data

    def read(self) -> bytes:
        parts = [self._pending]
        self._pending = b""
        while data := self._more():
            parts.append(data)
        return b"".join(parts)

    def readline(self) -> bytes:
        """The body up to and with the next newline (b"" at the end)."""
        while b"\n" not in self._pending:
            data = self._more()
            if not data:
                line, self._pending = self._pending, b""
                return line
            self._pending += data
        line, _, self._pending = self._pending.partition(b"\n")
        return line + b"\n"


class Connection:
    def __init__(self, socket_path: Path | str, *, host: str = "composerd",
                 connect_timeout: float = 10.0) -> None:
        self.socket_path = socket_path
        self.host = host
        self.connect_timeout = connect_timeout
        self.sock: socket.socket | None = None
        self._rfile: BufferedReader | None = None

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.settimeout(self.connect_timeout)
            sock.connect(str(self.socket_path))
            sock.settimeout(None)  # a long answer (logs) may take its time
        except OSError:
            sock.close()
            raise
        self.sock = sock
        self._rfile = sock.makefile("rb")

    def request(self, method: str, target: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> Response:
        """Send the request and read the answer's head; its body is the Response's to read
        (before the next request). OSError (HTTPError included) when anything breaks."""
        if self.sock is None:
            self.connect()
        assert self.sock is not None and self._rfile is not None
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))
        while True:
            status, reason = self._status()
            headers_in = self._headers()
            if not 100 <= status < 200:
                break  # a 1xx is an interim answer: the real one follows
        has_body = method != "HEAD" and status not in (204, 304)
        return Response(self._rfile, status, reason, headers_in, has_body=has_body)

    def _status(self) -> tuple[int, str]:
        assert self._rfile is not None
        line = self._rfile.readline(MAX_LINE)
        if not line:
            raise HTTPError("the server closed the connection without an answer")
        return parse_status(line)

    def _headers(self) -> dict[str, str]:
        assert self._rfile is not None
        out: dict[str, str] = {}
        for _ in range(MAX_HEADERS + 1):
            if not parse_header(self._rfile.readline(MAX_LINE), out):
                return out
        raise HTTPError(f"more than {MAX_HEADERS} headers")

    def close(self) -> None:
        if self._rfile is not None:
            self._rfile.close()
            self._rfile = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None
