"""The daily loop on a typical user host, through the installed `composer` as a user types it:
a three-service stack with a healthy gate and a published port — up, exec, logs, down — with
the daemon the CLI starts (under systemd, on cgroup v2). Afterwards nothing of the stack is
left: no container, cgroup, link, nft rule or mount.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ports import free_block

STACK = """\
name: hostsmoke
services:
  db:
    image: busybox
    command: sh -c "sleep 1; touch /tmp/ready; echo db-ready; exec sleep 3600"
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 200ms
      retries: 50
  api:
    image: busybox
    init: true
    command: sh -c "echo api-says-hello > /index.html && echo api-up && exec httpd -f -p 80 -h /"
    depends_on:
      db: {condition: service_healthy}
  web:
    image: busybox
    init: true
    command: sh -c "echo web-page > /index.html && exec httpd -f -p 80 -h /"
    ports: ["127.0.0.1:PORT:80"]
    depends_on: [api]
"""


def composer(*args: str, cwd: Path, timeout: float = 300, check: bool = True,
             input: str | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("composer")
    assert exe, "composer is not on PATH: scripts/install-deps.sh links it into /usr/local/bin"
    p = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                       input=input)
    if check and p.returncode != 0:
        raise AssertionError(f"composer {' '.join(args)} exited {p.returncode}\n"
                             f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def ours() -> set[str]:
    """What a stack can leave on the host: cgroup dirs, links, mounts, nft tables of ours."""
    found = {f"link {n}" for n in os.listdir("/sys/class/net") if n.startswith("cmp")}
    for dirpath, dirnames, _ in os.walk("/sys/fs/cgroup"):
        found |= {f"cgroup {dirpath}/{d}" for d in dirnames if "hostsmoke" in d}
    with open("/proc/self/mountinfo") as f:
        found |= {f"mount {line.split()[4]}" for line in f if "hostsmoke" in line}
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    found |= {f"nft {t.strip()}" for t in tables.splitlines() if "composer" in t}
    return found


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    port = free_block(1, host="127.0.0.1")
    (tmp_path / "compose.yaml").write_text(STACK.replace("PORT", str(port)))
    before = ours()
    try:
        yield tmp_path, port
    finally:
        composer("down", "-v", "-t", "1", cwd=tmp_path, check=False)
    left = ours() - before
    assert not left, f"down left things behind: {sorted(left)}"


def test_up_exec_logs_down(stack: tuple[Path, int]) -> None:
    cwd, port = stack
    t0 = time.monotonic()
    composer("up", "-d", "--wait", cwd=cwd)
    up_s = time.monotonic() - t0

    rows = [json.loads(line) for line in composer("ps", "--format", "json", cwd=cwd)
            .stdout.splitlines() if line.strip().startswith("{")]
    if not rows:  # one JSON array instead of one object per line
        rows = json.loads(composer("ps", "--format", "json", cwd=cwd).stdout)
    states = {r["Service"]: r["State"] for r in rows}
    assert states == {"db": "running", "api": "running", "web": "running"}, rows

    # the published port, from the host
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
        assert r.read().decode().strip() == "web-page"
    # service to service over the stack's bridge, by name (embedded DNS)
    out = composer("exec", "-T", "web", "wget", "-qO-", "http://api/", cwd=cwd).stdout
    assert out.strip() == "api-says-hello"
    # each container is in a cgroup v2 of its own with the controllers enabled
    cgroup = composer("exec", "-T", "api", "cat", "/proc/self/cgroup", cwd=cwd).stdout
    assert cgroup.startswith("0::"), cgroup

    logs = composer("logs", "db", "api", cwd=cwd).stdout
    assert "db-ready" in logs and "api-up" in logs, logs

    t1 = time.monotonic()
    composer("down", "-v", "-t", "1", cwd=cwd)
    print(f"host smoke: up --wait {up_s:.1f} s, down {time.monotonic() - t1:.1f} s")
    assert composer("ps", "-a", "-q", cwd=cwd).stdout.strip() == ""
