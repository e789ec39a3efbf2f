"""A tiny HTTP/1.1 client over a unix socket that sends exactly the bytes we give it.

The project's client validates before sending; malformed-request tests must bypass it.
"""
from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(sock_path: str, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None, timeout: float = 30) -> Reply:
    head = [f"{method} {path} HTTP/1.1", "Host: composerd", "Connection: close"]
    hdrs = dict(headers or {})
    if body is not None:
        hdrs.setdefault("Content-Type", "application/json")
        hdrs.setdefault("Content-Length", str(len(body)))
    head += [f"{k}: {v}" for k, v in hdrs.items()]
    raw = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1", "replace") + (body or b"")
    return send_raw(sock_path, raw, timeout)


def send_raw(sock_path: str, raw: bytes, timeout: float = 30) -> Reply:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(sock_path)
        try:
            s.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading an oversize body
        chunks = []
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            chunks.append(b)
    data = b"".join(chunks)
    if not data:
        return Reply(0, b"")
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        body = _dechunk(body)
    return Reply(status, body)


def _dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        n = int(size_line.split(b";")[0] or b"0", 16)
        if n == 0:
            break
        out += rest[:n]
        body = rest[n + 2:]
    return out
