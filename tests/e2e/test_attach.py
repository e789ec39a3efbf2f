"""`composer attach` and the interactive `composer run`, through composerd's attach websocket."""
from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.conftest import Env, read_until, write_stack

STACK = """\
services:
  reader:
    image: busybox
    stdin_open: true
    command: sh -c 'echo ready; read a; echo "got $$a"; read b; echo "got $$b" >&2; exit 4'
  term:
    image: busybox
    stdin_open: true
    tty: true
    command: sh
"""


def test_attach_sends_stdin_and_ends_with_the_containers_exit_code(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "att"
    write_stack(d, STACK)
    env.composer("up", "-d", "reader", cwd=d)
    p = env.composer("attach", "reader", cwd=d, check=False, input="one\ntwo\n", timeout=60)
    assert "got one" in p.stdout and "got two" in p.stderr  # both streams, each in its place
    assert p.returncode == 4, p.stderr  # `attach` ends with the container, and its code
    rows = env.ps(d, "-a")
    assert [(r["Service"], r["State"], r["ExitCode"]) for r in rows] == [("reader", "exited", 4)]
    env.composer("down", "-t", "1", cwd=d)


def test_run_is_interactive_and_removes_with_rm(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "run"
    write_stack(d, STACK)
    p = env.composer("run", "--rm", "reader", "sh", "-c", 'read x; echo "read $x"; exit 3',
                     cwd=d, check=False, input="abc\n", timeout=120)
    assert p.stdout.strip().endswith("read abc"), p.stdout + p.stderr
    assert p.returncode == 3
    quick = env.composer("run", "--rm", "reader", "echo", "quick", cwd=d, timeout=120)
    assert quick.stdout.strip() == "quick"  # output of a container gone before the attach
    assert env.composer("ps", "-a", "-q", cwd=d).stdout.strip() == ""  # --rm removed them
    env.composer("down", "-t", "1", cwd=d)


def test_attach_on_a_terminal_is_raw_and_detaches_with_ctrl_p_ctrl_q(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "tty"
    write_stack(d, STACK)
    env.composer("up", "-d", "term", cwd=d)
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "composer.cli", "attach", "term"], cwd=d,
                            env=env.environ, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    try:
        time.sleep(1.0)  # attached (the shell's prompt was printed before: not replayed)
        os.write(master, b"echo tty-$((6*7)); [ -t 0 ] && echo on-a-tty-$((2*3))\r")
        out = read_until(master, b"on-a-tty-6\r\n")
        assert b"tty-42\r\n" in out and b"on-a-tty-6\r\n" in out, out
        os.write(master, b"\x10\x11")  # ctrl-p ctrl-q
        assert b"read escape sequence" in read_until(master, b"read escape sequence")
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    rows = env.ps(d)
    assert [(r["Service"], r["State"]) for r in rows] == [("term", "running")]  # detached
    env.composer("down", "-t", "1", cwd=d)


def test_run_on_a_terminal_gets_a_tty(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "runtty"
    write_stack(d, STACK)
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "composer.cli", "run", "--rm", "reader", "sh", "-c",
         "[ -t 0 ] && echo stdin-is-a-tty; read x; echo typed-$x"],
        cwd=d, env=env.environ, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    try:
        assert b"stdin-is-a-tty" in read_until(master, b"stdin-is-a-tty", timeout=120)
        os.write(master, b"hi\r")
        assert b"typed-hi" in read_until(master, b"typed-hi")
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    env.composer("down", "-t", "1", cwd=d)
