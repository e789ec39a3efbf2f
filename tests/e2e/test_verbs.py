"""The verbs `cp`, `export`, `commit`, `create`, `scale`, `wait`, `volumes`, `version` and
`stats`, through the CLI and a real composerd, as docker compose behaves."""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import tarfile
import time
from pathlib import Path

from tests.e2e.conftest import Env, write_stack

STACK = """
services:
  web:
    image: busybox
    init: true
    command: sleep 600
    volumes: [data:/data]
volumes:
  data:
"""


def sh(env: Env, d: Path, script: str, *extra: str) -> str:
    return env.composer("exec", *extra, "-T", "web", "sh", "-c", script, cwd=d).stdout


def test_cp_both_ways_with_dockers_archive_rules(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "cpapp"
    write_stack(d, STACK)
    env.composer("up", "-d", cwd=d)
    host = d / "h"
    (host / "sub").mkdir(parents=True)
    (host / "a.txt").write_text("one\n")
    (host / "sub" / "b.txt").write_text("two\n")
    os.symlink("/etc/shadow", host / "shadowlink")  # copied as a link, never followed
    os.chown(host / "a.txt", 1234, 5678)

    # a directory to a new path, a file into a directory, the content of a directory (/.)
    env.composer("cp", "h", "web:/tmp/new", cwd=d)
    env.composer("cp", "h/a.txt", "web:/tmp", cwd=d)
    env.composer("cp", "h/.", "web:/data", cwd=d)
    out = sh(env, d, "cat /tmp/new/sub/b.txt /tmp/a.txt /data/a.txt; readlink /tmp/new/shadowlink;"
                     " stat -c '%u:%g' /tmp/a.txt")
    assert out.split() == ["two", "one", "one", "/etc/shadow", "0:0"]  # root's without -a
    env.composer("cp", "-a", "h/a.txt", "web:/tmp/kept.txt", cwd=d)
    assert sh(env, d, "stat -c '%u:%g' /tmp/kept.txt").strip() == "1234:5678"

    # back to the host: a file onto a new name, a directory, a directory's content
    env.composer("cp", "web:/tmp/new", str(tmp_path / "back"), cwd=d)
    assert (tmp_path / "back" / "sub" / "b.txt").read_text() == "two\n"
    assert os.readlink(tmp_path / "back" / "shadowlink") == "/etc/shadow"
    (tmp_path / "into").mkdir()
    env.composer("cp", "web:/data/.", str(tmp_path / "into"), cwd=d)
    assert sorted(os.listdir(tmp_path / "into")) == ["a.txt", "shadowlink", "sub"]
    env.composer("cp", "web:/etc/passwd", str(tmp_path / "pw"), cwd=d)
    assert (tmp_path / "pw").read_text().startswith("root:")

    # symlinks inside the container: never followed out of it; -L copies the target
    sh(env, d, "ln -s ../../../../../etc /tmp/esc; ln -s /etc/passwd /tmp/pwlink")
    env.composer("cp", "web:/tmp/esc/hostname", str(tmp_path / "hn"), cwd=d)
    container_hostname = sh(env, d, "cat /etc/hostname")
    assert (tmp_path / "hn").read_text() == container_hostname != Path("/etc/hostname").read_text()
    env.composer("cp", "web:/tmp/pwlink", str(tmp_path / "link"), cwd=d)
    assert os.readlink(tmp_path / "link") == "/etc/passwd"
    env.composer("cp", "-L", "web:/tmp/pwlink", str(tmp_path / "followed"), cwd=d)
    assert (tmp_path / "followed").read_text() == (tmp_path / "pw").read_text()
    sh(env, d, f"ln -s {tmp_path} /tmp/hostdir")  # a host path: it means the container's
    r = env.composer("cp", "h/a.txt", "web:/tmp/hostdir/planted", cwd=d, check=False)
    assert r.returncode == 1 and "no such file or directory: cpapp-web-1:/tmp/hostdir" in r.stderr
    sh(env, d, f"mkdir -p {tmp_path}")
    env.composer("cp", "h/a.txt", "web:/tmp/hostdir/planted", cwd=d)
    assert not (tmp_path / "planted").exists()
    assert sh(env, d, f"cat {tmp_path}/planted") == "one\n"

    # tar streams: - on stdin (into a directory), - on stdout
    stream = subprocess.run(["tar", "cf", "-", "-C", str(host), "sub"], capture_output=True,
                            check=True).stdout
    p = subprocess.run([*_cli(), "cp", "-", "web:/tmp"], cwd=d, env=env.environ, input=stream,
                       capture_output=True)
    assert p.returncode == 0, p.stderr
    assert sh(env, d, "cat /tmp/sub/b.txt") == "two\n"
    p = subprocess.run([*_cli(), "cp", "web:/tmp/new", "-"], cwd=d, env=env.environ,
                       capture_output=True)
    members = tarfile.open(fileobj=io.BytesIO(p.stdout)).getnames()
    assert {"new", "new/a.txt", "new/sub/b.txt"} <= set(members)

    # errors: one line naming the path and the fix, exit 1
    for argv, message in [
        (("web:/nope", "x"), "no such file or directory: cpapp-web-1:/nope"),
        (("h", "web:/tmp/a.txt"), "cannot copy a directory onto the file /tmp/a.txt"),
        (("h/a.txt", "web:/nodir/"), "no such directory: /nodir/"),
        (("web:/a", "web:/b"), "copying between services is not supported"),
        (("nosuch:/a", "x"), "no such service: nosuch"),
    ]:
        r = env.composer("cp", *argv, cwd=d, check=False)
        assert r.returncode == 1 and message in r.stderr, (argv, r.stderr)
        assert r.stderr.count("\n") == 1 or "Copying" in r.stderr, r.stderr

    # a stopped container: its overlay and volume, mounted for the copy only
    env.composer("stop", cwd=d)
    env.composer("cp", "h/sub/b.txt", "web:/data/while-stopped", cwd=d)
    env.composer("cp", "h/sub/b.txt", "web:/etc/in-layer", cwd=d)
    env.composer("cp", "web:/data/while-stopped", str(tmp_path / "ws"), cwd=d)
    assert (tmp_path / "ws").read_text() == "two\n"
    env.composer("start", cwd=d)
    assert sh(env, d, "cat /data/while-stopped /etc/in-layer") == "two\ntwo\n"
    env.composer("down", "-v", cwd=d)


def test_cp_to_a_service_reaches_every_replica(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "reps"
    write_stack(d, STACK.replace("    init: true\n", "    init: true\n    scale: 2\n"))
    env.composer("up", "-d", cwd=d)
    (d / "f").write_text("hello")
    env.composer("cp", "f", "web:/tmp/f", cwd=d)
    for index in ("1", "2"):
        assert sh(env, d, "cat /tmp/f", "--index", index) == "hello"
    env.composer("cp", "--index", "2", "web:/etc/hostname", str(tmp_path / "h2"), cwd=d)
    assert (tmp_path / "h2").read_text() == sh(env, d, "cat /etc/hostname", "--index", "2")
    r = env.composer("cp", "--index", "3", "f", "web:/tmp", cwd=d, check=False)
    assert r.returncode == 1 and "service web has no container #3" in r.stderr
    env.composer("down", "-v", cwd=d)


def test_export_and_commit(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "snap"
    write_stack(d, STACK)
    env.composer("up", "-d", cwd=d)
    sh(env, d, "echo changed > /etc/motd; rm /bin/vi; mkdir -p /opt/x; echo y > /opt/x/y;"
               " echo vol > /data/in-volume")

    env.composer("export", "web", "-o", str(tmp_path / "fs.tar"), cwd=d)
    with tarfile.open(tmp_path / "fs.tar") as tf:
        members = {m.name: m for m in tf.getmembers()}
        assert tf.extractfile("etc/motd").read() == b"changed\n"  # type: ignore[union-attr]
    assert "opt/x/y" in members and "bin/sh" in members and "bin/vi" not in members
    assert "data" in members and "data/in-volume" not in members  # a volume is not the container's
    assert members["proc"].isdir() and not any(n.startswith("proc/") for n in members)
    p = subprocess.run([*_cli(), "export", "web"], cwd=d, env=env.environ, capture_output=True)
    assert p.returncode == 0 and len(p.stdout) == (tmp_path / "fs.tar").stat().st_size

    out = env.composer("commit", "-m", "my change", "-a", "Jane <j@x>", "-c", 'CMD ["cat", "/etc/motd"]',
                       "-c", "ENV FOO=bar", "web", "snapped:1", cwd=d).stdout
    assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", out), out
    e = tmp_path / "fromsnap"
    write_stack(e, "services:\n  s:\n    image: snapped:1\n")
    assert env.composer("run", "--rm", "-T", "s", cwd=e).stdout == "changed\n"  # the new CMD
    got = env.composer("run", "--rm", "-T", "s", "sh", "-c",
                       "echo $FOO; cat /opt/x/y; ls /bin/vi 2>&1; ls /data", cwd=e).stdout
    assert got.splitlines()[:3] == ["bar", "y", "ls: /bin/vi: No such file or directory"]
    assert "in-volume" not in got
    r = env.composer("commit", "-c", "RUN true", "web", cwd=d, check=False)
    assert r.returncode == 1 and "RUN can't be applied to an image config" in r.stderr
    env.composer("down", "-v", cwd=d)
    env.composer("down", cwd=e)


def test_create_scale_wait_volumes_version_stats(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "lifec"
    write_stack(d, STACK.replace("command: sleep 600",
                                 'command: ["sh", "-c", "trap \'exit 3\' TERM; sleep 600 & wait"]'))
    env.composer("create", cwd=d)
    assert [(r["Name"], r["State"]) for r in env.ps(d, "-a")] == [("lifec-web-1", "created")]
    env.composer("scale", "web=2", cwd=d)
    assert [(r["Name"], r["State"]) for r in env.ps(d)] == [("lifec-web-1", "running"),
                                                           ("lifec-web-2", "running")]
    bad = env.composer("scale", "web=two", cwd=d, check=False)
    assert bad.returncode == 1 and "invalid scale specifier 'web=two'" in bad.stderr

    assert env.composer("volumes", "-q", cwd=d).stdout == "lifec_data\n"
    assert env.composer("volumes", cwd=d).stdout.splitlines() == [
        "DRIVER    VOLUME NAME", "local     lifec_data"]
    vol = json.loads(env.composer("volumes", "--format", "json", cwd=d).stdout)
    assert vol["Name"] == "lifec_data" and vol["Driver"] == "local"
    assert "com.docker.compose.project=lifec" in vol["Labels"]

    assert re.fullmatch(r"composer version v\d+\.\d+\.\d+\n",
                        env.composer("version", cwd=d).stdout)
    short = env.composer("version", "--short", cwd=d).stdout.strip()
    assert json.loads(env.composer("version", "--format", "json", cwd=d).stdout) == {
        "version": f"v{short}"}
    assert env.composer("--version", cwd=d).stdout == env.composer("version", cwd=d).stdout

    sh(env, d, "ping -c 2 -W 1 $(ip route | awk '/default/ {print $3}') >/dev/null || true")
    rows = [json.loads(line) for line in
            env.composer("stats", "--no-stream", "--format", "json", cwd=d).stdout.splitlines()]
    assert sorted(r["Name"] for r in rows) == ["lifec-web-1", "lifec-web-2"]
    first = next(r for r in rows if r["Name"] == "lifec-web-1")
    assert list(first) == ["BlockIO", "CPUPerc", "Container", "ID", "MemPerc", "MemUsage",
                           "Name", "NetIO", "PIDs"]
    assert re.fullmatch(r"\d+\.\d\d%", first["CPUPerc"]) and int(first["PIDs"]) >= 2
    assert re.fullmatch(r"[\d.]+[KMG]?i?B / [\d.]+[KMG]i?B", first["MemUsage"]), first
    assert not first["NetIO"].startswith("0B / 0B"), first["NetIO"]  # the pings went out
    table = env.composer("stats", "--no-stream", cwd=d).stdout.splitlines()
    assert re.split(r"\s{2,}", table[0])[:3] == ["CONTAINER ID", "NAME", "CPU %"]

    # wait: the code of the first container to stop
    p = env.popen("wait", "web", cwd=d)
    time.sleep(2)  # it lists the running containers first
    env.composer("exec", "--index", "2", "-T", "web", "kill", "1", cwd=d, check=False)
    env.composer("stop", cwd=d)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 3, (out, err)
    assert len(re.findall(r'container "[0-9a-f]{64}" exited with status code 3', out)) == 2
    env.composer("down", "-v", cwd=d)


def _cli() -> list[str]:
    import sys

    return [sys.executable, "-m", "composer.cli"]
