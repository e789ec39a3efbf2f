"""A listening socket that records what one client sends: the far end of a test's agent
socket or log endpoint."""
from __future__ import annotations

import socket
import threading


def record_one(server: socket.socket, timeout: float = 10) -> tuple[threading.Thread, list[bytes]]:
    """Accept one connection on `server` (already listening) in a thread and keep every chunk
    it sends in the returned list until it closes (or is quiet for `timeout` s)."""
    received: list[bytes] = []

    def serve() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(timeout)
            while data := conn.recv(65536):
                received.append(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread, received
