"""`composer run --rm` on the real engine, by the quick path (composer.cli.quickrun and
composerd's run_attached route) and, for the same commands, by the full path: exit codes
(the command's, 125/126/127, 128+signal), output apart and byte-exact, piped stdin, ^C
giving 130, and the one-off gone from `ps -a` (and its state from the disk) when the CLI
returns."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.conftest import Env, taken_down, write_stack

STACK = """\
services:
  app:
    image: busybox
  tiny:
    image: busybox
    init: true
  iso:
    image: busybox
    network_mode: none
"""
# the CLI, saying on its last stderr line which path it took (aiohttp: the full one's client)
CLI = ("import sys\nfrom composer.cli import main\nrc = main(sys.argv[1:])\nsys.stdout.flush()\n"
       "print('PATH', 'full' if 'aiohttp' in sys.modules else 'quick', file=sys.stderr)\n"
       "sys.exit(rc)\n")
FULL = ("-l", "probe=1")  # a flag only the full path takes; it changes nothing seen here


def run(env: Env, d: Path, *argv: str, stdin: bytes = b"") -> tuple[int, bytes, bytes, str]:
    p = subprocess.run([sys.executable, "-c", CLI, *argv], cwd=d, env=env.environ,
                       input=stdin, capture_output=True, timeout=120)
    err, _, path = p.stderr.rpartition(b"PATH ")
    return p.returncode, p.stdout, err, path.decode().strip()


def one_offs(env: Env, d: Path) -> list[str]:
    return [c["Name"] for c in env.ps(d, "-a") if "-run-" in c["Name"]]


def state_dirs(env: Env) -> set[str]:
    base = env.root / "containers"
    return {p.name for p in base.iterdir()} if base.is_dir() else set()


def test_run_rm_quick_and_full_paths_agree_and_leave_nothing(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "oneoff"
    write_stack(d, STACK)
    with taken_down(env, d):
        env.composer("up", "-d", "tiny", cwd=d)  # composerd running, the network made
        env.composer("stop", "tiny", cwd=d)
        kept = state_dirs(env)
        cases: list[tuple[tuple[str, ...], bytes, int, bytes, bytes]] = [
            # (argv after `run --rm -T`, stdin, exit code, stdout, what stderr contains)
            (("app", "sh", "-c", "echo out; echo err >&2; exit 7"), b"", 7, b"out\n", b"err\n"),
            (("app", "cat"), b"hi\n", 0, b"hi\n", b""),
            (("iso", "sh", "-c", "wc -c"), b"x" * 100000, 0, b"100000\n", b""),
            (("app", "nosuch-cmd"), b"", 127, b"", b"nosuch-cmd"),
            (("app", "/etc"), b"", 126, b"", b"permission denied"),
            (("-u", "nosuch-user", "app", "true"), b"", 125, b"", b"nosuch-user"),
            (("tiny", "sh", "-c", "kill -KILL $$"), b"", 137, b"", b""),
            (("-e", "GREETING=hello", "-w", "/tmp", "app", "sh", "-c", "echo $GREETING $PWD"),
             b"", 0, b"hello /tmp\n", b""),
            (("--entrypoint", "echo", "app", "via", "entrypoint"), b"", 0,
             b"via entrypoint\n", b""),
        ]
        for argv, stdin, code, out, says in cases:
            for extra, want_path in (((), "quick"), (FULL, "full")):
                got = run(env, d, "run", "--rm", "-T", *extra, *argv, stdin=stdin)
                assert got[3] == want_path, (argv, got)
                assert got[:2] == (code, out) and says in got[2], (argv, extra, got)
                assert one_offs(env, d) == [], (argv, extra)  # gone on return, both ways
        assert state_dirs(env) == kept  # nor left on the disk
        got = run(env, d, "run", "--rm", "-T", "--name", "chosen-one", "app", "true")
        assert got[0] == 0 and got[3] == "quick", got
        assert "chosen-one" not in str(env.ps(d, "-a"))
        env.composer("down", "-t", "1", cwd=d)


def test_ctrl_c_ends_the_one_off_with_130_and_nothing_is_left(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "interrupt"
    write_stack(d, STACK)
    with taken_down(env, d) as procs:
        env.composer("up", "-d", "tiny", cwd=d)
        kept = state_dirs(env)
        for extra in ((), FULL):
            proc = subprocess.Popen(
                [sys.executable, "-c", CLI, "run", "--rm", "-T", *extra, "tiny", "sh", "-c",
                 "echo started; exec sleep 137"],
                cwd=d, env=env.environ, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE)
            procs.append(proc)  # type: ignore[arg-type]
            assert proc.stdout is not None and proc.stderr is not None
            assert proc.stdout.readline() == b"started\n"
            proc.send_signal(signal.SIGINT)  # passed to the container: sleep dies of it
            assert proc.wait(timeout=60) == 130, extra
            path = proc.stderr.read().rpartition(b"PATH ")[2].decode().strip()
            assert path == ("full" if extra else "quick")
            assert one_offs(env, d) == [], extra
        # a CLI killed outright: composerd removes the --rm one-off itself (quick path)
        proc = subprocess.Popen(
            [sys.executable, "-c", CLI, "run", "--rm", "-T", "tiny", "sh", "-c",
             "echo started; exec sleep 137"],
            cwd=d, env=env.environ, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        procs.append(proc)  # type: ignore[arg-type]
        assert proc.stdout is not None and proc.stdout.readline() == b"started\n"
        proc.kill()
        proc.wait(30)
        deadline = time.monotonic() + 20
        while one_offs(env, d):
            assert time.monotonic() < deadline, "the killed CLI's --rm one-off stayed"
            time.sleep(0.2)
        assert state_dirs(env) == kept
        env.composer("down", "-t", "1", cwd=d)


def test_run_on_a_terminal_quick_and_full_paths_agree(env: Env, tmp_path: Path) -> None:
    """A pty one-off: raw mode (the container's line discipline echoes), the terminal's
    size, ^C as a byte the container's shell gets, the exit code, nothing left."""
    import fcntl
    import os
    import pty
    import struct
    import termios

    from tests.e2e.conftest import read_until

    d = tmp_path / "tty"
    write_stack(d, STACK)
    with taken_down(env, d):
        env.composer("up", "-d", "tiny", cwd=d)
        kept = state_dirs(env)
        for extra, want_path in (((), "quick"), (FULL, "full")):
            master, slave = pty.openpty()
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
            saved = termios.tcgetattr(slave)
            proc = subprocess.Popen(
                [sys.executable, "-c", CLI, "run", "--rm", *extra, "tiny", "sh", "-c",
                 "[ -t 0 ] && echo on-a-tty; read x; echo typed-$x; stty size; "
                 "trap 'echo got-int; exit 9' INT; echo waiting; while :; do sleep 1; done"],
                cwd=d, env=env.environ, stdin=slave, stdout=slave, stderr=slave)
            try:
                assert b"on-a-tty" in read_until(master, b"on-a-tty", timeout=120), extra
                # typed once the size was sent (a start races it: both paths, as docker's)
                os.write(master, b"hi\r")
                out = read_until(master, b"waiting")
                assert b"typed-hi" in out and b"33 111" in out, (extra, out)
                os.write(master, b"\x03")  # ^C: a byte, the container's tty makes it SIGINT
                out = read_until(master, b"PATH ")
                assert b"got-int" in out, (extra, out)
                assert proc.wait(timeout=30) == 9, extra
                rest = out.rpartition(b"PATH ")[2] + read_until(master, b"\n", timeout=5)
                assert rest.decode().strip() == want_path, (extra, rest)
                assert termios.tcgetattr(slave) == saved  # the terminal as it was
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)
                os.close(slave)
                os.close(master)
            assert one_offs(env, d) == [], extra
        assert state_dirs(env) == kept
        env.composer("down", "-t", "1", cwd=d)
