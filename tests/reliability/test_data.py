"""A named volume keeps its data across down/up, a composerd crash and a recreation; `down -v`
removes it."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from tests.reliability.conftest import Rig

STACK = """
services:
  writer:
    image: busybox
    init: true
    command: ["sh", "-c", "echo start >> /data/starts; exec sleep {n}"]
    volumes: ["data:/data"]
volumes:
  data: {{}}
"""


def _exec(rig: Rig, d: Path, *cmd: str) -> str:
    return rig.composer("exec", "-T", "writer", *cmd, cwd=d).stdout


def _cid(rig: Rig, d: Path) -> str:
    rows = rig.ps(d)
    assert len(rows) == 1 and rows[0]["State"] == "running", rows
    return str(rows[0]["ID"])


def test_named_volume_survives_down_crash_and_recreate(rig: Rig) -> None:
    d = rig.project_dir(STACK.format(n=600), name="reldata")
    rig.composer("up", "-d", cwd=d)
    _exec(rig, d, "sh", "-c", "echo secret-1 > /data/secret")
    vol_dirs = list((rig.env.root / "volumes").iterdir())
    assert [p.name for p in vol_dirs] == ["reldata_data"], vol_dirs

    # 1. down / up: a new container, the same data
    first = _cid(rig, d)
    rig.composer("down", cwd=d)
    assert rig.ps(d, "-a") == []
    rig.composer("up", "-d", cwd=d)
    assert _cid(rig, d) != first
    assert _exec(rig, d, "cat", "/data/secret") == "secret-1\n"
    assert _exec(rig, d, "cat", "/data/starts") == "start\nstart\n"

    # 2. composerd killed: the next call starts a new one that adopts the container
    _exec(rig, d, "sh", "-c", "echo secret-2 >> /data/secret")
    pid = rig.env.daemon_pid()
    assert pid
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    second = _cid(rig, d)
    assert rig.env.daemon_pid() != pid
    assert _exec(rig, d, "cat", "/data/secret") == "secret-1\nsecret-2\n"
    rig.composer("up", "-d", cwd=d)  # nothing changed: no recreation
    assert _cid(rig, d) == second

    # 3. the service's command changes: recreated, the volume is kept
    (d / "compose.yaml").write_text(STACK.format(n=601))
    rig.composer("up", "-d", cwd=d)
    third = _cid(rig, d)
    assert third != second
    assert _exec(rig, d, "cat", "/data/secret") == "secret-1\nsecret-2\n"
    assert _exec(rig, d, "cat", "/data/starts") == "start\nstart\nstart\n"
    assert "601" in _exec(rig, d, "cat", "/proc/1/cmdline") + _exec(rig, d, "ps")

    # 4. down -v: the volume goes; a new up starts from nothing
    rig.composer("down", "-v", cwd=d)
    assert not any((rig.env.root / "volumes").iterdir())
    rig.composer("up", "-d", cwd=d)
    assert _exec(rig, d, "cat", "/data/starts") == "start\n"
    assert rig.composer("exec", "-T", "writer", "cat", "/data/secret", cwd=d, check=False).returncode != 0
    rig.composer("down", "-v", cwd=d)
    assert not any((rig.env.root / "volumes").iterdir())
