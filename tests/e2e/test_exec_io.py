"""`exec` and `run` carry bytes, live, as a user types them: piped stdin with its EOF, big
stdin whole, output as it is written, byte-exact, stdout and stderr apart, exit codes."""
from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.e2e.conftest import Env, taken_down, write_stack

STACK = """\
services:
  app:
    image: busybox
    init: true
    command: sleep 600
  db:
    image: busybox
    init: true
    command: sleep 600
"""


def cli(env: Env, d: Path, *args: str, stdin: bytes | None = None,
        stdin_file: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[bytes]:
    """The CLI with real pipes (or a file) as stdin, as a shell would run it."""
    f = open(stdin_file, "rb") if stdin_file is not None else None  # noqa: SIM115
    try:
        return subprocess.run([sys.executable, "-m", "composer.cli", *args], cwd=d,
                              env=env.environ, input=stdin, stdin=f,
                              capture_output=True, timeout=timeout)
    finally:
        if f is not None:
            f.close()


def test_exec_gives_piped_stdin_with_its_eof(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "pipes"
    write_stack(d, STACK)
    with taken_down(env, d):
        env.composer("up", "-d", cwd=d)
        p = cli(env, d, "exec", "-T", "app", "cat", stdin=b"hello\n")
        assert (p.returncode, p.stdout) == (0, b"hello\n"), p.stderr
        two = tmp_path / "two-lines.txt"
        two.write_bytes(b"first\nsecond\n")
        for flags in (["-T"], [], ["-i"], ["-T", "-i"]):  # with and without -T/-i: not a tty here
            p = cli(env, d, "exec", *flags, "db", "sh", "-c", "wc -l", stdin_file=two)
            assert p.stdout.strip() == b"2", (flags, p.stdout, p.stderr)
        # a command that does not read its stdin still ends (EOF or not)
        p = cli(env, d, "exec", "-T", "app", "echo", "no-input", stdin=b"ignored\n" * 1000)
        assert (p.returncode, p.stdout) == (0, b"no-input\n")
        env.composer("down", "-t", "1", cwd=d)


def test_the_exit_code_is_never_lost_when_stdin_ends_with_the_command(
        env: Env, tmp_path: Path) -> None:
    """The end of stdin racing the end of the command: composerd closing its websocket
    first made 1 run in 30-60 exit 255 without the command's code (or output)."""
    d = tmp_path / "race"
    write_stack(d, STACK)
    with taken_down(env, d):
        env.composer("up", "-d", cwd=d)
        got = [cli(env, d, "exec", "-T", "app", "sh", "-c", "echo x; exit 3", stdin=b"")
               for _ in range(20)]
        assert [(p.returncode, p.stdout) for p in got] == [(3, b"x\n")] * 20, \
            [p.stderr for p in got if p.returncode != 3]
        env.composer("down", "-t", "1", cwd=d)


def test_a_big_stdin_arrives_whole_for_exec_and_run(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "dump"
    write_stack(d, STACK)
    with taken_down(env, d):
        env.composer("up", "-d", cwd=d)
        dump = tmp_path / "dump.sql"
        block = hashlib.sha256(b"composer").hexdigest().encode() * 1024  # 64 KiB, not all zeros
        with open(dump, "wb") as f:
            for i in range(1600):  # 100 MiB, as `exec -T db mysql < dump.sql` would send
                f.write(block[:-8] + f"{i:07d}\n".encode())
        want = hashlib.md5(dump.read_bytes()).hexdigest()
        p = cli(env, d, "exec", "-T", "db", "md5sum", stdin_file=dump)
        assert p.stdout.split()[0].decode() == want, p.stderr
        p = cli(env, d, "run", "--rm", "-T", "db", "md5sum", stdin_file=dump)
        assert p.stdout.split()[0].decode() == want, p.stderr
        assert p.returncode == 0
        env.composer("down", "-t", "1", cwd=d)


def _collect(proc: subprocess.Popen[bytes], got: list[tuple[float, bytes]]) -> None:
    """Each line of its stdout with the time it arrived."""
    assert proc.stdout is not None
    for line in iter(proc.stdout.readline, b""):
        got.append((time.monotonic(), line))


def test_output_streams_as_written_byte_exact_and_apart(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "live"
    write_stack(d, STACK)
    with taken_down(env, d) as procs:
        env.composer("up", "-d", cwd=d)
        for verb in (["exec", "-T", "app"], ["run", "--rm", "-T", "app"]):
            proc = subprocess.Popen([sys.executable, "-m", "composer.cli", *verb, "sh", "-c",
                                     "echo one; sleep 2; echo three"], cwd=d, env=env.environ,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            procs.append(proc)  # type: ignore[arg-type]
            lines: list[tuple[float, bytes]] = []
            reader = threading.Thread(target=_collect, args=(proc, lines))
            reader.start()
            assert proc.wait(timeout=120) == 0
            reader.join(10)
            assert [x for _, x in lines] == [b"one\n", b"three\n"], verb
            assert lines[1][0] - lines[0][0] > 1.5, (verb, lines)  # "one" came as it was written

            p = cli(env, d, *verb, "sh", "-c", "echo out; echo err >&2; exit 7")
            assert (p.returncode, p.stdout, p.stderr) == (7, b"out\n", b"err\n"), verb

            p = cli(env, d, *verb, "sh", "-c", "head -c 4096 /bin/busybox; "
                    "head -c 4096 /bin/busybox | md5sum >&2")
            assert hashlib.md5(p.stdout).hexdigest() == p.stderr.split()[0].decode(), verb
            assert len(p.stdout) == 4096
        p = cli(env, d, "exec", "-T", "app", "nosuch-command")
        assert p.returncode == 127 and b"nosuch-command" in p.stderr
        env.composer("down", "-t", "1", cwd=d)


def test_ctrl_c_ends_exec_with_130_and_ends_the_command(env: Env, tmp_path: Path) -> None:
    """^C in `exec -T` (the quick path's blocking read, no event loop): 130, and composerd
    ends the command when the websocket goes, as with the asyncio path."""
    import signal

    d = tmp_path / "interrupt"
    write_stack(d, STACK)
    with taken_down(env, d) as procs:
        env.composer("up", "-d", cwd=d)
        proc = subprocess.Popen([sys.executable, "-m", "composer.cli", "exec", "-T", "app", "sh",
                                 "-c", "echo started; exec sleep 137"], cwd=d, env=env.environ,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        procs.append(proc)  # type: ignore[arg-type]
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"started\n"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
        deadline = time.monotonic() + 20
        while "sleep 137" in env.composer("top", "app", cwd=d).stdout:
            assert time.monotonic() < deadline, "the exec'd command outlived its client"
            time.sleep(0.2)
        env.composer("down", "-t", "1", cwd=d)
