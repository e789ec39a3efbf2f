"""The orchestrator through the CLI and a real composerd: order, conditions, reconcile, crashes."""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from tests.e2e.conftest import Env, read_until, write_stack
from tests.ports import free_block

CHAIN = """
services:
  db:
    image: busybox
    init: true
    command: sh -c "sleep 1.5; touch /tmp/ready; exec sleep 600"
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 0.1s
      retries: 100
  app:
    image: busybox
    init: true
    command: sleep 600
    depends_on:
      db:
        condition: service_healthy
  web:
    image: busybox
    init: true
    command: sleep 600
    depends_on: [app]
"""


def ps(env: Env, cwd: Path, *extra: str) -> list[dict[str, object]]:
    return env.ps(cwd, *extra)


def inspect(env: Env, cwd: Path, service: str) -> dict[str, object]:
    """started_at / finished_at of a service's container, through the engine client."""
    code = (
        "import asyncio, json, sys\n"
        "from runtime.client import Client\n"
        "from runtime.paths import Paths\n"
        "async def m():\n"
        "    async with Client(Paths.from_env().socket) as c:\n"
        f"        cs = await c.list_containers(all=True, labels={{'com.docker.compose.service': {service!r}}})\n"
        "        print(json.dumps([{'id': x.id, 'started_at': x.started_at, 'finished_at': x.finished_at,"
        " 'state': x.state, 'restart_count': x.restart_count, 'health': x.health, 'exit_code': x.exit_code}"
        " for x in cs]))\n"
        "asyncio.run(m())\n"
    )
    import subprocess
    import sys
    p = subprocess.run([sys.executable, "-c", code], env=env.environ, capture_output=True, text=True,
                       cwd=cwd, timeout=30)
    assert p.returncode == 0, p.stderr
    rows = json.loads(p.stdout)
    assert rows, f"no container for service {service}"
    return rows[0]  # type: ignore[no-any-return]


def test_chain_starts_in_dependency_order_and_stops_in_reverse(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "chain"
    write_stack(d, CHAIN)
    t0 = time.time()
    env.composer("up", "-d", cwd=d)
    db, app, web = (inspect(env, d, s) for s in ("db", "app", "web"))
    assert db["health"] == "healthy"
    # app waits for db to be healthy (≥ 1.5 s after db started), web for app to start
    assert float(app["started_at"]) >= float(db["started_at"]) + 1.4  # type: ignore[arg-type]
    assert float(web["started_at"]) >= float(app["started_at"])  # type: ignore[arg-type]
    assert time.time() - t0 < 15
    rows = ps(env, d)
    assert sorted(r["Service"] for r in rows) == ["app", "db", "web"]
    assert all(r["State"] == "running" for r in rows)

    env.composer("stop", cwd=d)
    db, app, web = (inspect(env, d, s) for s in ("db", "app", "web"))
    assert float(web["finished_at"]) <= float(app["finished_at"]) <= float(db["finished_at"])  # type: ignore[arg-type]
    env.composer("down", cwd=d)
    assert ps(env, d, "-a") == []


def test_failing_dependency_blocks_dependents(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "fail"
    write_stack(d, """
services:
  db:
    image: busybox
    command: sh -c "exit 3"
    healthcheck:
      test: ["CMD", "true"]
      interval: 1s  # db exits long before its first check (0.1 s passed one under load)
  app:
    image: busybox
    command: sleep 600
    depends_on:
      db:
        condition: service_healthy
""")
    p = env.composer("up", "-d", cwd=d, check=False)
    assert p.returncode != 0
    err = p.stderr.strip().splitlines()[-1]
    assert "app" in err and "db" in err and "exited (3)" in err, p.stderr
    assert "Traceback" not in p.stderr
    # as docker compose's up: app was created before db started, and never started
    states = {r["Service"]: r["State"] for r in ps(env, d, "-a")}
    assert states["app"] == "created", states
    env.composer("down", cwd=d)


def test_completed_successfully_migration_then_app(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "migrate"
    write_stack(d, """
services:
  migrate:
    image: busybox
    command: sh -c "sleep 0.5; echo migrated"
  app:
    image: busybox
    init: true
    command: sleep 600
    depends_on:
      migrate:
        condition: service_completed_successfully
""")
    env.composer("up", "-d", cwd=d)
    mig, app = inspect(env, d, "migrate"), inspect(env, d, "app")
    assert mig["state"] == "exited" and mig["exit_code"] == 0
    assert float(app["started_at"]) >= float(mig["finished_at"])  # type: ignore[arg-type]
    assert "migrated" in env.composer("logs", "migrate", cwd=d).stdout
    env.composer("down", cwd=d)


def test_independent_services_start_in_parallel(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "par"
    services = "\n".join(
        f"  s{i}:\n    image: busybox\n    init: true\n    command: sleep 600\n" for i in range(6))
    write_stack(d, "services:\n" + services)
    env.composer("up", "-d", cwd=d)
    starts = sorted(float(inspect(env, d, f"s{i}")["started_at"]) for i in range(6))  # type: ignore[arg-type]
    # one after the other they would take 6 x (create + start); in parallel the starts bunch up
    assert starts[-1] - starts[0] < 1.0, starts
    env.composer("down", "-t", "1", cwd=d)


def test_restart_policy_restarts_and_backs_off(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "crash"
    write_stack(d, """
services:
  crash:
    image: busybox
    command: sh -c "echo crashing; exit 1"
    restart: always
""")
    env.composer("up", "-d", cwd=d)
    time.sleep(2.5)
    first = inspect(env, d, "crash")
    assert int(first["restart_count"]) >= 3  # type: ignore[call-overload]
    # backoff doubles from 100 ms: in 2.5 s that is at most ~5 restarts, not hundreds
    assert int(first["restart_count"]) <= 8  # type: ignore[call-overload]
    logs = env.composer("logs", cwd=d).stdout
    assert logs.count("crashing") >= 3
    env.composer("down", cwd=d)


def test_up_twice_changes_nothing_and_an_edit_recreates_one(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "recon"
    text = """
services:
  a:
    image: busybox
    init: true
    command: sleep 600
  b:
    image: busybox
    init: true
    command: sleep 601
"""
    write_stack(d, text)
    env.composer("up", "-d", cwd=d)
    ids1 = {r["Service"]: r["ID"] for r in ps(env, d)}
    env.composer("up", "-d", cwd=d)
    ids2 = {r["Service"]: r["ID"] for r in ps(env, d)}
    assert ids1 == ids2
    write_stack(d, text.replace("sleep 601", "sleep 602"))
    env.composer("up", "-d", cwd=d)
    ids3 = {r["Service"]: r["ID"] for r in ps(env, d)}
    assert ids3["a"] == ids1["a"]
    assert ids3["b"] != ids1["b"]
    env.composer("down", cwd=d)


def test_kill_9_of_the_daemon_then_ps_and_down_still_work(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "crashd"
    port = free_block(1, host="127.0.0.1")
    write_stack(d, f"""
services:
  web:
    image: busybox
    init: true
    command: sh -c "mkdir -p /w && echo ok > /w/index.html && exec httpd -f -p 80 -h /w"
    ports: ["127.0.0.1:{port}:80"]
  db:
    image: busybox
    init: true
    command: sleep 600
""")
    env.composer("up", "-d", cwd=d)
    pid = env.daemon_pid()
    assert pid
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.3)
    rows = ps(env, d)  # starts a new daemon, which adopts the running containers
    assert sorted(r["Service"] for r in rows) == ["db", "web"]
    assert all(r["State"] == "running" for r in rows)
    assert env.daemon_pid() != pid
    import urllib.request
    assert urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read() == b"ok\n"
    env.composer("down", cwd=d)
    assert ps(env, d, "-a") == []


def test_ctrl_c_on_attached_up_stops_everything_in_order(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "attached"
    write_stack(d, """
services:
  db:
    image: busybox
    init: true
    command: sh -c "echo db-ready; exec sleep 600"
  web:
    image: busybox
    init: true
    command: sh -c "echo web-ready; exec sleep 600"
    depends_on: [db]
""")
    proc = env.popen("up", cwd=d)
    assert proc.stdout is not None
    seen = ""
    deadline = time.time() + 30
    while time.time() < deadline and not ("db-ready" in seen and "web-ready" in seen):
        seen += proc.stdout.readline()
    assert "db-ready" in seen and "web-ready" in seen, seen
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    db, web = inspect(env, d, "db"), inspect(env, d, "web")
    assert db["state"] == web["state"] == "exited"
    assert float(web["finished_at"]) <= float(db["finished_at"])  # type: ignore[arg-type]
    env.composer("down", cwd=d)


def test_exec_it_gives_an_interactive_shell_on_a_terminal(env: Env, tmp_path: Path) -> None:
    import pty
    import subprocess
    import sys

    d = tmp_path / "interactive"
    write_stack(d, "services:\n  box:\n    image: busybox\n    init: true\n    command: sleep 600\n")
    env.composer("up", "-d", cwd=d)
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "composer.cli", "exec", "box", "sh"], cwd=d,
                            env=env.environ, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)

    assert b"# " in read_until(master, b"# ")  # the shell's prompt: it runs on a terminal
    os.write(master, b"echo inside-$((6*7)); exit 5\n")
    out = read_until(master, b"inside-42\r\n")
    assert b"inside-42" in out
    assert proc.wait(timeout=20) == 5
    os.close(master)
    env.composer("down", "-t", "1", cwd=d)
