"""composerd stops (or restarts) while a terminal follows the containers: `logs -f` and an
attached `up` end with one clear line and exit 1, never a traceback per container nor a
silent exit 0; the containers keep running and the next command finds them."""
from __future__ import annotations

import subprocess
import sys
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


def test_exec_run_attach_and_events_say_so_when_composerd_stops(
        env: Env, tmp_path: Path) -> None:
    """The stream of each breaks: one line each, no "composerd is not running, start it"
    hint, no aiohttp words; exec and run give 255 (the command's status is unknown, as ssh),
    attach 1 (its container runs on), events 1."""
    d = tmp_path / "verbsgone"
    write_stack(d, STACK)
    with taken_down(env, d) as procs:
        env.composer("up", "-d", cwd=d)

        def start(*args: str) -> Watch:
            p = subprocess.Popen([sys.executable, "-m", "composer.cli", *args], cwd=d,
                                 env=env.environ, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            procs.append(p)
            return Watch(p)

        ex = start("exec", "-T", "one", "sh", "-c", "echo exec-started; sleep 300")
        run = start("run", "--rm", "two", "sh", "-c", "echo run-started; sleep 300")
        att = start("attach", "two")
        ev = start("events")
        ex.wait_for("exec-started")
        run.wait_for("run-started")
        time.sleep(2)  # attach and events connected
        stop_daemon(env.run)
        for w, code, after in ((ex, 255, "the exit status of the command is unknown"),
                               (run, 255, "the exit status of the command is unknown"),
                               (att, 1, "the container keeps running; `composer attach two`"),
                               (ev, 1, "")):
            assert w.finish(60) == code, (w.proc.args, w.stderr())
            err = w.stderr().strip()
            assert len(err.splitlines()) == 1, err
            assert err.startswith(LOST) and after in err, err
            assert "not running" not in err and "Transfer" not in err, err
        states = {c["Service"]: c["State"] for c in env.ps(d, "-a")}
        assert states == {"one": "running", "two": "running"}, states  # the --rm one-off is gone
