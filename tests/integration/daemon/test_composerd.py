"""A real composerd process (with the fake engine via COMPOSERD_ENGINE): started by the
client, root-only socket, refuses a second instance, stops cleanly on SIGTERM, and no
composerd is left running after any test."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.client import NEEDS_ROOT_TO_START, Client, connect_or_start, needs_root
from runtime.types import ContainerSpec
from tests.integration.daemon.conftest import REPO, Env, alive, monitors_of, wait_gone

NOBODY = 65534


def as_nobody(
    code: str, *, cwd: Path = REPO, groups: tuple[int, ...] = (), env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `code` in a python that imported the client as root, then became nobody (with
    supplementary `groups`)."""
    prelude = (
        "import asyncio, os, sys\n"
        "import runtime.client, runtime.daemon, aiohttp\n"
        f"os.setgroups({list(groups)!r}); os.setgid({NOBODY}); os.setuid({NOBODY})\n"
    )
    return subprocess.run(
        [sys.executable, "-c", prelude + code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
    )


async def test_connect_or_start_runs_a_detached_root_only_daemon(
        denv: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CMPTEST_SHELL_VARIABLE", "from-the-first-cli")  # must not reach composerd
    monkeypatch.setenv("PYTHONSTARTUP", "/nonexistent")
    t0 = time.monotonic()
    client = await connect_or_start(denv.paths, timeout=10)
    started_in = time.monotonic() - t0
    async with client:
        pid = denv.note_pid_file()
        v = await client.version()
        assert v["pid"] == pid != os.getpid() and v["engine"] == "FakeEngine"
        assert os.getsid(pid) == pid  # own session: a ^C in the CLI's terminal does not reach it
        ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        assert ppid != os.getpid()  # not our child: it outlives the CLI
        environ = dict(kv.split("=", 1) for kv in
                       Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in kv)
        assert "CMPTEST_SHELL_VARIABLE" not in environ and "PYTHONSTARTUP" not in environ
        assert environ["COMPOSER_ROOT"] == str(denv.paths.root) and environ["PATH"]
        sock = denv.paths.socket
        assert stat.S_ISSOCK(sock.stat().st_mode)
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600 and sock.stat().st_uid == 0
        assert stat.S_IMODE(denv.paths.run.stat().st_mode) == 0o700
        info = await client.create_container(ContainerSpec("demo-web-1", "busybox:latest"))
        assert (await client.start_container(info.id)).state == "running"
    print(f"connect_or_start cold start: {started_in * 1000:.0f} ms")

    # a second CLI finds the running daemon: no new process
    t0 = time.monotonic()
    async with await connect_or_start(denv.paths) as again:
        assert (await again.version())["pid"] == pid
        assert [c.name for c in await again.list_containers()] == ["demo-web-1"]
    print(f"connect_or_start warm: {(time.monotonic() - t0) * 1000:.1f} ms")

    os.kill(pid, signal.SIGTERM)
    assert wait_gone(pid), "composerd did not exit on SIGTERM"
    assert not sock.exists() and not (denv.paths.run / "composerd.pid").exists()
    log = (denv.paths.run / "composerd.log").read_text()
    assert "serving on" in log and "stopping: containers keep running" in log


async def test_concurrent_starts_make_one_daemon(denv: Env) -> None:
    clients = await asyncio.gather(*(connect_or_start(denv.paths) for _ in range(4)))
    try:
        pids = {(await c.version())["pid"] for c in clients}
    finally:
        for c in clients:
            await c.close()
    assert len(pids) == 1
    denv.pids |= pids
    running = [
        p
        for p in map(int, filter(str.isdigit, os.listdir("/proc")))
        if alive(p) and str(denv.paths.run).encode() in Path(f"/proc/{p}/cmdline").read_bytes()
    ]
    assert running == list(pids)


def test_foreground_sigterm_exits_0_and_second_instance_refuses(denv: Env) -> None:
    with denv.foreground() as proc:
        second = subprocess.run(
            [sys.executable, "-m", "runtime.daemon", "--foreground"],
            cwd=REPO, env=denv.env(), capture_output=True, text=True, timeout=10
        )
        assert second.returncode == 1
        assert (
            second.stderr.strip().splitlines()[-1]
            == f"composerd: composerd is already running (pid {proc.pid}): stop it first"
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
        assert not denv.paths.socket.exists()


async def test_daemon_killed_with_sigkill_is_replaced(denv: Env) -> None:
    async with await connect_or_start(denv.paths) as c:
        first = denv.note_pid_file()
    os.kill(first, signal.SIGKILL)
    assert wait_gone(first)
    assert denv.paths.socket.exists()  # stale: nobody listens
    async with await connect_or_start(denv.paths) as c:
        second = denv.note_pid_file()
        assert second != first and (await c.version())["pid"] == second


async def test_start_failure_is_a_clear_error(denv: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPOSERD_ENGINE", "runtime.nope:Engine.open")
    from runtime.client import DaemonStartError

    with pytest.raises(
        DaemonStartError, match="composerd: cannot start: No module named 'runtime.nope'"
    ):
        await connect_or_start(denv.paths, timeout=10)
    assert not denv.paths.socket.exists()


def test_nobody_gets_a_clear_permission_error(denv: Env) -> None:
    with denv.foreground() as proc:
        ping = (
            "async def main():\n"
            "    try:\n"
            f"        async with runtime.client.Client({str(denv.paths.socket)!r}) as c:\n"
            "            await c.ping()\n"
            "        print('connected')\n"
            "    except runtime.client.EngineError as e:\n"
            "        print(e)\n"
            "asyncio.run(main())\n"
        )
        # the run dir (0700) stops nobody ...
        out = as_nobody(ping)
        assert out.stdout.strip() == needs_root(), out.stderr
        # ... and so does the socket's own mode (0600) when the dir is opened up
        os.chmod(denv.paths.run, 0o711)
        try:
            out = as_nobody(ping)
        finally:
            os.chmod(denv.paths.run, 0o700)
        assert out.stdout.strip() == needs_root(), out.stderr
        # connect_or_start as nobody does not try to start anything either
        start = (
            "from runtime.paths import Paths\n"
            "async def main():\n"
            "    try:\n"
            f"        await runtime.client.connect_or_start(Paths(root=Path('/nonexistent'), run=Path({str(denv.paths.run)!r})))\n"
            "    except runtime.client.EngineError as e:\n"
            "        print(e)\n"
            "from pathlib import Path\n"
            "asyncio.run(main())\n"
        )
        out = as_nobody(start)
        assert out.stdout.strip() == needs_root(), out.stderr
        # with no daemon at all, nobody is told that only root can start one
        out = as_nobody(start.replace(str(denv.paths.run), "/nonexistent/run"))
        assert out.stdout.strip() == NEEDS_ROOT_TO_START, out.stderr
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0


def test_composerd_as_nobody_refuses(tmp_path: Path) -> None:
    out = as_nobody(
        f"sys.argv = ['composerd', '--run', {str(tmp_path / 'run')!r}]\n"
        "sys.exit(runtime.daemon.main())\n"
    )
    assert out.returncode == 1
    assert out.stderr.strip() == "composerd needs root: run it with sudo"
    assert not (tmp_path / "run").exists()


def test_socket_of_a_listening_process_is_not_stolen(denv: Env) -> None:
    denv.paths.run.mkdir(mode=0o700, parents=True)
    other = socket.socket(socket.AF_UNIX)
    other.bind(str(denv.paths.socket))
    other.listen()
    try:
        out = subprocess.run(
            [sys.executable, "-m", "runtime.daemon"],
            cwd=REPO,
            env=denv.env(),
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert out.returncode == 1
        assert (
            out.stderr.strip().splitlines()[-1]
            == f"composerd: another composerd answers on {denv.paths.socket}: stop it first"
        )
        assert denv.paths.socket.exists()
    finally:
        other.close()


def children_of(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[1]) == pid:
                kids.append(int(entry))
    return kids


def test_real_engine_serves_and_stops_leaving_no_process(denv: Env) -> None:
    """The production factory (runtime.engine:Engine.open) behind the real entry point."""
    env = denv.env()
    del env["COMPOSERD_ENGINE"]
    with denv.foreground(env) as proc:

        async def talk() -> dict[str, object]:
            async with Client(denv.paths.socket) as c:
                assert await c.list_containers(all=True) == []
                return await c.version()

        assert asyncio.run(talk())["engine"] == "Engine"
        helpers = children_of(proc.pid) + monitors_of(denv.paths.run)
        assert monitors_of(denv.paths.run), "the real engine started no monitor"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert not denv.paths.socket.exists()
        for pid in helpers:
            assert wait_gone_any(pid, 5), f"helper {pid} of composerd left running"


def wait_gone_any(pid: int, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists():
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def access_group() -> Iterator[tuple[str, int]]:
    """A throwaway group standing in for `composer` (COMPOSER_GROUP), deleted afterwards."""
    import grp
    import secrets

    name = f"cmpg{secrets.token_hex(3)}"
    subprocess.run(["groupadd", "--system", name], check=True)
    try:
        yield name, grp.getgrnam(name).gr_gid
    finally:
        subprocess.run(["groupdel", name], check=True)


def test_access_group_members_use_the_socket_others_do_not(
    denv: Env, access_group: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    name, gid = access_group
    monkeypatch.setenv("COMPOSER_GROUP", name)
    os.chmod(denv.paths.root.parent, 0o755)  # the temp base, so nobody can reach run/
    env = {**denv.env(), "COMPOSER_GROUP": name}
    del env["COMPOSERD_ENGINE"]  # the real engine: its set-up must not narrow the run dir again
    with denv.foreground(env) as proc:
        sock, run, locks = (os.stat(p) for p in
                            (denv.paths.socket, denv.paths.run, denv.paths.run / "locks"))
        assert (stat.S_IMODE(sock.st_mode), sock.st_uid, sock.st_gid) == (0o660, 0, gid)
        assert (stat.S_IMODE(run.st_mode), run.st_gid) == (0o710, gid)
        assert (stat.S_IMODE(locks.st_mode), locks.st_gid) == (0o2770, gid)
        code = (
            "from runtime.client import project_lock\n"
            "from pathlib import Path\n"
            "async def main():\n"
            "    try:\n"
            f"        async with runtime.client.Client({str(denv.paths.socket)!r}) as c:\n"
            "            await c.ping(); print(len(await c.list_containers()))\n"
            f"        async with project_lock(Path({str(denv.paths.run)!r}), 'demo', timeout=5):\n"
            "            print('locked')\n"
            "    except runtime.client.EngineError as e:\n"
            "        print(e)\n"
            "asyncio.run(main())\n"
        )
        member = as_nobody(code, groups=(gid,), env=env)
        assert member.stdout.split() == ["0", "locked"], member.stdout + member.stderr
        lock = denv.paths.run / "locks" / "demo.lock"
        assert (stat.S_IMODE(lock.stat().st_mode), lock.stat().st_gid) == (0o660, gid)
        # a lock file the member made can be taken by root and the reverse
        async def root_lock() -> None:
            from runtime.client import project_lock
            async with project_lock(denv.paths.run, "demo", timeout=5):
                pass
        asyncio.run(root_lock())
        stranger = as_nobody(code, env=env)
        assert stranger.stdout.strip() == needs_root(), stranger.stdout + stranger.stderr
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
