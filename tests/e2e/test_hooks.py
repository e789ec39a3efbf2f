"""Lifecycle hooks through the CLI and a real composerd (busybox containers on this kernel).

pre_start hooks prepare a shared volume before the service reads it, and a failing one stops
the service and its dependents with one line; post_start hooks are exec'd in the running
container (they see its processes; `privileged` gives every capability); pre_stop hooks run
before the stop signal on `down` and on Ctrl-C of the attached `up`, whose output shows the
hooks' lines; pre_start is re-run when the service's spec changes, not on `restart`.
"""
from __future__ import annotations

import re
import signal
import time
from pathlib import Path

from tests.e2e.conftest import Env, write_stack


def host_caps() -> str:
    """Every capability this host lets us hold (our bounding set): what privileged gets."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return line.split()[1]
    raise AssertionError("no CapBnd in /proc/self/status")


def test_pre_start_prepares_a_shared_volume_before_the_service_reads_it(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "prestart"
    write_stack(d, """
services:
  app:
    image: busybox
    init: true
    command: sh -c 'cat /shared/init.txt; exec sleep 600'
    volumes: [data:/shared]
    user: "1000"
    pre_start:
      - command: sh -c 'echo initialized > /shared/init.txt'
        user: root
      - command: sh -c 'chown 1000 /shared/init.txt && echo "second hook as $$(id -u)"'
volumes:
  data:
""")
    p = env.composer("up", "-d", cwd=d)
    assert "Traceback" not in p.stderr
    deadline = time.time() + 10
    logs = ""
    while time.time() < deadline and "initialized" not in logs:
        logs = env.composer("logs", "app", cwd=d).stdout
        time.sleep(0.1)
    assert "initialized" in logs, logs
    # the hooks' containers are gone; the service's is the only one
    assert [r["Name"] for r in env.ps(d, "-a")] == ["prestart-app-1"]
    env.composer("down", "-v", "-t", "1", cwd=d)


def test_a_failing_pre_start_stops_the_service_and_its_dependents(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "prefail"
    write_stack(d, """
services:
  db:
    image: busybox
    command: sleep 600
    pre_start:
      - command: sh -c 'echo ran-0 >> /out/hooks.txt'
      - command: sh -c 'echo "no schema" >&2; exit 17'
    volumes: [./out:/out]
  web:
    image: busybox
    command: sleep 600
    depends_on: [db]
""")
    (d / "out").mkdir()
    p = env.composer("up", "-d", cwd=d, check=False)
    assert p.returncode == 1, p.stderr
    assert "error: service db: pre_start[1] exited with code 17: no schema" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr
    assert (d / "out" / "hooks.txt").read_text() == "ran-0\n"  # the first hook did run
    rows = {r["Service"]: r["State"] for r in env.ps(d, "-a")}
    # as docker compose's up: every container created first, so web too; neither started,
    # no hook container left
    assert rows == {"db": "created", "web": "created"}
    env.composer("down", cwd=d)


def test_post_start_sees_the_process_and_privileged_gets_every_capability(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "poststart"
    write_stack(d, """
services:
  app:
    image: busybox
    command: sleep 600
    cap_drop: [ALL]
    volumes: [./out:/out]
    post_start:
      - command: sh -c 'tr "\\0" " " < /proc/1/cmdline > /out/main.txt'
      - command: sh -c 'grep CapEff /proc/self/status > /out/plain.txt'
      - command: sh -c 'grep CapEff /proc/self/status > /out/privileged.txt'
        privileged: true
""")
    (d / "out").mkdir()
    env.composer("up", "-d", cwd=d)
    assert (d / "out" / "main.txt").read_text().strip() == "sleep 600"  # pid 1: the service
    assert (d / "out" / "plain.txt").read_text().split() == ["CapEff:", "0000000000000000"]
    assert (d / "out" / "privileged.txt").read_text().split() == ["CapEff:", host_caps()]
    env.composer("down", "-t", "1", cwd=d)


def test_run_execs_post_start_beside_the_one_off(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "runhook"
    write_stack(d, """
services:
  app:
    image: busybox
    volumes: [./out:/out]
    post_start:
      - command: sh -c 'echo "hooked $$(cat /proc/1/cmdline | tr "\\0" " ")" > /out/run.txt'
""")
    (d / "out").mkdir()
    p = env.composer("run", "-d", "app", "sleep", "30", cwd=d)
    assert p.stdout.strip().startswith("runhook-app-run-")
    assert (d / "out" / "run.txt").read_text().strip() == "hooked sleep 30"  # done before -d returns
    env.composer("down", "-t", "1", cwd=d)


def test_a_failing_post_start_fails_up_with_the_hooks_line(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "postfail"
    write_stack(d, """
services:
  test:
    image: busybox
    init: true
    command: sleep 600
    post_start:
      - command: sh -c 'command in error'
""")
    p = env.composer("up", "-d", cwd=d, check=False)
    assert p.returncode == 1
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("error: service test: post_start[0] hook in container postfail-test-1 "
                           "exited with code 127: "), p.stderr
    env.composer("down", "-t", "1", cwd=d)


PRE_STOP = """
services:
  app:
    image: busybox
    command: sh -c 'trap "echo term >> /out/log; exit 0" TERM; echo app-ready; while true; do sleep 0.1; done'
    stop_grace_period: 5s
    volumes: [./out:/out]
    pre_stop:
      - command: sh -c 'echo pre_stop >> /out/log; echo "draining connections"'
"""


def test_pre_stop_runs_on_down_before_the_stop_signal(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "prestop"
    write_stack(d, PRE_STOP)
    (d / "out").mkdir()
    env.composer("up", "-d", cwd=d)
    env.composer("down", cwd=d)
    assert (d / "out" / "log").read_text() == "pre_stop\nterm\n"


def test_attached_up_shows_the_hooks_output_and_ctrl_c_runs_pre_stop(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "attached"
    write_stack(d, PRE_STOP + """    post_start:
      - command: echo "post_start says hello"
""")
    (d / "out").mkdir()
    proc = env.popen("up", cwd=d)
    assert proc.stdout is not None
    seen = ""
    deadline = time.time() + 30
    hello = re.compile(r"^app-1 -> +\| post_start says hello$", re.M)  # Compose's `app-1 -> | `
    # the container is attached before it starts: its first line and the hook's come in
    # either order
    while time.time() < deadline and not ("app-ready" in seen and hello.search(seen)):
        seen += proc.stdout.readline()
    assert hello.search(seen), seen
    assert re.search(r"^app-1 +\| app-ready$", seen, re.M), seen
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert re.search(r"^app-1 -> +\| draining connections$", out, re.M), out
    assert (d / "out" / "log").read_text() == "pre_stop\nterm\n"
    env.composer("down", cwd=d)


def test_pre_start_reruns_on_a_spec_change_not_on_restart(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "rerun"
    write_stack(d, """
services:
  app:
    image: busybox
    init: true
    command: sleep 600
    volumes: [./out:/out]
    pre_start:
      - command: sh -c 'echo ${HOOK_VERSION:-v1} >> /out/versions.txt'
""")
    (d / "out").mkdir()
    versions = d / "out" / "versions.txt"
    env.composer("up", "-d", cwd=d)
    assert versions.read_text() == "v1\n"
    env.composer("restart", cwd=d)
    env.composer("up", "-d", cwd=d)  # unchanged: nothing recreated
    assert versions.read_text() == "v1\n"
    env.environ["HOOK_VERSION"] = "v2"
    try:
        p = env.composer("up", "-d", cwd=d)
    finally:
        del env.environ["HOOK_VERSION"]
    assert "Recreate" in p.stderr, p.stderr
    assert versions.read_text() == "v1\nv2\n"
    env.composer("down", "-t", "1", cwd=d)
