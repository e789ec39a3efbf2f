"""Free host ports for tests that publish or bind them."""
from __future__ import annotations

import random
import socket


def free_block(n: int, kind: int = socket.SOCK_STREAM, host: str = "0.0.0.0") -> int:
    """The first port of `n` consecutive free high ports on `host` (TCP or UDP by `kind`),
    picked at random in 47000-59000 so parallel runs and other software rarely collide."""
    for _ in range(200):
        base = random.randrange(47000, 59000)
        socks: list[socket.socket] = []
        try:
            for p in range(base, base + n):
                s = socket.socket(socket.AF_INET, kind)
                socks.append(s)
                s.bind((host, p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError(f"no block of {n} free ports on {host}")
