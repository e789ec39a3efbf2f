"""Compose's build.ssh through the CLI and a real composerd: `ssh: [default]` forwards the
CLI's $SSH_AUTH_SOCK into RUN --mount=type=ssh (bytes reach the "agent", a socket server of
this test), and a file ssh-add cannot load as a key is one line with its reason (a real
key: tests/unit/test_sshkeys.py)."""
from __future__ import annotations

import socket
from pathlib import Path

from tests.e2e.conftest import Env, write_stack
from tests.recorder import record_one

STACK = """
services:
  app:
    image: ssh-app
    build:
      context: .
      dockerfile_inline: |
        FROM busybox
        RUN --mount=type=ssh,target=/dev/log echo "$$SSH_AUTH_SOCK" > /seen; \\
            logger -t build reached-the-agent
      ssh: [default]
    command: sh -c 'cat /seen; ls /dev/log 2>/dev/null || echo no-socket'
"""


def test_build_ssh_default_is_the_cli_agent(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "bssh"
    write_stack(d, STACK)
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "agent.sock"))
    server.listen()
    server.settimeout(60)
    thread, received = record_one(server, timeout=10)
    env.environ["SSH_AUTH_SOCK"] = str(tmp_path / "agent.sock")
    try:
        env.composer("build", cwd=d)
        out = env.composer("run", "--rm", "-T", "app", cwd=d).stdout
    finally:
        env.composer("down", cwd=d)
        server.close()
        thread.join(15)
    assert b"reached-the-agent" in b"".join(received)
    assert out.split() == ["/dev/log", "no-socket"]

    (d / "id_rsa").write_text("not a real key\n")
    write_stack(d, STACK.replace("ssh: [default]", "ssh: [key=./id_rsa]"))
    res = env.composer("build", cwd=d, check=False)
    assert res.returncode != 0
    assert 'services.app.build.ssh: ssh agent "key":' in res.stderr
    assert "ssh-add" in res.stderr and "are too open" in res.stderr  # 0644: ssh-add's rule
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
