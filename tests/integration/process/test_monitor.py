"""The monitor: one process for every container of a state root, which outlives its engine,
leaves when idle, and whose death ends its containers cleanly (runtime.process.monitor)."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from pathlib import Path

from runtime.attach import HELLO, SOCKET, frame
from runtime.process.config import ExecConfig
from runtime.process.launcher import Launcher, proc_start_time
from tests.integration.process.conftest import Env, sh


def monitor_processes(sock_path: str) -> list[int]:
    """Processes whose command line is the monitor's for `sock_path` (a Python init reaper,
    forked from it, would have it too: the containers here have none)."""
    tail = f"runtime.process.monitor\0{sock_path}\0".encode()
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if Path(f"/proc/{p}/cmdline").read_bytes().endswith(tail):
                    out.append(int(p))
            except OSError:
                pass
    return out


def ppid_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


async def gone(pid: int, start: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc_start_time(pid) != start:
            return True
        await asyncio.sleep(0.05)
    return False


async def test_fifty_containers_share_one_monitor(env: Env) -> None:
    launched = []
    for _ in range(50):
        launched.append(await env.launch(env.config(["sleep", "60"])))
    monitor = env.launcher.server_pid
    assert monitor is not None
    # no process per container but the container's own: one monitor, every init its child
    assert monitor_processes(env.launcher.socket_path) == [monitor]
    assert {la.monitor_pid for la in launched} == {monitor}
    assert all(ppid_of(la.pid) == monitor for la in launched)
    children = [int(p) for p in os.listdir("/proc") if p.isdigit() and ppid_or_0(int(p)) == monitor]
    assert sorted(children) == sorted(la.pid for la in launched)  # no launch child left
    for la in launched:
        env.launcher.kill(la, signal.SIGKILL)
    statuses = await asyncio.wait_for(
        asyncio.gather(*(env.launcher.wait(la) for la in launched)), 60)
    assert [s.code for s in statuses] == [137] * 50


def ppid_or_0(pid: int) -> int:
    try:
        return ppid_of(pid)
    except (OSError, ValueError, IndexError):
        return 0


async def test_the_monitor_stays_for_its_containers_then_leaves_when_idle(env: Env) -> None:
    cfg = env.config(sh("sleep 1; echo done; exit 3"))
    launched = await env.launch(cfg)
    monitor, start = launched.monitor_pid, launched.monitor_start_time
    await env.launcher.close()  # no engine any more: the container still has its monitor
    assert proc_start_time(monitor) == start
    # it ends: the monitor records it and, with nobody connected, leaves by itself
    assert await gone(monitor, start, 10), "the idle monitor did not leave"
    status = Launcher.exit_status(cfg.state_dir)
    assert status is not None and status.code == 3
    assert env.output(cfg)[0] == "done\n"
    assert not (Path(cfg.state_dir) / SOCKET).exists()
    await env.launcher.start_server()  # a new monitor for the fixture


async def test_a_killed_monitor_ends_its_containers_and_a_new_one_starts(env: Env) -> None:
    cfg = env.config(sh("while true; do echo tick; sleep 0.05; done"))
    launched = await env.launch(cfg)
    waiter = asyncio.create_task(env.launcher.wait(launched))
    await asyncio.sleep(0.3)
    os.kill(launched.monitor_pid, signal.SIGKILL)
    # the container lost its stdio and reaper: the wait kills it and says so (255)
    status = await asyncio.wait_for(waiter, 10)
    assert status.code == 255
    assert await gone(launched.pid, launched.start_time, 5)
    assert Launcher.exit_status(cfg.state_dir) is None  # nobody recorded an exit
    # a launcher that comes later (a restarted engine) does not adopt it either
    assert Launcher(env.launcher.socket_path).adopt(cfg.state_dir) is None
    # the next launch starts a new monitor
    status2, out, _ = await env.run(["echo", "again"])
    assert (status2.code, out) == (0, "again\n")
    assert env.launcher.server_pid not in (None, launched.monitor_pid)


async def test_adopt_kills_a_container_whose_monitor_died(env: Env) -> None:
    cfg = env.config(["sleep", "60"])
    launched = await env.launch(cfg)
    await env.launcher.close()
    os.kill(launched.monitor_pid, signal.SIGKILL)
    assert await gone(launched.monitor_pid, launched.monitor_start_time, 5)
    assert Launcher.alive(launched)  # orphaned, without stdio or reaper
    other = Launcher(env.launcher.socket_path)
    assert other.adopt(cfg.state_dir) is None  # not adoptable: it is ended instead
    assert await gone(launched.pid, launched.start_time, 5)
    await env.launcher.start_server()


async def test_a_stuck_attach_client_does_not_stall_another_container(env: Env) -> None:
    loud = env.config(sh("while true; do echo 0123456789abcdef0123456789abcdef; done"),
                      log_driver="none")
    loud_run = await env.launch(loud)
    stuck = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(str(Path(loud.state_dir) / SOCKET))
    stuck.sendall(frame(HELLO, b"0"))  # then never reads
    try:
        quiet = env.config(sh("for i in $(seq 1 40); do echo line $i; sleep 0.01; done"))
        t0 = time.monotonic()
        quiet_run = await env.launch(quiet)
        status = await asyncio.wait_for(env.launcher.wait(quiet_run), 20)
        took = time.monotonic() - t0
        assert status.code == 0
        assert env.output(quiet)[0] == "".join(f"line {i}\n" for i in range(1, 41))
        assert took < 10, f"the other container took {took:.1f} s"
        # the client that does not read was dropped once MAX_PENDING was queued for it
        stuck.settimeout(20)
        while stuck.recv(1 << 20):
            pass
        assert Launcher.alive(loud_run)
    finally:
        stuck.close()
        env.launcher.kill(loud_run)
        await asyncio.wait_for(env.launcher.wait(loud_run), 10)


def oom_score_adj(pid: int | str) -> int:
    return int(Path(f"/proc/{pid}/oom_score_adj").read_text())


def can_lower_oom_score() -> bool:
    """CAP_SYS_RESOURCE (24) in our effective set: a lower oom_score_adj is allowed. This CI
    machine's root lacks it (a sandbox); the Debian VM's has it (tests/host/process)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> 24 & 1)
    return False


async def test_the_oom_killer_takes_the_monitor_last_and_containers_as_before(env: Env) -> None:
    """The monitor's death ends every container of its root: -999, as containerd's shims
    (where root may lower a score); a container's init and an exec'd process keep the score
    the monitor was started with."""
    mine = oom_score_adj("self")
    launched = await env.launch(env.config(["sleep", "60"]))
    assert oom_score_adj(launched.monitor_pid) == (-999 if can_lower_oom_score() else mine)
    assert oom_score_adj(launched.pid) == mine
    code, out, _ = await env.launcher.exec_run(
        launched, ExecConfig(argv=("cat", "/proc/self/oom_score_adj")))
    assert (code, out.strip()) == (0, str(mine).encode())
    env.launcher.kill(launched, signal.SIGKILL)
    assert (await env.launcher.wait(launched)).code == 137
