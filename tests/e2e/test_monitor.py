"""The monitor across composerd's death: a `kill -9` of composerd leaves every container's
log, attach socket and exit code with the monitor, and the next composerd adopts them
(runtime.process.monitor)."""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from tests.e2e.conftest import Env, write_stack
from tests.integration.process.test_monitor import monitor_processes, ppid_or_0

STACK = """\
services:
  ticker:
    image: busybox
    init: true
    command: sh -c 'i=0; while [ $$i -lt 2000 ]; do echo tick $$i; i=$$((i+1)); sleep 0.05; done'
  reader:
    image: busybox
    stdin_open: true
    command: sh -c 'read a; echo "got $$a"; exit 4'
  quick:
    image: busybox
    command: sh -c 'sleep 2; exit 7'
"""


def monitors(env: Env) -> list[int]:
    """The monitor of this state root (not an init reaper it forked: same command line)."""
    found = monitor_processes(f"{env.run}/monitor.sock")
    return [pid for pid in found if ppid_or_0(pid) not in found]


def ticks(env: Env, d: Path) -> int:
    out = env.composer("logs", "--no-log-prefix", "ticker", cwd=d).stdout
    return sum(1 for line in out.splitlines() if line.startswith("tick "))


def test_kill_9_of_composerd_keeps_logs_attach_and_exit_codes(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "mon"
    write_stack(d, STACK)
    env.composer("up", "-d", cwd=d)
    [monitor] = monitors(env)
    before = ticks(env, d)
    pid = env.daemon_pid()
    assert pid
    os.kill(pid, signal.SIGKILL)
    time.sleep(3)  # no daemon: the ticker goes on writing its log, `quick` exits meanwhile
    assert monitors(env) == [monitor]  # the same monitor, still holding every container
    after = ticks(env, d)  # a new composerd, which adopts them
    assert env.daemon_pid() not in (None, pid)
    assert after >= before + 30, (before, after)  # ~60 lines were written in those 3 s
    rows = {r["Service"]: r for r in env.ps(d, "-a")}
    assert (rows["quick"]["State"], rows["quick"]["ExitCode"]) == ("exited", 7)
    assert rows["ticker"]["State"] == rows["reader"]["State"] == "running"
    # attach through the new composerd to the socket the monitor kept serving
    p = env.composer("attach", "reader", cwd=d, check=False, input="one\n", timeout=60)
    assert "got one" in p.stdout and p.returncode == 4, p.stdout + p.stderr
    state = json.loads(next((env.root / "containers").glob("*/state.json")).read_text())
    assert state["monitor_pid"] in (0, monitor)
    env.composer("down", "-t", "1", cwd=d)
    assert monitors(env) == [monitor]  # composerd still runs: its session keeps it
