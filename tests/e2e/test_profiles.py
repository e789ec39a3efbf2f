"""The CLI against a real composerd: a service named on the command line runs whatever its
profile (as docker compose), published on a host port range whose first port is taken."""
from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path

from tests.e2e.conftest import Env, write_stack
from tests.ports import free_block

STACK = """
services:
  web:
    image: busybox
    init: true
    command: sleep 600
  debug:
    image: busybox
    init: true
    command: sh -c "mkdir -p /w && echo debug > /w/index.html && exec httpd -f -p 80 -h /w"
    profiles: [tools]
    depends_on: [helper]
    ports: ["{lo}-{hi}:80"]
  helper:
    image: busybox
    init: true
    command: sleep 600
    profiles: [tools]
"""


def services(env: Env, cwd: Path, *extra: str) -> list[str]:
    rows = env.ps(cwd, *extra)
    return sorted(str(r["Service"]) for r in rows)


def get(port: int) -> str:
    last: Exception | None = None
    for _ in range(50):  # httpd may still be starting
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=3) as r:
                return r.read().decode().strip()
        except OSError as e:
            last = e
            import time
            time.sleep(0.1)
    raise AssertionError(f"127.0.0.1:{port} unreachable: {last}")


def test_named_profiled_service_starts_on_the_first_free_port_of_its_range(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "prof"
    lo = free_block(4)
    write_stack(d, STACK.replace("{lo}", str(lo)).replace("{hi}", str(lo + 3)))
    busy = socket.socket()
    busy.bind(("0.0.0.0", lo))
    busy.listen(1)
    try:
        assert json.loads(env.composer("--profile", "tools", "config", "--format", "json", cwd=d).stdout)[
            "services"]["debug"]["ports"] == [
                {"mode": "ingress", "target": 80, "published": f"{lo}-{lo + 3}", "protocol": "tcp"}]
        # `up -d debug`: debug (profile tools, not active) and its dependency in the same profile
        env.composer("up", "-d", "debug", cwd=d)
        assert services(env, d) == ["debug", "helper"]
        assert env.composer("port", "debug", "80", cwd=d).stdout.strip() == f"0.0.0.0:{lo + 1}"
        assert get(lo + 1) == "debug"
        # plain `up -d`: web starts, the profiled containers are no orphans and keep running
        p = env.composer("up", "-d", "--remove-orphans", cwd=d)
        assert "orphan" not in p.stdout + p.stderr
        assert services(env, d) == ["debug", "helper", "web"]
        # plain `down` leaves them, as docker compose; `--profile tools down` removes them
        p = env.composer("down", cwd=d)
        assert "Resource is still in use" in p.stdout + p.stderr
        assert services(env, d, "-a") == ["debug", "helper"]
        env.composer("--profile", "tools", "down", cwd=d)
        assert services(env, d, "-a") == []
    finally:
        busy.close()
