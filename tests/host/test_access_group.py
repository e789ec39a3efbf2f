"""A member of the `composer` group runs the daily verbs without sudo, as Docker's group
allows; a user outside it gets one line naming both fixes. On the VM's real composerd (the
one the README's bootstrap started), restarted so it sees the new group."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

RUN = Path(os.environ.get("COMPOSER_RUN", "/run/composer"))
STACK = """\
name: groupsmoke
services:
  app:
    image: busybox
    command: sh -c "echo started-by-a-member; exec sleep 3600"
"""


def sh(*argv: str, user: str | None = None, cwd: Path | None = None,
       check: bool = True) -> subprocess.CompletedProcess[str]:
    if user:
        argv = ("runuser", "-u", user, "--", *argv)
    p = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(f"{argv} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def restart_daemon() -> None:
    """Stop the running composerd (containers keep running) and start it again as root."""
    pid_file = RUN / "composerd.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text().split()[0])
        with_kill = True
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            with_kill = False
        deadline = time.monotonic() + 30
        while with_kill and Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    sh(shutil.which("composerd") or "composerd", "--background")


@pytest.fixture
def users() -> Iterator[tuple[str, str]]:
    sh("groupadd", "--system", "composer")
    sh("useradd", "--create-home", "--groups", "composer", "cmpmember")
    sh("useradd", "--create-home", "cmpstranger")
    try:
        restart_daemon()
        yield "cmpmember", "cmpstranger"
    finally:
        sh("userdel", "--remove", "cmpmember", check=False)
        sh("userdel", "--remove", "cmpstranger", check=False)
        sh("groupdel", "composer", check=False)
        restart_daemon()  # back to root-only for the tests after this one


def test_a_member_runs_every_daily_verb(users: tuple[str, str]) -> None:
    member, stranger = users
    d = Path(tempfile.mkdtemp(prefix="groupsmoke"))
    os.chmod(d, 0o755)
    (d / "compose.yaml").write_text(STACK)
    try:
        sh("composer", "up", "-d", user=member, cwd=d)
        assert "app" in sh("composer", "ps", user=member, cwd=d).stdout
        assert sh("composer", "exec", "-T", "app", "id", "-u", user=member, cwd=d).stdout == "0\n"
        assert "started-by-a-member" in sh("composer", "logs", "app", user=member, cwd=d).stdout
        p = sh("composer", "ps", user=stranger, cwd=d, check=False)
        assert p.returncode != 0
        assert p.stderr.strip().splitlines()[-1].startswith(
            "error: permission denied: run composer with sudo, or have an admin add you to the "
            "composer group"), p.stderr
        sh("composer", "down", "-t", "1", user=member, cwd=d)
        assert sh("composer", "ps", "-a", "-q", cwd=d).stdout.strip() == ""
    finally:
        sh("composer", "down", "-t", "1", cwd=d, check=False)
        shutil.rmtree(d, ignore_errors=True)
