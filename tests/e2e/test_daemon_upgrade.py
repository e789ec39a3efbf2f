"""After an upgrade the composerd left running is on old code (faked: COMPOSERD_IDENTITY):
the next `composer` command replaces it with this code's, says so in one line, and the
containers run on, the same processes, adopted by the new daemon."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from runtime import identity
from tests.e2e.conftest import Env, taken_down, write_stack

STACK = """\
services:
  app:
    image: busybox
    init: true
    command: sleep 3600
"""
OLD = f"{identity.identity().split('/')[0]}/0000000000000000/0000000000000000"


def gone(pid: int, timeout: float = 60) -> bool:
    end = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists():
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True


def started(env: Env, d: Path) -> str:
    """When the container's pid 1 started (field 22 of /proc/1/stat): the same process or not."""
    out = env.composer("exec", "-T", "app", "cat", "/proc/1/stat", cwd=d).stdout
    return out.rpartition(")")[2].split()[19]


def test_an_old_composerd_is_replaced_and_containers_run_on(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "upg"
    write_stack(d, STACK)
    with taken_down(env, d):
        env.composer("up", "-d", cwd=d)
        before = started(env, d)
        first = env.daemon_pid()
        assert first
        os.kill(first, signal.SIGTERM)  # the daemon of before the upgrade: containers stay
        assert gone(first)
        subprocess.run([sys.executable, "-m", "runtime.daemon", "--background",
                        "--root", str(env.root), "--run", str(env.run)], cwd="/",
                       env={**env.environ, identity.TEST_ENV: OLD}, check=True,
                       capture_output=True, timeout=300)
        old = env.daemon_pid()
        assert old and old != first

        p = env.composer("ps", "--format", "json", cwd=d)  # the quick path: it hands over
        new = env.daemon_pid()
        assert new not in (None, old) and gone(old, 5)
        assert p.stderr.strip().splitlines() == [
            f"composerd (pid {old}) runs other code than this composer (it was started before "
            "an upgrade): restarted it on this code; containers keep running"]
        assert '"State":"running"' in p.stdout.replace(" ", "")
        assert started(env, d) == before  # the same container process, adopted
        again = env.composer("ps", cwd=d)  # this code now: nothing said, nothing restarted
        assert again.stderr == "" and env.daemon_pid() == new
