"""logging.driver fluentd through the CLI and a real composerd (the shape of Compose's own
TestLoggingDriver, with this test's TCP server as the collector): every line arrives with
the service's container name and the tag asked for, and `logs` still shows the output."""
from __future__ import annotations

import socket
from pathlib import Path

from tests.e2e.conftest import Env, write_stack
from tests.recorder import record_one
from tests.unit.test_fluentd import unpack_all

STACK = """
services:
  app:
    image: busybox
    command: sh -c 'echo hello-fluentd; echo oops >&2'
    logging:
      driver: fluentd
      options:
        fluentd-address: ${HOST:-127.0.0.1}:PORT
        tag: compose.{{.Name}}
"""


def test_fluentd_driver_from_a_stack_file(env: Env, tmp_path: Path) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(60)
    port = server.getsockname()[1]
    thread, received = record_one(server, timeout=30)
    d = tmp_path / "fl"
    write_stack(d, STACK.replace("PORT", str(port)))
    try:
        env.composer("up", "-d", cwd=d)
        thread.join(30)  # the shim closes the connection when the output ends
        shown = env.composer("logs", "--no-color", "--no-log-prefix", "app", cwd=d)
        logs = shown.stdout + shown.stderr  # the container's stderr lines go to stderr
    finally:
        env.composer("down", cwd=d)
        server.close()
    messages = unpack_all(b"".join(received))
    name = messages[0][2]["container_name"].lstrip("/")
    assert name.endswith("app-1")
    assert {(m[0], m[2]["source"], m[2]["log"]) for m in messages} == {
        (f"compose.{name}", "stdout", "hello-fluentd"), (f"compose.{name}", "stderr", "oops")}
    assert "hello-fluentd" in logs and "oops" in logs
