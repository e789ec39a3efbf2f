"""An attached `composer up` as docker compose's: attached before the start (a one-shot's
output and exit line are never lost, a dependency's lines show while up waits for it),
only new output of reused containers, which services are attached (--attach,
--no-attach, --attach-dependencies, attach: false), the output flags, Ctrl-C twice, and
`down` from another terminal while up shows the logs."""
from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
from pathlib import Path

from tests.e2e.conftest import Env, taken_down, write_stack


class Watch:
    """stdout and stderr of a running CLI, line by line, with the time each came."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.out: list[tuple[float, str]] = []
        self.err: list[tuple[float, str]] = []
        self.threads = [threading.Thread(target=self._read, args=(s, dst), daemon=True)
                        for s, dst in ((proc.stdout, self.out), (proc.stderr, self.err))]
        for t in self.threads:
            t.start()

    @staticmethod
    def _read(stream: object, dst: list[tuple[float, str]]) -> None:
        for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
            dst.append((time.monotonic(), line))

    def stdout(self) -> str:
        return "".join(x for _, x in self.out)

    def stderr(self) -> str:
        return "".join(x for _, x in self.err)

    def wait_for(self, text: str, timeout: float = 120) -> float:
        """The time the first stdout line containing `text` came; fails after `timeout`."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            for t, line in list(self.out):
                if text in line:
                    return t
            if self.proc.poll() is not None and not any(th.is_alive() for th in self.threads):
                break
            time.sleep(0.05)
        raise AssertionError(f"{text!r} never came; stdout:\n{self.stdout()}\n"
                             f"stderr:\n{self.stderr()}")

    def finish(self, timeout: float = 120) -> int:
        code = self.proc.wait(timeout)
        for t in self.threads:
            t.join(10)
        return code


def test_attached_from_the_start_one_shots_and_health_waits(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "oneshot"
    write_stack(d, """\
services:
  slow:
    image: busybox
    init: true
    command: sh -c 'echo slow-booting; echo slow-warn >&2; sleep 3; touch /tmp/ok; echo slow-ready; sleep 4'
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ok"]
      interval: 0.5s
      retries: 100
  migrate:
    image: busybox
    command: sh -c 'echo migrating; echo migration-error >&2; exit 3'
    depends_on:
      slow: {condition: service_healthy}
""")
    with taken_down(env, d) as procs:
        w = Watch(env.popen("up", "--no-color", cwd=d))
        procs.append(w.proc)
        booting = w.wait_for("slow-1  | slow-booting")
        ready = w.wait_for("slow-1  | slow-ready")
        assert ready - booting > 2  # shown while up waited for it to be healthy, not after
        w.wait_for("migrate-1  | migrating")
        w.wait_for("migrate-1 exited with code 3")  # the one-shot's exit line
        assert w.finish() == 0  # all stopped by themselves: up ends, as docker compose's
        out, err = w.stdout(), w.stderr()
        assert "Attaching to migrate-1, slow-1" in out
        assert "slow-1 exited with code 0" in out
        # stderr of a container is our stderr, with its prefix
        assert "slow-1  | slow-warn" in err and "slow-warn" not in out
        assert "migrate-1  | migration-error" in err
        # the one-shot exits at once, every time: its output is never lost
        for _ in range(3):
            p = env.composer("up", "--no-color", "migrate", cwd=d, timeout=180)
            assert "migrate-1  | migrating" in p.stdout and "migrate-1 exited with code 3" in p.stdout
        env.composer("down", "-t", "1", cwd=d)


# c outlives a and b, so each `up` finds them exited and starts them again (a running one
# would be reused and show nothing old: a dependency still running is another test's case)
CHAIN = """\
services:
  a:
    image: busybox
    command: sh -c 'echo from-a; sleep 1'
  b:
    image: busybox
    command: sh -c 'echo from-b; sleep 1'
    depends_on: [a]
  c:
    image: busybox
    command: sh -c 'echo from-c; echo c-err >&2; sleep 3'
    depends_on: [b]
  quiet:
    image: busybox
    command: echo from-quiet
    attach: false
"""


def test_which_services_are_attached_and_how_they_print(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "chain"
    write_stack(d, CHAIN)
    with taken_down(env, d):

        def up(*args: str) -> subprocess.CompletedProcess[str]:
            return env.composer("up", "--no-color", *args, cwd=d, timeout=180)

        p = up("c")  # c -> b -> a: only the named service, as docker compose
        assert "c-1  | from-c" in p.stdout and "from-a" not in p.stdout and "from-b" not in p.stdout
        assert "Attaching to c-1\n" in p.stdout
        p = up("--attach-dependencies", "c")
        assert all(f"{s}-1  | from-{s}" in p.stdout for s in "abc"), p.stdout
        p = up("--attach-dependencies", "--no-attach", "b", "c")
        assert "from-a" in p.stdout and "from-c" in p.stdout and "from-b" not in p.stdout
        p = up("--attach", "a", "c")
        assert "a-1  | from-a" in p.stdout and "from-c" not in p.stdout
        p = up()  # everything but `attach: false`
        assert "from-quiet" not in p.stdout and "from-a" in p.stdout
        assert env.composer("logs", "quiet", cwd=d).stdout.strip().endswith("from-quiet")
        bad = env.composer("up", "--attach", "a", "--attach-dependencies", "c", cwd=d, check=False)
        assert bad.returncode == 1 and "cannot combine --attach and --attach-dependencies" in bad.stderr

        p = up("--no-log-prefix", "c")
        assert "from-c\n" in p.stdout.splitlines(keepends=True) and "c-err\n" in p.stderr
        p = up("--timestamps", "c")
        assert re.search(r"^c-1  \| \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z from-c$", p.stdout, re.M), \
            p.stdout
        p = env.composer("up", "c", cwd=d, timeout=180)  # not a terminal: no colour anyway
        assert "\033[" not in p.stdout
        env.composer("down", "-t", "1", cwd=d)


TICKER = """\
services:
  ticker:
    image: busybox
    init: true
    command: sh -c 'echo booted; i=0; while true; do i=$$((i+1)); echo tick-$$i; sleep 0.3; done'
"""


def test_reattach_shows_only_new_output_and_down_elsewhere_is_not_blocked(
        env: Env, tmp_path: Path) -> None:
    d = tmp_path / "ticker"
    write_stack(d, TICKER)
    with taken_down(env, d) as procs:
        env.composer("up", "-d", cwd=d)
        time.sleep(2)
        w = Watch(env.popen("up", "--no-color", cwd=d))  # reuses the running container
        procs.append(w.proc)
        w.wait_for("ticker-1  | tick-")
        assert "booted" not in w.stdout()  # its old output is not replayed
        t0 = time.monotonic()
        down = env.composer("down", "-t", "1", cwd=d, timeout=120)  # from another terminal
        took = time.monotonic() - t0
        assert "waiting for another composer" not in down.stderr
        assert took < 60, took
        assert w.finish(60) == 0  # the attached up ends with its containers
        assert "ticker-1 exited with code" in w.stdout()


def test_second_ctrl_c_kills_and_exits_130(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "stubborn"
    write_stack(d, """\
services:
  stubborn:
    image: busybox
    command: sh -c 'trap "echo ignoring-term" TERM; echo up-and-running; while true; do sleep 0.2; done'
    stop_grace_period: 120s
""")
    with taken_down(env, d) as procs:
        w = Watch(env.popen("up", "--no-color", cwd=d))
        procs.append(w.proc)
        w.wait_for("up-and-running")
        w.proc.send_signal(signal.SIGINT)
        deadline = time.time() + 60
        while "Gracefully stopping... (press Ctrl+C again to force)" not in w.stderr():
            assert time.time() < deadline, w.stderr()
            time.sleep(0.1)
        w.wait_for("ignoring-term")  # it got the stop signal and carries on
        time.sleep(1)
        assert w.proc.poll() is None  # still waiting out the 120 s grace period
        t0 = time.monotonic()
        w.proc.send_signal(signal.SIGINT)
        assert w.finish(60) == 130
        assert time.monotonic() - t0 < 30  # killed, not the grace period
        assert "stubborn-1 exited with code 137" in w.stdout()
        ps = env.composer("ps", "-q", cwd=d).stdout.strip()
        assert ps == ""  # nothing left running when up returned
        env.composer("down", "-t", "1", cwd=d)


def test_ctrl_c_with_the_live_display_shows_the_stop(env: Env, tmp_path: Path) -> None:
    """On a terminal (`--progress tty` forces the live display on our pipe) the display ends
    at `Attaching to`; the graceful stop a Ctrl-C starts is still reported, as lines."""
    d = tmp_path / "livestop"
    write_stack(d, """\
services:
  calm:
    image: busybox
    init: true
    command: sh -c 'echo calm-ready; sleep 300'
""")
    with taken_down(env, d) as procs:
        w = Watch(env.popen("--progress", "tty", "up", "--no-color", cwd=d))
        procs.append(w.proc)
        w.wait_for("calm-ready")
        w.proc.send_signal(signal.SIGINT)
        assert w.finish(60) == 130
        err = w.stderr()
        after = err[err.index("Gracefully stopping... (press Ctrl+C again to force)"):]
        assert " Container livestop-calm-1  Stopping\n" in after, err
        assert " Container livestop-calm-1  Stopped\n" in after, err


def test_containers_another_up_recreates_or_adds_are_followed(
        env: Env, tmp_path: Path) -> None:
    """As docker compose's up follows the containers that start after it attached: an edit
    and `up -d` in another terminal recreates `app`, `--scale` adds one; their output shows
    here from their first line (written at once: the monitor replays it), each line once."""
    d = tmp_path / "followed"
    stack = """\
services:
  steady:
    image: busybox
    init: true
    command: sh -c 'echo steady-ready; sleep 300'
  app:
    image: busybox
    init: true
    command: sh -c 'echo app-VERSION; sleep 300'
"""
    write_stack(d, stack.replace("VERSION", "v1"))
    with taken_down(env, d) as procs:
        w = Watch(env.popen("up", "--no-color", cwd=d))
        procs.append(w.proc)
        w.wait_for("app-v1")
        w.wait_for("steady-ready")
        write_stack(d, stack.replace("VERSION", "v2"))
        env.composer("up", "-d", cwd=d)  # from another terminal: recreates app-1
        w.wait_for("app-v2")
        env.composer("up", "-d", "--scale", "app=2", cwd=d)
        deadline = time.time() + 60
        while "app-2 " not in w.stdout():
            assert time.time() < deadline, w.stdout()
            time.sleep(0.1)
        time.sleep(1)
        lines = [" ".join(line.split()) for line in w.stdout().splitlines()]  # (padding)
        assert lines.count("app-1 | app-v2") == 1, w.stdout()
        assert lines.count("app-2 | app-v2") == 1, w.stdout()
        assert "app-1 exited with code 143" in lines, w.stdout()  # the old app-1, stopped
        env.composer("down", "-t", "1", cwd=d)
        assert w.finish(60) == 0
