"""Convergence and dependencies through the CLI and a real composerd, as a docker compose
user sees them: the image in convergence, --force-recreate's reach, `restart: true`,
--scale, --no-deps, -V, --wait's ends, optional dependencies, `-p NAME` from anywhere,
unknown services, --abort-on-container-failure."""
from __future__ import annotations

import io
import shutil
import tarfile
import time
from pathlib import Path

from tests.e2e.conftest import Env, write_stack
from tests.e2e.test_orchestration import inspect


def ids(env: Env, cwd: Path, *extra: str) -> dict[str, str]:
    return {str(r["Service"]): str(r["ID"]) for r in env.ps(cwd, "--no-trunc", *extra)}


def test_up_build_recreates_only_after_a_dockerfile_change(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "build"
    write_stack(d, "services:\n  app:\n    build: .\n    init: true\n")
    (d / "Dockerfile").write_text('FROM busybox\nRUN echo one > /v\nCMD ["sleep", "600"]\n')
    env.composer("up", "-d", "--build", cwd=d)
    first = ids(env, d)
    p = env.composer("up", "-d", "--build", cwd=d)  # rebuilt from cache: the same image id
    assert ids(env, d) == first
    assert " Container build-app-1  Running" in p.stderr.splitlines()
    (d / "Dockerfile").write_text('FROM busybox\nRUN echo two > /v\nCMD ["sleep", "600"]\n')
    p = env.composer("up", "-d", "--build", cwd=d)
    assert ids(env, d) != first
    assert " Container build-app-1  Recreated" in p.stderr.splitlines()
    assert env.composer("exec", "-T", "app", "cat", "/v", cwd=d).stdout == "two\n"
    env.composer("down", "-t", "0", cwd=d)


def rootfs(path: Path, marker: str) -> Path:
    """A one-layer image: the host's static busybox, its shell and sleep, and /marker."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    with tarfile.open(path, "w") as tar:
        tar.add(busybox, arcname="bin/busybox")
        for applet in ("sh", "sleep", "cat"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        data = marker.encode()
        info = tarfile.TarInfo("marker")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def test_a_newer_image_under_the_same_tag_recreates(env: Env, tmp_path: Path) -> None:
    """What `composer pull` of a newer image does to the tag, without a registry: the next
    `up` recreates the container from it, and the one after changes nothing."""
    d = tmp_path / "newer"
    write_stack(d, "services:\n  app:\n    image: local/app:1\n    init: true\n    command: sleep 600\n")
    env.composer("image", "import", str(rootfs(tmp_path / "a.tar", "a")), "--tag", "local/app:1")
    env.composer("up", "-d", cwd=d)
    first = ids(env, d)
    env.composer("image", "import", str(rootfs(tmp_path / "b.tar", "b")), "--tag", "local/app:1")
    env.composer("up", "-d", cwd=d)
    second = ids(env, d)
    assert second != first
    assert env.composer("exec", "-T", "app", "cat", "/marker", cwd=d).stdout == "b"
    env.composer("up", "-d", cwd=d)
    assert ids(env, d) == second
    env.composer("down", "-t", "0", cwd=d)
    env.composer("image", "rm", "local/app:1")


DEPS = """
services:
  db:
    image: busybox
    init: true
    command: sleep 600
  cache:
    image: busybox
    init: true
    command: sleep 600
  web:
    image: busybox
    init: true
    command: sleep 600
    depends_on:
      db: {condition: service_started, restart: true}
      cache: {condition: service_started}
"""


def test_force_recreate_reach_and_restart_true_dependents(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "deps"
    write_stack(d, DEPS)
    env.composer("up", "-d", cwd=d)
    first = ids(env, d)
    env.composer("up", "-d", "--force-recreate", "web", cwd=d)
    second = ids(env, d)
    assert (second["db"], second["cache"]) == (first["db"], first["cache"])  # only web
    assert second["web"] != first["web"]
    env.composer("up", "-d", "--force-recreate", "--always-recreate-deps", "web", cwd=d)
    third = ids(env, d)
    assert all(third[s] != second[s] for s in ("db", "cache", "web"))

    before = {s: inspect(env, d, s)["started_at"] for s in ("db", "cache", "web")}
    p = env.composer("restart", "db", cwd=d)
    after = {s: inspect(env, d, s)["started_at"] for s in ("db", "cache", "web")}
    assert after["db"] > before["db"] and after["web"] > after["db"]  # web after db, as Compose
    assert after["cache"] == before["cache"]
    assert " Container deps-web-1  Restarting" in p.stderr.splitlines()

    write_stack(d, DEPS.replace("command: sleep 600\n  cache", "command: sleep 601\n  cache"))
    p = env.composer("up", "-d", cwd=d)
    fourth = ids(env, d)
    assert fourth["db"] != third["db"] and fourth["web"] == third["web"]  # web restarted, kept
    assert float(inspect(env, d, "web")["started_at"]) > float(inspect(env, d, "db")["started_at"])
    lines = p.stderr.splitlines()
    assert lines.index(" Container deps-web-1  Stopped") < lines.index(" Container deps-db-1  Recreated")
    env.composer("down", "-t", "0", cwd=d)


def test_scale_no_deps_and_unknown_services(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "scale"
    write_stack(d, DEPS)
    p = env.composer("up", "-d", "--scale", "nosuch=2", cwd=d, check=False)
    assert p.returncode == 1
    assert p.stderr.strip().splitlines()[-1] == "error: no such service: nosuch (known: cache, db, web)"
    assert env.ps(d, "-a") == []
    env.composer("up", "-d", "--no-deps", "web", cwd=d)
    assert sorted(ids(env, d)) == ["web"]
    env.composer("up", "-d", "--scale", "cache=3", cwd=d)
    assert sorted(str(r["Name"]) for r in env.ps(d)) == [
        "scale-cache-1", "scale-cache-2", "scale-cache-3", "scale-db-1", "scale-web-1"]
    for verb in ("logs", "stop", "restart", "start", "kill", "rm", "pause", "unpause", "ps", "top"):
        p = env.composer(verb, "nosuch", cwd=d, check=False)
        assert (p.returncode, p.stderr) == (1, "error: no such service: nosuch (known: cache, db, web)\n"), verb
    env.composer("down", "-t", "0", cwd=d)


def test_recreate_keeps_anonymous_volumes_unless_v(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "anon"
    write_stack(d, "services:\n  db:\n    image: busybox\n    init: true\n    command: sleep 600\n"
                   "    volumes: [/data]\n")
    env.composer("up", "-d", cwd=d)
    env.composer("exec", "-T", "db", "sh", "-c", "echo kept > /data/f", cwd=d)
    env.composer("up", "-d", "--force-recreate", cwd=d)
    assert env.composer("exec", "-T", "db", "cat", "/data/f", cwd=d).stdout == "kept\n"
    env.composer("up", "-d", "-V", cwd=d)
    assert env.composer("exec", "-T", "db", "ls", "/data", cwd=d).stdout == ""
    volumes = list((env.root / "volumes").iterdir())
    assert len(volumes) == 1, volumes  # the replaced anonymous volume is gone
    env.composer("down", "-v", "-t", "0", cwd=d)


def test_wait_accepts_a_one_shot_dependency_and_ends_on_checks_that_never_pass(
        env: Env, tmp_path: Path) -> None:
    d = tmp_path / "wait"
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
      migrate: {condition: service_completed_successfully}
""")
    p = env.composer("up", "--wait", cwd=d)  # --wait implies -d, as Compose
    assert " Container wait-migrate-1  Exited" in p.stderr.splitlines()
    env.composer("down", "-t", "0", cwd=d)

    write_stack(d, """
services:
  never:
    image: busybox
    init: true
    command: sleep 600
    healthcheck: {test: ["CMD", "false"], interval: 1s, retries: 1000}
""")
    t0 = time.monotonic()
    p = env.composer("up", "--wait", "--wait-timeout", "3", cwd=d, check=False, timeout=60)
    took = time.monotonic() - t0
    assert p.returncode == 1 and took < 20, (took, p.stderr)
    assert p.stderr.splitlines()[-1] == (
        "error: application not healthy after 3s: wait-never-1 is starting (health check not passed yet)")
    env.composer("down", "-t", "0", cwd=d)

    write_stack(d, """
services:
  bad:
    image: busybox
    init: true
    command: sleep 600
    healthcheck: {test: ["CMD", "false"], interval: 0.2s, retries: 2}
""")
    p = env.composer("up", "--wait", cwd=d, check=False, timeout=60)
    assert p.returncode == 1
    assert p.stderr.splitlines()[-1] == "error: container wait-bad-1 is unhealthy"
    env.composer("down", "-t", "0", cwd=d)


def test_optional_dependency_on_an_undefined_service_warns(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "opt"
    write_stack(d, """
services:
  web:
    image: busybox
    init: true
    command: sleep 600
    depends_on:
      nosuch: {condition: service_started, required: false}
""")
    p = env.composer("up", "-d", cwd=d)
    assert ('WARN[0000] compose.yaml: services.web.depends_on.nosuch: service "nosuch" is not '
            "defined (required: false): web starts without it") in p.stderr.splitlines()
    assert [r["State"] for r in env.ps(d)] == ["running"]
    env.composer("down", "-t", "0", cwd=d)


def test_p_name_from_another_folder_needs_no_stack_file(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "home"
    write_stack(d, DEPS)
    env.composer("-p", "remote", "up", "-d", cwd=d)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    rows = env.composer("-p", "remote", "ps", "--format", "{{.Service}}", cwd=elsewhere).stdout
    assert rows.split() == ["cache", "db", "web"]
    assert env.composer("-p", "remote", "exec", "-T", "web", "echo", "hi", cwd=elsewhere).stdout == "hi\n"
    env.composer("-p", "remote", "stop", "web", cwd=elsewhere)
    assert env.composer("-p", "remote", "ps", "-a", "--status", "exited", "--format", "{{.Service}}",
                        cwd=elsewhere).stdout == "web\n"
    env.composer("-p", "remote", "start", cwd=elsewhere)
    env.composer("-p", "remote", "restart", "db", cwd=elsewhere)
    p = env.composer("-p", "remote", "logs", "nosuch", cwd=elsewhere, check=False)
    assert (p.returncode, p.stderr) == (1, "error: no such service: nosuch (known: cache, db, web)\n")
    p = env.composer("-p", "remote", "down", "-t", "0", cwd=elsewhere)
    assert " Network remote_default  Removed" in p.stderr.splitlines()
    assert env.composer("-p", "remote", "ps", "-a", "-q", cwd=elsewhere).stdout == ""
    p = env.composer("ps", cwd=elsewhere, check=False)  # no -p, no file: the file error
    assert p.returncode == 1 and "no stack file found" in p.stderr


def test_abort_on_container_failure(env: Env, tmp_path: Path) -> None:
    d = tmp_path / "abort"
    write_stack(d, """
services:
  ok:
    image: busybox
    command: "true"
  bad:
    image: busybox
    command: sh -c "sleep 1; exit 3"
  long:
    image: busybox
    init: true
    command: sleep 600
""")
    p = env.composer("up", "--abort-on-container-failure", cwd=d, check=False, timeout=120)
    assert p.returncode == 3, p.stderr
    assert "Aborting on container exit..." in p.stderr
    assert inspect(env, d, "long")["state"] == "exited"
    env.composer("down", "-t", "0", cwd=d)
