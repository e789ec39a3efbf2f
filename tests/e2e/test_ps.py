"""What `ps` and friends show, through the CLI and a real composerd, as `docker compose`
shows it: JSON lines with Compose's fields, the table with Docker's status words, filters,
templates, `run` containers under -a, progress lines, a closed pipe."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.conftest import Env, write_stack
from tests.ports import free_block

JSON_KEYS = ["Command", "CreatedAt", "ExitCode", "Health", "ID", "Image", "Labels", "LocalVolumes",
             "Mounts", "Name", "Names", "Networks", "Ports", "Project", "Publishers", "RunningFor",
             "Service", "Size", "State", "Status"]

STACK = """
services:
  web:
    image: busybox
    init: true
    command: sleep 600
    ports: ["127.0.0.1:{port}:80"]
    volumes: [data:/data]
    healthcheck: {{test: ["CMD", "true"], interval: 0.2s}}
  job:
    image: busybox
    command: sh -c "exit 1"
volumes:
  data:
"""


def test_ps_json_table_filters_and_templates(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "shop"
    port = free_block(1, host="127.0.0.1")
    write_stack(d, STACK.format(port=port))
    env.composer("up", "-d", cwd=d)
    time.sleep(2.2)  # web healthy, job exited, and "seconds" on both clocks

    out = env.composer("ps", "-a", "--format", "json", cwd=d).stdout
    rows = [json.loads(line) for line in out.splitlines()]  # one object per line
    assert [r["Name"] for r in rows] == ["shop-job-1", "shop-web-1"]
    job, web = rows
    assert list(web) == JSON_KEYS and list(job) == JSON_KEYS
    assert web["Service"] == "web" and web["Project"] == "shop" and web["State"] == "running"
    assert web["Health"] == "healthy" and web["ExitCode"] == 0
    assert re.fullmatch(r"Up \d+ seconds \(healthy\)", web["Status"]), web["Status"]
    assert re.fullmatch(r"\d+ seconds ago", web["RunningFor"]), web["RunningFor"]
    assert web["Command"] == '"sleep 600"' and web["Image"] == "busybox"
    assert web["Publishers"] == [{"URL": "127.0.0.1", "TargetPort": 80, "PublishedPort": port,
                                  "Protocol": "tcp"}]
    assert web["Ports"] == f"127.0.0.1:{port}->80/tcp"
    assert f'"Ports":"127.0.0.1:{port}-\\u003e80/tcp"' in out  # escaped as Go's encoding/json
    assert web["Networks"] == "shop_default" and web["Mounts"] == "shop_data" and web["LocalVolumes"] == "1"
    assert "com.docker.compose.service=web" in web["Labels"].split(",")
    assert len(web["ID"]) == 12 and web["Size"] == "0B"
    assert job["State"] == "exited" and job["ExitCode"] == 1 and job["Health"] == ""
    assert re.fullmatch(r"Exited \(1\) \d+ seconds ago", job["Status"]), job["Status"]
    assert job["Publishers"] is None

    table = env.composer("ps", "-a", cwd=d).stdout.splitlines()
    assert table[0].split() == ["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"]
    assert table[2].startswith("shop-web-1   busybox   \"sleep 600\"")
    assert "(healthy)" in table[2] and table[2].rstrip().endswith(f"127.0.0.1:{port}->80/tcp")
    assert len(env.composer("ps", cwd=d).stdout.splitlines()) == 2  # job hidden without -a

    def names(*args: str) -> list[str]:
        return env.composer("ps", *args, "--format", "{{.Name}}", cwd=d).stdout.split()

    assert names("--status", "exited") == ["shop-job-1"]
    assert names("--filter", "status=running") == ["shop-web-1"]
    assert names("--status", "exited", "--status", "running") == ["shop-job-1", "shop-web-1"]
    assert env.composer("ps", "-a", "--services", cwd=d).stdout == "job\nweb\n"
    quiet = env.composer("ps", "-q", cwd=d).stdout.split()
    assert len(quiet) == 1 and re.fullmatch(r"[0-9a-f]{64}", quiet[0])
    assert env.composer("ps", "--no-trunc", "--format", "{{.ID}}", cwd=d).stdout.split() == quiet
    assert env.composer("ps", "-a", "--format", "{{.Name}} {{.State}} {{.ExitCode}}", cwd=d).stdout == \
        "shop-job-1 exited 1\nshop-web-1 running 0\n"
    assert env.composer("ps", "--format", "table {{.Name}}\\t{{.Health}}", cwd=d).stdout == \
        "NAME         HEALTH\nshop-web-1   healthy\n"
    p = env.composer("ps", "--format", "{{.Nope}}", cwd=d, check=False)
    assert p.returncode == 1 and "no field .Nope" in p.stderr
    p = env.composer("ps", "--filter", "name=x", cwd=d, check=False)
    assert (p.returncode, p.stderr) == (1, "error: unknown filter name (supported: status)\n")

    # a closed pipe is not a traceback
    p = subprocess.run(f"{sys.executable} -m composer.cli ps -a | head -1", shell=True, cwd=d,
                       env=env.environ, capture_output=True, text=True, timeout=60)
    assert p.stdout.split() == ["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"]
    assert "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr, p.stderr
    env.composer("down", "-v", "-t", "0", cwd=d)


def test_ps_all_shows_run_containers_and_orphans_can_be_hidden(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "runs"
    write_stack(d, "services:\n  web: {image: busybox, init: true, command: sleep 600}\n"
                   "  old: {image: busybox, init: true, command: sleep 600}\n")
    env.composer("up", "-d", cwd=d)
    name = env.composer("run", "-d", "web", "sleep", "30", cwd=d).stdout.strip()
    assert name.startswith("runs-web-run-")
    assert name not in [r["Name"] for r in env.ps(d)]
    assert name in [r["Name"] for r in env.ps(d, "-a")]
    write_stack(d, "services:\n  web: {image: busybox, init: true, command: sleep 600}\n")
    assert [r["Service"] for r in env.ps(d)] == ["old", "web"]  # orphans shown by default
    assert [r["Service"] for r in env.ps(d, "--orphans=false")] == ["web"]
    env.composer("down", "--remove-orphans", "-t", "0", cwd=d)


def test_progress_lines_as_compose_prints_them(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "lnmp"
    text = """
services:
  db:
    image: busybox
    init: true
    command: sh -c "sleep 0.5; touch /tmp/ok; exec sleep 600"
    volumes: [dbdata:/var/lib/db]
    healthcheck: {test: ["CMD", "test", "-f", "/tmp/ok"], interval: 0.2s, retries: 50}
  php:
    image: busybox
    init: true
    command: sleep 600
    depends_on: {db: {condition: service_healthy}}
volumes:
  dbdata:
"""
    write_stack(d, text)
    lines = env.composer("up", "-d", cwd=d).stderr.splitlines()
    for line in (" Network lnmp_default  Creating", " Network lnmp_default  Created",
                 ' Volume "lnmp_dbdata"  Created', " Container lnmp-db-1  Created",
                 " Container lnmp-db-1  Started", " Container lnmp-db-1  Waiting",
                 " Container lnmp-db-1  Healthy", " Container lnmp-php-1  Started"):
        assert line in lines, (line, lines)
    assert lines.index(" Container lnmp-db-1  Healthy") < lines.index(" Container lnmp-php-1  Started")
    # as docker compose's up (create, then start): php is created before db starts
    assert lines.index(" Container lnmp-php-1  Created") < lines.index(" Container lnmp-db-1  Starting")
    lines = env.composer("up", "-d", cwd=d).stderr.splitlines()
    assert " Container lnmp-php-1  Running" in lines
    assert not [x for x in lines if x.startswith((" Network", " Volume"))]  # existing: silent
    write_stack(d, text.replace("command: sleep 600", "command: sleep 601"))
    lines = env.composer("up", "-d", cwd=d).stderr.splitlines()
    assert " Container lnmp-php-1  Recreate" in lines and " Container lnmp-php-1  Recreated" in lines
    lines = env.composer("down", "-v", "-t", "0", cwd=d).stderr.splitlines()
    assert " Container lnmp-php-1  Removed" in lines and " Network lnmp_default  Removed" in lines
