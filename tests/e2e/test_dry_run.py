"""--dry-run through the CLI and a real composerd: `up` shows its plan and makes no container,
network or volume (and starts no daemon when none runs); `down` shows what it would remove
and removes nothing."""
from __future__ import annotations

import asyncio
from pathlib import Path

from runtime.client import Client
from tests.e2e.conftest import Env, write_stack

STACK = """
services:
  web:
    image: busybox
    init: true
    command: sleep 600
    networks: [front]
    volumes: [data:/data]
networks:
  front: {}
volumes:
  data: {}
"""


def state(env: Env) -> tuple[list[tuple[str, str, str]], list[str], list[str]]:
    """(id, name, state) of every container, and every network and volume, from the daemon."""
    async def go() -> tuple[list[tuple[str, str, str]], list[str], list[str]]:
        async with Client(env.run / "composer.sock") as c:
            cs = sorted((x.id, x.name, x.state) for x in await c.list_containers(all=True))
            return (cs, sorted(n.name for n in await c.list_networks()),
                    sorted(v.name for v in await c.list_volumes()))

    return asyncio.run(go())


def test_up_and_down_dry_run_change_nothing(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "dry"
    write_stack(d, STACK)

    # no daemon yet: a dry run reads nothing, says everything, and starts none
    p = env.composer("--dry-run", "up", "-d", cwd=d)
    lines = p.stderr.splitlines()
    for want in ("DRY-RUN MODE -  Network dry_front  Created",
                 'DRY-RUN MODE -  Volume "dry_data"  Created',
                 "DRY-RUN MODE -  Container dry-web-1  Started"):
        assert want in lines, p.stderr
    assert env.daemon_pid() is None and not (env.run / "composer.sock").exists()

    env.composer("up", "-d", cwd=d)
    before = state(env)
    assert [c[1:] for c in before[0]] == [("dry-web-1", "running")]
    assert "dry_front" in before[1] and "dry_data" in before[2]

    # with the daemon: down -v would remove the container, network and volume...
    p = env.composer("--dry-run", "down", "-v", cwd=d)
    for want in ("DRY-RUN MODE -  Container dry-web-1  Removed",
                 "DRY-RUN MODE -  Network dry_front  Removed",
                 "DRY-RUN MODE -  Volume dry_data  Removed"):
        assert want in p.stderr.splitlines(), p.stderr
    # ...a forced recreate would replace the container, and a stop stop it...
    p = env.composer("--dry-run", "up", "-d", "--force-recreate", cwd=d)
    assert "DRY-RUN MODE -  Container dry-web-1  Recreated" in p.stderr.splitlines(), p.stderr
    env.composer("--dry-run", "stop", cwd=d)
    # ...and nothing of it happened: the same container, running, network and volume
    assert state(env) == before

    env.composer("down", "-v", cwd=d)
    assert state(env)[0] == []
