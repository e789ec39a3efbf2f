"""Start, fail, wait, kill, init, adopt, exec, and what remains afterwards (nothing)."""
from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from pathlib import Path

import pytest

from runtime.errors import LaunchError
from runtime.process.config import ExecConfig
from runtime.process.launcher import Launcher, proc_start_time
from tests.integration.process.conftest import Env, host_has_mount, proc_alive, sh


async def test_exit_codes_propagate(env: Env) -> None:
    status, _, _ = await env.run(sh("exit 42"))
    assert (status.code, status.signal) == (42, None)
    status, out, err = await env.run(sh("echo out; echo err >&2"))
    assert (status.code, out, err) == (0, "out\n", "err\n")


async def test_killed_by_signal_is_128_plus_n(env: Env) -> None:
    launched = await env.launch(env.config(["sleep", "30"]))
    assert env.launcher.kill(launched, signal.SIGKILL)
    status = await env.launcher.wait(launched)
    assert (status.code, status.signal) == (137, 9)


async def test_command_not_found_is_127(env: Env) -> None:
    cfg = env.config(["no-such-cmd", "x"])
    with pytest.raises(LaunchError) as ei:
        await env.launch(cfg)
    assert ei.value.exit_code == 127
    assert str(ei.value) == 'exec: "no-such-cmd": executable file not found in $PATH'
    status = Launcher.exit_status(cfg.state_dir)
    assert status is not None and status.code == 127
    _, err = env.output(cfg)
    assert 'exec: "no-such-cmd": executable file not found in $PATH' in err


async def test_not_executable_is_126(env: Env) -> None:
    with pytest.raises(LaunchError) as ei:
        await env.launch(env.config(["/etc/passwd"]))
    assert ei.value.exit_code == 126
    assert "permission denied" in str(ei.value)


async def test_bad_user_is_a_clear_error(env: Env) -> None:
    cfg = env.config(["id"], user="nosuchuser")
    with pytest.raises(LaunchError, match="unable to find user nosuchuser: no matching entries"):
        await env.launch(cfg)
    with pytest.raises(LaunchError, match="unable to find group nogrp"):
        await env.launch(env.config(["id"], user="root:nogrp"))


async def test_prepare_runs_in_the_pause_and_its_failure_leaves_nothing(env: Env) -> None:
    seen: dict[str, object] = {}

    async def prepare(pid: int) -> None:
        seen["pid"] = pid
        seen["net"] = os.readlink(f"/proc/{pid}/ns/net")
        seen["cmdline"] = Path(f"/proc/{pid}/cmdline").read_bytes()
        raise RuntimeError("no cgroup for you")

    cfg = env.config(["sleep", "30"])
    with pytest.raises(RuntimeError, match="no cgroup for you"):
        await env.launch(cfg, prepare)
    pid = int(seen["pid"])  # type: ignore[call-overload]
    assert seen["net"] != os.readlink("/proc/self/ns/net")  # its own netns, ready for wiring
    assert b"sleep" not in seen["cmdline"]  # paused before execve
    for _ in range(100):
        if not proc_alive(pid):
            break
        await asyncio.sleep(0.02)
    assert not proc_alive(pid)
    assert not host_has_mount(cfg.mergeddir)


async def test_prepare_sees_pid_and_container_starts_after(env: Env) -> None:
    pids: list[int] = []

    async def prepare(pid: int) -> None:
        await asyncio.sleep(0.05)
        pids.append(pid)

    launched = await env.launch(env.config(["true"]), prepare)
    assert pids == [launched.pid]
    assert (await env.launcher.wait(launched)).code == 0


async def test_init_reaps_zombies_and_forwards_sigterm(env: Env) -> None:
    script = ("trap 'exit 7' TERM; (sleep 0.2 &); echo started; "
              "while true; do sleep 0.05; done")
    launched = await env.launch(env.config(sh(script), init=True))
    await asyncio.sleep(0.6)  # the orphaned sleep was reparented to pid 1 and has exited
    code, out, _ = await env.launcher.exec_run(launched, ExecConfig(
        argv=("sh", "-c", "cat /proc/[0-9]*/stat 2>/dev/null; exit 0")))  # sleeps come and go
    assert code == 0
    # (state, ppid) of every process; the shell's own sleeps may be zombies for an instant,
    # an orphan (ppid 1) would stay one forever without a reaping pid 1
    stats = [line[line.rindex(")") + 2:].split()[:2] for line in out.decode().splitlines()]
    assert stats and ["Z", "1"] not in stats
    cmd1 = (await env.launcher.exec_run(launched, ExecConfig(argv=("cat", "/proc/1/cmdline"))))[1]
    assert b"runtime.process.monitor" in cmd1  # pid 1 is our reaper, the shell is its child
    assert env.launcher.kill(launched, signal.SIGTERM)
    status = await asyncio.wait_for(env.launcher.wait(launched), 10)
    assert status.code == 7


async def test_without_init_pid1_ignores_sigterm_it_does_not_handle(env: Env) -> None:
    launched = await env.launch(env.config(["sleep", "30"]))
    env.launcher.kill(launched, signal.SIGTERM)
    await asyncio.sleep(0.2)
    assert Launcher.alive(launched)  # like Docker: the engine escalates to SIGKILL
    env.launcher.kill(launched, signal.SIGKILL)
    assert (await env.launcher.wait(launched)).code == 137


async def test_exec_sees_the_same_pid_namespace_and_files(env: Env) -> None:
    launched = await env.launch(env.config(sh("echo secret > /tmp/f; exec sleep 30")))
    for _ in range(100):
        code, out, _ = await env.launcher.exec_run(launched, ExecConfig(argv=("cat", "/tmp/f")))
        if code == 0:
            break
        await asyncio.sleep(0.02)
    assert (code, out) == (0, b"secret\n")
    code, out, _ = await env.launcher.exec_run(launched, ExecConfig(argv=("ps",)))
    assert code == 0
    rows = [line.split() for line in out.decode().splitlines()[1:]]
    assert [r[0] for r in rows if r[-2:] == ["sleep", "30"]] == ["1"]
    assert len(rows) == 2  # pid 1 and ps itself: nothing of the host
    code, out, _ = await env.launcher.exec_run(launched, ExecConfig(
        argv=("sh", "-c", "readlink /proc/self/ns/net; hostname; id -u"), user="www-data"))
    assert code == 0
    net, _host, uid = out.decode().split()
    assert net == os.readlink(f"/proc/{launched.pid}/ns/net")
    assert uid == "33"


async def test_exec_errors_and_exit_codes(env: Env) -> None:
    launched = await env.launch(env.config(["sleep", "30"]))
    code, out, err = await env.launcher.exec_run(launched, ExecConfig(argv=("nope",)))
    assert code == 127 and b'exec: "nope": executable file not found in $PATH' in err
    code, _, err = await env.launcher.exec_run(launched, ExecConfig(argv=("sh", "-c", "exit 5")))
    assert code == 5
    code, _, err = await env.launcher.exec_run(launched, ExecConfig(argv=("id",), user="ghost"))
    assert code == 125 and b"unable to find user ghost" in err
    proc = await env.launcher.exec(launched, ExecConfig(argv=("sleep", "30")))
    proc.kill(signal.SIGKILL)
    assert await proc.wait() == 137


@pytest.mark.cgroup_v1  # the pids hierarchy of a v1 host (v2's join: tests/unit/process)
async def test_exec_joins_given_cgroup(env: Env) -> None:
    cg = Path("/sys/fs/cgroup/pids/composer-test-process")
    cg.mkdir(exist_ok=True)
    try:
        launched = await env.launch(env.config(["sleep", "30"]))
        code, out, _ = await env.launcher.exec_run(launched, ExecConfig(
            argv=("cat", "/proc/self/cgroup"), cgroup_procs=(str(cg / "cgroup.procs"),)))
        assert code == 0
        assert "pids:/composer-test-process" in out.decode()
        env.launcher.kill(launched)
        await env.launcher.wait(launched)
    finally:
        for _ in range(50):
            try:
                cg.rmdir()
                break
            except OSError:
                await asyncio.sleep(0.05)


async def test_adopt_after_restart_and_nothing_remains(env: Env) -> None:
    cfg = env.config(["sh", "-c", "echo one; sleep 0.5; echo two; sleep 30"])
    launched = await env.launch(cfg)
    assert not host_has_mount(cfg.mergeddir)  # the rootfs lives in the container's mount ns
    monitor = env.launcher.server_pid
    await env.launcher.close()  # the daemon "dies": the monitor stays with its container
    assert Launcher.alive(launched) and monitor is not None
    assert proc_start_time(monitor) == launched.monitor_start_time
    other = Launcher(env.launcher.socket_path)  # a new daemon finds the same monitor
    await other.start_server()
    assert other.server_pid == monitor
    adopted = other.adopt(cfg.state_dir)
    assert adopted == launched
    waiter = asyncio.create_task(other.wait(cfg.state_dir))
    await asyncio.sleep(1)
    assert not waiter.done()
    assert env.output(cfg)[0] == "one\ntwo\n"  # the log went on without a daemon
    other.kill(adopted, signal.SIGKILL)
    status = await asyncio.wait_for(waiter, 10)
    assert status.code == 137
    assert other.adopt(cfg.state_dir) is None
    await other.close()  # no container, no engine: the monitor leaves
    assert proc_start_time(monitor) is None
    shutil.rmtree(Path(cfg.state_dir).parent)
    assert Launcher.alive(launched) is False and proc_start_time(launched.pid) is None
    mounts = Path("/proc/self/mounts").read_text()
    assert str(Path(cfg.state_dir).parent) not in mounts
    assert not any(Path(f"/proc/{p}/cmdline").exists() and cfg.mergeddir.encode() in
                   Path(f"/proc/{p}/cmdline").read_bytes()
                   for p in os.listdir("/proc") if p.isdigit())
    await env.launcher.start_server()  # the fixture closes it again


async def test_parallel_launches(env: Env) -> None:
    cfgs = [env.config(sh(f"echo n{i}; exit {i}")) for i in range(6)]
    launched = await asyncio.gather(*(env.launch(c) for c in cfgs))
    statuses = await asyncio.gather(*(env.launcher.wait(la) for la in launched))
    assert [s.code for s in statuses] == list(range(6))
    assert [env.output(c)[0] for c in cfgs] == [f"n{i}\n" for i in range(6)]
    assert len({la.pid for la in launched}) == 6


async def test_exec_run_timeout_and_cancel_kill_the_command(env: Env) -> None:
    launched = await env.launch(env.config(["sleep", "30"]))
    code, _, err = await env.launcher.exec_run(launched, ExecConfig(argv=("sleep", "30")),
                                               timeout=0.3)
    assert code == 137 and b"timed out" in err
    task = asyncio.create_task(env.launcher.exec_run(launched, ExecConfig(
        argv=("sh", "-c", "echo $$ > /tmp/pid; exec sleep 30"))))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.1)
    code, out, _ = await env.launcher.exec_run(launched, ExecConfig(
        argv=("sh", "-c", "kill -0 $(cat /tmp/pid) && echo ALIVE || echo GONE")))
    assert out.decode().strip().endswith("GONE")


async def test_exec_with_tty(env: Env) -> None:
    launched = await env.launch(env.config(["sleep", "30"]))
    code, out, err = await env.launcher.exec_run(launched, ExecConfig(
        argv=("sh", "-c", "test -t 0 && test -t 1 && echo TTY"), tty=True))
    assert (code, out.strip(), err) == (0, b"TTY", b"")


async def test_stdin_is_devnull_unless_stdin_open(env: Env) -> None:
    status, out, _ = await env.run(["cat"])
    assert (status.code, out) == (0, "")
    launched = await env.launch(env.config(["cat"], stdin_open=True))
    await asyncio.sleep(0.3)
    assert Launcher.alive(launched)  # stdin stays open, like `docker run -i`
    env.launcher.kill(launched)
    assert (await env.launcher.wait(launched)).code == 137


async def test_setup_failure_names_the_path_and_leaves_nothing(env: Env) -> None:
    from runtime.process.config import MountPoint
    missing = str(env.tmp / "does-not-exist")
    cfg = env.config(["true"], mounts=(MountPoint("bind", "/data", missing),))
    with pytest.raises(LaunchError) as ei:
        await env.launch(cfg)
    assert missing in str(ei.value) and ei.value.exit_code == 125
    assert not host_has_mount(cfg.mergeddir)
    status = Launcher.exit_status(cfg.state_dir)
    assert status is not None and status.code == 125


async def test_a_bad_request_is_answered_by_the_monitor_without_a_fork(env: Env) -> None:
    """Configs are parsed in the monitor before it forks: a request it cannot parse gets an
    error reply, no child."""
    import json

    before = set(os.listdir("/proc"))
    for req in ({"op": "launch", "config": {"argv": "not a config"}}, {"op": "bogus"}):
        sock = await env.launcher._connect()
        try:
            await asyncio.get_running_loop().sock_sendall(sock, json.dumps(req).encode())
            reply = json.loads(await asyncio.wait_for(
                asyncio.get_running_loop().sock_recv(sock, 65536), 10))
        finally:
            sock.close()
        assert reply["exit_code"] == 125 and reply["error"].startswith("bad request"), reply
    ours = [p for p in set(os.listdir("/proc")) - before if p.isdigit()]
    ppids = []
    for pid in ours:
        with contextlib.suppress(OSError):
            stat = open(f"/proc/{pid}/stat").read()
            ppids.append(int(stat.rsplit(")", 1)[1].split()[1]))
    assert env.launcher.server_pid is not None
    assert env.launcher.server_pid not in ppids  # it forked nothing for them
    # and it still serves good requests
    status, out, _ = await env.run(["echo", "still here"])
    assert status.code == 0 and out == "still here\n"
