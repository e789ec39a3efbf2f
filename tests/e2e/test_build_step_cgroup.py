"""composerd killed mid-build: the RUN step's process outlives it in its own cgroup (its shim
supervises it) and its step directory stays on disk; the next composerd removes that cgroup,
and so ends the step, then the directory, when it starts."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from tests import leaks
from tests.e2e.conftest import Env, write_stack

STACK = """
services:
  app:
    image: crash-build
    build:
      context: .
      dockerfile_inline: |
        FROM busybox
        RUN touch /started; exec sleep 987652
"""


def step_cgroups(env: Env) -> list[Path]:
    parent = env.environ["COMPOSER_CGROUP_PARENT"]
    return [d for d in leaks.cgroup_dirs(parent) if d.name.startswith("build-")]


def step_dirs(env: Env) -> list[Path]:
    tmp = Path(env.environ["COMPOSER_ROOT"]) / "build" / "tmp"
    return sorted(tmp.glob("step-*")) if tmp.is_dir() else []


def sleepers() -> list[int]:
    out = []
    for p in os.listdir("/proc"):
        try:
            if p.isdigit() and Path(f"/proc/{p}/cmdline").read_bytes() == b"sleep\x00987652\x00":
                out.append(int(p))
        except OSError:
            continue
    return out


def test_a_run_step_left_by_a_killed_daemon_is_removed_at_its_next_start(
        env: Env, tmp_path: Path) -> None:
    d = tmp_path / "crash"
    write_stack(d, STACK)
    env.composer("images", cwd=d)  # composerd runs
    build = env.popen("build", cwd=d)
    try:
        deadline = time.monotonic() + 120
        while not sleepers():
            assert build.poll() is None, build.communicate()
            assert time.monotonic() < deadline, "the RUN step did not start"
            time.sleep(0.1)
        pid = env.daemon_pid()
        assert pid
        os.kill(pid, signal.SIGKILL)
        build.communicate(timeout=60)
    finally:
        if build.poll() is None:
            build.kill()
            build.wait(30)
    time.sleep(0.5)
    left = step_cgroups(env)
    assert left and sleepers(), "the step did not outlive the daemon: nothing to clean up"
    assert step_dirs(env), "the killed build left no step directory: nothing to clean up"
    env.composer("images", cwd=d)  # a new composerd: its start removes what the step left
    assert step_cgroups(env) == []
    assert step_dirs(env) == []
    deadline = time.monotonic() + 10
    while sleepers():
        assert time.monotonic() < deadline, "the step's process survived its cgroup"
        time.sleep(0.05)
