"""composerd stops (or restarts) while a terminal follows the containers: `logs -f` and an
attached `up` end with one clear line and exit 1, never a traceback per container nor a
silent exit 0; the containers keep running and the next command finds them."""
from __future__ import annotations

import time
from pathlib import Path

from tests.e2e.conftest import Env, taken_down, write_stack
from tests.e2e.test_attached_up import Watch
from tests.sweep import stop_daemon

STACK = """\
services:
  one:
    image: busybox
    init: true
    command: sh -c 'echo one-ready; sleep 300'
  two:
    image: busybox
    init: true
    command: sh -c 'echo two-ready; sleep 300'
"""
LOST = "error: lost the connection to composerd (it stopped or restarted)"


def _ends_with_one_line(w: Watch) -> None:
    assert w.finish(60) == 1
    err = w.stderr()
    assert "Traceback" not in err and "Task exception" not in err, err
    assert err.strip().splitlines()[-1].startswith(LOST), err
    assert err.count("lost the connection") == 1, err


def _still_running(env: Env, d: Path) -> None:
    states = {c["Service"]: c["State"] for c in env.ps(d)}  # (starts composerd again)
    assert states == {"one": "running", "two": "running"}, states


def test_logs_follow_ends_with_one_line_when_composerd_stops(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "logsgone"
    write_stack(d, STACK)
    with taken_down(env, d) as procs:
        env.composer("up", "-d", cwd=d)
        w = Watch(env.popen("logs", "-f", "--no-color", cwd=d))
        procs.append(w.proc)
        w.wait_for("one-ready")
        w.wait_for("two-ready")
        time.sleep(0.5)
        stop_daemon(env.run)
        _ends_with_one_line(w)
        _still_running(env, d)


def test_attached_up_ends_with_one_line_when_composerd_stops(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "upgone"
    write_stack(d, STACK)
    with taken_down(env, d) as procs:
        w = Watch(env.popen("up", "--no-color", cwd=d))
        procs.append(w.proc)
        w.wait_for("one-ready")
        w.wait_for("two-ready")
        time.sleep(0.5)
        stop_daemon(env.run)
        _ends_with_one_line(w)
        assert "exited with code" not in w.stdout()  # nothing stopped: they run on
        _still_running(env, d)
