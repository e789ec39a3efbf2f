"""Keys of issue 14 through the CLI and a real composerd: an inline Dockerfile built by `up`,
a secret from the environment with its mode, a shared IPC namespace, a MAC address and an
interface name -- each reaching the running container over the daemon's API."""
from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import Env, write_stack

STACK = """
services:
  donor:
    build:
      context: .
      dockerfile_inline: |
        FROM busybox
        RUN echo inline > /built-from
    init: true
    ipc: shareable
    command: sh -c "echo hi > /dev/shm/seg; exec sleep 600"
  user:
    image: busybox
    init: true
    ipc: service:donor
    mac_address: 02:00:00:aa:bb:cc
    networks:
      default: {interface_name: net0}
    secrets: [{source: token, mode: 0400}]
    command: sleep 600
secrets:
  token: {environment: TOKEN}
"""


def test_keys_reach_the_running_containers(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "keys"
    write_stack(d, STACK)
    (d / "Dockerfile").write_text("FROM busybox\nRUN echo context > /built-from\n")
    env.environ["TOKEN"] = "s3cret"
    env.composer("up", "-d", cwd=d)
    try:
        built = env.composer("exec", "donor", "cat", "/built-from", cwd=d).stdout
        assert built.strip() == "inline"  # dockerfile_inline, not ./Dockerfile
        script = ("cat /dev/shm/seg; readlink /proc/self/ns/ipc; cat /sys/class/net/net0/address; "
                  "stat -c %a /run/secrets/token; cat /run/secrets/token")
        out = env.composer("exec", "user", "sh", "-c", script, cwd=d).stdout.split()
        donor_ns = env.composer("exec", "donor", "readlink", "/proc/self/ns/ipc", cwd=d).stdout.strip()
        assert out == ["hi", donor_ns, "02:00:00:aa:bb:cc", "400", "s3cret"]
    finally:
        env.composer("down", cwd=d)
