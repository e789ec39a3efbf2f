"""Compose's build.secrets through the CLI and a real composerd: a secret from a file and
one from the environment reach RUN --mount=type=secret, and the image keeps neither."""
from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import Env, write_stack

STACK = """
services:
  app:
    image: secrets-app
    build:
      context: .
      dockerfile_inline: |
        FROM busybox
        RUN --mount=type=secret,id=mysecret --mount=type=secret,id=build_secret \\
            cat /run/secrets/mysecret /run/secrets/build_secret > /seen
      secrets:
        - mysecret
        - source: envsecret
          target: build_secret
    command: sh -c 'cat /seen; ls /run/secrets 2>/dev/null || echo no-secrets-dir'
secrets:
  mysecret: {file: ./secret.txt}
  envsecret: {environment: SOME_SECRET}
"""


def test_build_secrets_reach_run_only(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "bsec"
    write_stack(d, STACK)
    (d / "secret.txt").write_text("from-file\n")
    env.environ["SOME_SECRET"] = "from-env\n"
    env.composer("build", cwd=d)
    try:
        out = env.composer("run", "--rm", "-T", "app", cwd=d).stdout
    finally:
        env.composer("down", cwd=d)
    assert out.split() == ["from-file", "from-env", "no-secrets-dir"]
