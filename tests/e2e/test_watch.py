"""`composer watch` and `up --watch` through the CLI and a real composerd: edits reach the
running container, deletions remove, ignored paths stay out, a change of the build context
rebuilds and recreates, sync+restart and sync+exec act, Ctrl-C ends cleanly."""
from __future__ import annotations

import queue
import signal
import subprocess
import threading
import time
from pathlib import Path

from tests.e2e.conftest import Env, write_stack


class Lines:
    """A process's stdout read in a thread, so a test can wait for a line with a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.seen = ""
        self.q: queue.Queue[str] = queue.Queue()
        assert proc.stdout is not None
        threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True).start()

    def _pump(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.q.put(line)

    def wait_for(self, text: str, timeout: float = 60) -> str:
        deadline = time.time() + timeout
        while text not in self.seen and time.time() < deadline:
            try:
                self.seen += self.q.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None and self.q.empty():
                    break
        assert text in self.seen, f"{text!r} not seen in:\n{self.seen}"
        return self.seen

    def wait_count(self, text: str, n: int, timeout: float = 60) -> None:
        """Until `text` was printed `n` times."""
        deadline = time.time() + timeout
        while self.seen.count(text) < n and time.time() < deadline:
            try:
                self.seen += self.q.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None and self.q.empty():
                    break
        assert self.seen.count(text) == n, f"{text!r} not seen {n} times in:\n{self.seen}"


def exec_out(env: Env, d: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return env.composer("exec", "-T", "app", *argv, cwd=d, check=False)


def wait_content(env: Env, d: Path, path: str, want: str | None, timeout: float = 20) -> None:
    """Until `path` in the container holds `want` (None: until it does not exist)."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        p = exec_out(env, d, "cat", path)
        last = p
        if want is None and p.returncode != 0:
            return
        if want is not None and p.returncode == 0 and p.stdout == want:
            return
        time.sleep(0.1)
    raise AssertionError(f"{path}: wanted {want!r}, last: {last}")


def stop(proc: subprocess.Popen[str], lines: Lines) -> int:
    """Ctrl-C, then the exit code; it must end within 10 s."""
    t0 = time.time()
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=10)
    assert time.time() - t0 < 10
    return code


SYNC = """
services:
  app:
    image: busybox
    init: true
    command: sh -c 'mkdir -p /app/data && exec sleep 600'
    develop:
      watch:
        - action: sync
          path: ./data
          target: /app/data
          ignore: ["*.foo", ./ignored]
        - action: sync+restart
          path: ./config
          target: /app/config
        - action: sync+exec
          path: ./hooks
          target: /app/hooks
          exec:
            command: sh -c 'cat /app/hooks/*; echo SUCCESS'
"""


def test_watch_syncs_edits_deletions_not_ignored_paths_and_ends_on_ctrl_c(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "w"
    write_stack(d, SYNC)
    data = d / "data"
    data.mkdir()
    (data / "before.txt").write_text("there before")  # no initial_sync: not copied
    proc = env.popen("watch", cwd=d)
    lines = Lines(proc)
    lines.wait_for("Watch enabled")

    (data / "hello.txt").write_text("hello world")
    wait_content(env, d, "/app/data/hello.txt", "hello world")
    (data / "hello.txt").write_text("hello watch")
    wait_content(env, d, "/app/data/hello.txt", "hello watch")
    (data / "hello.txt").unlink()
    wait_content(env, d, "/app/data/hello.txt", None)

    (data / "data.foo").write_text("ignored")
    (data / "ignored").mkdir()
    (data / "ignored" / "hello.txt").write_text("ignored")
    (data / "sentinel").write_text("flushed")  # synced after (or with) the ignored ones
    wait_content(env, d, "/app/data/sentinel", "flushed")
    assert exec_out(env, d, "ls", "-a", "/app/data").stdout.split() == [".", "..", "sentinel"]

    sub = data / "subdir" / "deeper"
    sub.mkdir(parents=True)  # a new tree: watched at once, its files reach the container
    (sub / "file.txt").write_text("a")
    wait_content(env, d, "/app/data/subdir/deeper/file.txt", "a")
    for text in ("x", "y", "z"):
        (sub / "file.txt").write_text(text)
    wait_content(env, d, "/app/data/subdir/deeper/file.txt", "z")
    import shutil

    shutil.rmtree(data / "subdir")
    wait_content(env, d, "/app/data/subdir/deeper/file.txt", None)
    assert exec_out(env, d, "test", "-e", "/app/data/subdir").returncode == 1

    (d / "config").mkdir()  # a watched path that did not exist when watch started
    (d / "config" / "file.config").write_text("updated config")
    lines.wait_for('service(s) ["app"] restarted')
    wait_content(env, d, "/app/config/file.config", "updated config")

    (d / "hooks").mkdir()
    (d / "hooks" / "h.txt").write_text("hook input\n")
    out = lines.wait_for("SUCCESS")
    assert "hook input" in out

    assert stop(proc, lines) == 130
    assert "Watch disabled" in lines.wait_for("Watch disabled")
    assert [r["State"] for r in env.ps(d)] == ["running"]  # as Compose: watch leaves them up
    env.composer("down", "-t", "1", cwd=d)


REBUILD = """
services:
  app:
    build: .
    init: true
    command: sleep 600
    develop:
      watch:
        - action: rebuild
          path: ./src
        - action: sync
          path: ./static
          target: /static
          initial_sync: true
"""


def test_a_build_context_change_rebuilds_and_recreates_with_the_new_image(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "rb"
    write_stack(d, REBUILD)
    (d / "Dockerfile").write_text("FROM busybox\nCOPY src /src\n")
    (d / ".dockerignore").write_text("src/*.tmp\n")
    (d / "src").mkdir()
    (d / "src" / "v.txt").write_text("v1")
    (d / "static").mkdir()
    (d / "static" / "index.html").write_text("initial")
    proc = env.popen("watch", cwd=d)
    lines = Lines(proc)
    lines.wait_for("Watch enabled")
    assert exec_out(env, d, "cat", "/src/v.txt").stdout == "v1"
    assert exec_out(env, d, "cat", "/static/index.html").stdout == "initial"  # initial_sync
    first = env.ps(d)[0]["ID"]

    (d / "src" / "scratch.tmp").write_text("dockerignored: no rebuild")
    (d / "src" / "v.txt").write_text("v2")
    lines.wait_for('service(s) ["app"] successfully built', timeout=120)
    wait_content(env, d, "/src/v.txt", "v2", timeout=60)
    assert env.ps(d)[0]["ID"] != first  # a new container, from the new image
    assert lines.seen.count("Rebuilding service(s)") == 1
    images = env.composer("image", "ls", cwd=d).stdout
    assert images.count("rb-app") == 1, images  # the previous image was pruned

    assert stop(proc, lines) == 130
    env.composer("down", "-t", "1", cwd=d)


def test_up_watch_shows_the_watch_lines_beside_the_logs(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "upw"
    write_stack(d, SYNC.replace("mkdir -p /app/data &&", "mkdir -p /app/data && echo app-ready &&"))
    (d / "data").mkdir()
    proc = env.popen("up", "--watch", cwd=d)
    lines = Lines(proc)
    lines.wait_for("⦿ Watch enabled")
    lines.wait_for("app-ready")
    (d / "data" / "a.txt").write_text("attached")
    lines.wait_for('⦿ Syncing service "app" after 1 changes were detected')
    wait_content(env, d, "/app/data/a.txt", "attached")
    (d / "config").mkdir()
    (d / "config" / "c").write_text("c")  # sync+restart: the logs go on after the restart
    lines.wait_for('⦿ service(s) ["app"] restarted')
    lines.wait_count("app-1  | app-ready", 2, timeout=30)  # once: a restart resumes the logs
    assert stop(proc, lines) == 130
    assert [r["State"] for r in env.ps(d, "-a")] == ["exited"]  # the attached up stops them
    env.composer("down", cwd=d)


def test_watch_without_develop_is_one_line(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "nodev"
    write_stack(d, "services:\n  app:\n    image: busybox\n    command: sleep 600\n")
    p = env.composer("watch", cwd=d, check=False)
    assert p.returncode == 1
    assert p.stderr.strip() == ("error: none of the selected services is configured for watch, "
                                "consider setting a 'develop' section")
    p = env.composer("up", "-d", "--watch", cwd=d, check=False)
    assert p.returncode == 1 and "--detach can't be combined with --watch" in p.stderr
