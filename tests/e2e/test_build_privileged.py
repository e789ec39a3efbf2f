"""Compose's build.privileged through the CLI and a real composerd: the RUN
--security=insecure step of the built image ran with every capability and could mount, the
plain RUN beside it could not; without build.privileged the build is one line naming the
service, the Dockerfile line and the key to set."""
from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import Env, write_stack

STACK = """
services:
  app:
    image: privileged-app
    build:
      context: .
      privileged: true
      dockerfile_inline: |
        FROM busybox
        RUN --security=insecure mkdir /p && mount -t tmpfs p /p && umount /p && \\
            grep CapEff /proc/self/status > /seen
        RUN if mount -t tmpfs p /p 2>/dev/null; then echo sandbox-mounted; \\
            else echo sandbox-refused; fi >> /seen
    command: cat /seen
"""


def test_build_privileged_grants_run_security_insecure(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "bpriv"
    write_stack(d, STACK)
    try:
        env.composer("build", cwd=d)
        out = env.composer("run", "--rm", "-T", "app", cwd=d).stdout.split()
        write_stack(d, STACK.replace("      privileged: true\n", ""))
        res = env.composer("build", cwd=d, check=False)
    finally:
        env.composer("down", "--rmi", "all", cwd=d, check=False)
    bounding = next(line.split()[1] for line in Path("/proc/self/status").read_text().splitlines()
                    if line.startswith("CapBnd:"))
    assert out == ["CapEff:", bounding, "sandbox-refused"]  # all we have, and only that step
    assert res.returncode != 0
    lines = [line for line in res.stderr.splitlines() if "Building" not in line]  # progress
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "service app: build failed: Dockerfile (inline):2: RUN --security=insecure needs the " \
           "security.insecure entitlement" in lines[0]
    assert "set build.privileged: true (or build.entitlements: [security.insecure])" in lines[0]
