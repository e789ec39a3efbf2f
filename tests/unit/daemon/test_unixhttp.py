"""runtime.unixhttp (QuickClient's HTTP/1.1, instead of http.client) against hand-written
answers: the three body framings, lines across chunks, an interim 1xx, keep-alive and its
end, and broken answers as HTTPError. The real daemon app is test_quickclient's."""
from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from runtime.unixhttp import Connection, HTTPError

Answer = tuple[bytes, bool]  # what to send, and whether to close the connection after it


def serve(path: Path, answers: list[Answer]) -> tuple[threading.Thread, list[bytes]]:
    """Answer requests in order (a new connection after a closing answer); the requests
    as received (head and body)."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(4)
    seen: list[bytes] = []

    def run() -> None:
        with listener:
            while answers:
                conn, _ = listener.accept()
                with conn:
                    buf = b""
                    while answers:
                        while b"\r\n\r\n" not in buf:
                            chunk = conn.recv(65536)
                            if not chunk:
                                return
                            buf += chunk
                        head, _, buf = buf.partition(b"\r\n\r\n")
                        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                                       if line.lower().startswith(b"content-length:")), 0)
                        while len(buf) < length:
                            buf += conn.recv(65536)
                        seen.append(head + b"\r\n\r\n" + buf[:length])
                        buf = buf[length:]
                        data, close = answers.pop(0)
                        conn.sendall(data)
                        if close:
                            break

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, seen


def test_lengths_chunks_and_keep_alive(short_tmp: Path) -> None:
    path = short_tmp / "h.sock"
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
               b"Content-Type: application/x-ndjson\r\n\r\n"
               b"5\r\n{\"a\":\r\n4;ext=1\r\n 1}\n\r\n9\r\n{\"b\": 2}\n\r\n0\r\nTrailer: x\r\n\r\n")
    t, seen = serve(path, [
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: application/json; "
         b"charset=utf-8\r\nContent-Length: 2\r\n\r\n[]", False),
        (chunked, False),
        (b"HTTP/1.1 204 No Content\r\n\r\n", False),
        (b"HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\nConnection: close\r\n\r\nnope!", True),
        (b"HTTP/1.1 200 OK\r\n\r\nuntil the end", True),
    ])
    conn = Connection(path)
    r = conn.request("GET", "/a?x=1")
    assert (r.status, r.content_type(), r.read(), r.reusable) == (200, "application/json", b"[]",
                                                                   True)
    r = conn.request("POST", "/b", b'{"k": 1}', {"Content-Type": "application/json"})
    assert [r.readline(), r.readline(), r.readline()] == [b'{"a": 1}\n', b'{"b": 2}\n', b""]
    assert r.isclosed() and r.reusable
    r = conn.request("DELETE", "/c")
    assert (r.status, r.read(), r.reusable) == (204, b"", True)
    r = conn.request("GET", "/d")
    assert (r.status, r.reason, r.read(), r.reusable) == (404, "Not Found", b"nope!", False)
    conn.close()
    r = conn.request("GET", "/e")  # a new connection
    assert (r.read(), r.reusable) == (b"until the end", False)
    conn.close()
    t.join(5)
    assert [s.split(b"\r\n")[0] for s in seen] == [b"GET /a?x=1 HTTP/1.1", b"POST /b HTTP/1.1",
                                                   b"DELETE /c HTTP/1.1", b"GET /d HTTP/1.1",
                                                   b"GET /e HTTP/1.1"]
    assert seen[1].endswith(b'Content-Length: 8\r\n\r\n{"k": 1}')
    assert b"Host: composerd\r\n" in seen[0]


@pytest.mark.parametrize("answer", [
    b"SSH-2.0-OpenSSH\r\n\r\n",  # not HTTP
    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",  # the body ends early
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",  # a bad chunk size
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",  # ends inside a chunk
    b"HTTP/1.1 200 OK\r\nContent-Len",  # ends in the headers
    b"",  # no answer at all
])
def test_a_broken_answer_is_an_httperror(short_tmp: Path, answer: bytes) -> None:
    path = short_tmp / "b.sock"
    t, _ = serve(path, [(answer, True)])
    conn = Connection(path)
    with pytest.raises(HTTPError):
        conn.request("GET", "/").read()
    conn.close()
    t.join(5)


def test_nothing_listening_is_an_oserror(short_tmp: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Connection(short_tmp / "none.sock").connect()
