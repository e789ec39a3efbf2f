"""The flags of run, exec, events, images, ls, start/restart, build and down through the CLI
and a real composerd: what docker compose users type, checked on what the container sees."""
from __future__ import annotations

import json
import re
import socket
import time
import urllib.request
from pathlib import Path

from tests.e2e.conftest import Env, write_stack

STACK = """
services:
  web:
    image: busybox
    init: true
    command: sleep 600
    healthcheck: {test: ["CMD", "true"], interval: 1s}
"""


def cap_eff(text: str) -> int:
    m = re.search(r"CapEff:\s*([0-9a-f]+)", text)
    assert m, text
    return int(m.group(1), 16)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_run_and_exec_flags_reach_the_container(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "flags"
    write_stack(d, STACK)
    (d / "src").mkdir()
    (d / "src" / "f").write_text("from the host\n")
    env.composer("up", "-d", "--wait", cwd=d)

    # exec --privileged: every capability this host has (its own bounding set), else the
    # container's default set; --no-tty; --index names a replica
    plain = cap_eff(env.composer("exec", "-T", "web", "grep", "CapEff", "/proc/self/status",
                                 cwd=d).stdout)
    priv = cap_eff(env.composer("exec", "--no-tty", "--privileged", "web", "grep", "CapEff",
                                "/proc/self/status", cwd=d).stdout)
    host = int(re.findall(r"CapBnd:\s*([0-9a-f]+)", Path("/proc/self/status").read_text())[0], 16)
    assert plain & ~priv == 0 and priv == host and plain != priv
    r = env.composer("exec", "-T", "--index", "2", "web", "true", cwd=d, check=False)
    assert r.returncode == 1 and "container #2" in r.stderr

    # run -v (relative to here, read-only), --cap-add, --cap-drop
    out = env.composer("run", "--rm", "-T", "-v", "./src:/src:ro", "--cap-add", "NET_ADMIN",
                       "--cap-drop", "CHOWN", "web", "sh", "-c",
                       "cat /src/f; grep CapEff /proc/self/status; touch /src/x || echo ro;"
                       " chown 5 /tmp || echo nochown", cwd=d).stdout
    assert out.startswith("from the host\n") and "ro\nnochown\n" in out
    caps = cap_eff(out)
    assert caps & (1 << 12) and not caps & (1 << 0)  # NET_ADMIN in, CHOWN out
    assert not (d / "src" / "x").exists()

    # run -p publishes on the host; --use-aliases makes it one more `web` in DNS
    port = free_port()
    env.composer("run", "-d", "-p", f"127.0.0.1:{port}:80", "-l", "team=ops", "--use-aliases",
                 "web", "sh", "-c", "echo hello > /tmp/i; httpd -f -p 80 -h /tmp", cwd=d)
    body = b""
    for _ in range(50):
        try:
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/i", timeout=2).read()
            break
        except OSError:
            time.sleep(0.1)
    assert body == b"hello\n"
    env.composer("run", "-d", "web", "sleep", "600", cwd=d)  # no aliases: not a `web`
    answers = env.composer("exec", "-T", "web", "nslookup", "web", cwd=d).stdout
    assert len(re.findall(r"^Address: \d+\.\d+\.\d+\.\d+$", answers, re.M)) == 2, answers
    env.composer("down", "-t", "0", cwd=d)


def test_events_images_ls_wait_build_and_rmi(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "lists"
    write_stack(d, STACK + """
  app:
    build: {context: ., args: {GREETING: file}}
    command: sleep 600
""")
    (d / "Dockerfile").write_text('FROM busybox\nARG GREETING=default\n'
                                  'RUN echo "$GREETING" > /greeting\n')
    r = env.composer("build", "-q", "--build-arg", "GREETING=cli", cwd=d)
    assert r.stdout == "" and "Building" not in r.stderr
    env.composer("up", "-d", "--wait", cwd=d)
    assert env.composer("exec", "-T", "app", "cat", "/greeting", cwd=d).stdout == "cli\n"

    # events --since replays what composerd kept; --until in the past ends at once
    t0 = time.monotonic()
    ev = env.composer("events", "--json", "--since", "5m", "--until", "0s", cwd=d).stdout
    assert time.monotonic() - t0 < 30
    started = {(e["service"], e["action"]) for e in map(json.loads, ev.splitlines())}
    assert {("web", "start"), ("app", "start")} <= started

    # images: docker compose's columns, -q, json
    table = env.composer("images", cwd=d).stdout.splitlines()
    assert table[0].split() == ["CONTAINER", "REPOSITORY", "TAG", "PLATFORM", "IMAGE", "ID",
                                "SIZE", "CREATED"]
    rows = json.loads(env.composer("images", "--format", "json", cwd=d).stdout)
    assert {(r["ContainerName"], r["Repository"]) for r in rows} == {
        ("lists-web-1", "busybox"), ("lists-app-1", "lists-app")}
    quiet = env.composer("images", "-q", cwd=d).stdout.split()
    assert sorted(quiet) == sorted(r["ID"].split(":")[1] for r in rows)

    # ls -q --filter
    assert env.composer("ls", "-q", "--filter", "name=^li", cwd=d).stdout == "lists\n"
    assert env.composer("ls", "-q", "--filter", "name=nomatch", cwd=d).stdout == ""

    # restart --wait returns once healthy; --wait-timeout alone is refused
    r = env.composer("restart", "--wait", "web", cwd=d)
    assert "Healthy" in r.stderr
    r = env.composer("start", "--wait-timeout", "3", cwd=d, check=False)
    assert r.returncode == 1 and "--wait-timeout needs --wait" in r.stderr

    # down --rmi local: what build made; then all: busybox too
    env.composer("down", "-t", "0", "--rmi", "local", cwd=d)
    names = env.composer("image", "ls", cwd=d).stdout
    assert "lists-app" not in names and "busybox" in names
    env.composer("down", "--rmi", "all", cwd=d)
    assert "busybox" not in env.composer("image", "ls", cwd=d).stdout
