"""Unix sockets only root may use: the daemon's API, the monitor, each container's attach."""
from __future__ import annotations

import os
import socket


def bind_private(sock: socket.socket, path: str) -> None:
    """Bind `sock` at `path` created 0600: the umask is set during bind, so there is no
    moment when the socket file exists with wider permissions."""
    old = os.umask(0o177)
    try:
        sock.bind(path)
    finally:
        os.umask(old)
