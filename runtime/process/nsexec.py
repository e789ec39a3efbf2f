"""Exec into a running container (runc exec / nsenter), forked by the monitor.

The helper joins the container's cgroups, opens every namespace of the target first, joins
them in JOIN_ORDER (mnt last), then forks: only a child lands in the pid namespace. The child
takes the container user and capabilities and execs; the helper reports on the connection:

    helper -> launcher  {"started": true, "pid": <host pid>}   the command is running
                        {"error": msg, "exit_code": 126|127}     exec failed (nothing runs)
    helper -> launcher  {"exit_code": n}                         the command finished
"""
from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import termios

from runtime.process import security
from runtime.process.config import ExecConfig
from runtime.process.init import (
    JOIN_ORDER,
    _fail,
    build_env,
    exec_command,
    exit_code_of,
    read_last_cap,
)
from runtime.process.security import Identity
from runtime.process.spawn import SeqChannel, reset_signals
from runtime.process.syscalls import NS_FLAGS, Syscalls
from runtime.process.users import resolve_user


class _PipeChannel:
    """The exec child's error channel: a CLOEXEC pipe the helper reads (EOF = exec'd)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send(self, msg: dict[str, object]) -> None:
        os.write(self.fd, json.dumps(msg).encode())

    def recv(self) -> dict[str, object] | None:
        return None


def join_cgroup(procs: str, sc: Syscalls) -> None:
    """Move this helper into the cgroup whose `cgroup.procs` is `procs`. On a v1 hierarchy
    it writes 0 to the cgroup's `tasks`: the kernel then moves the calling thread alone and
    skips the global threadgroup rwsem, whose writer waits for an RCU grace period when no
    other move just took it (10-17 ms of every exec here; 0.5-1.6 ms for nine hierarchies
    so). The helper is a forked process, so it has one thread: that thread is the whole
    process, and the command it forks is born in the cgroup. cgroup v2 moves threads only
    inside a threaded subtree: there the pid goes to cgroup.procs, as before."""
    tasks = os.path.join(os.path.dirname(procs), "tasks")
    if sc.exists(tasks):
        sc.write_file(tasks, "0")
    else:
        sc.write_file(procs, str(os.getpid()))


def join_container(target_pid: int, cfg: ExecConfig, sc: Syscalls) -> None:
    for path in cfg.cgroup_procs:  # before forking, so the command is born in the cgroup
        join_cgroup(path, sc)
    fds = []
    for ns in JOIN_ORDER:
        mine = f"/proc/self/ns/{ns}"
        theirs = f"/proc/{target_pid}/ns/{ns}"
        try:
            if os.stat(mine).st_ino == os.stat(theirs).st_ino:
                continue  # shared with us (e.g. host network): setns would fail for user
        except FileNotFoundError:
            continue
        fds.append((ns, sc.open_ns(theirs)))
    for ns, fd in fds:
        sc.setns(fd, NS_FLAGS[ns])
        sc.close(fd)


def run_exec(target_pid: int, cfg: ExecConfig, conn: socket.socket, stdio: list[int],
             sc: Syscalls) -> int:
    reset_signals()
    os.setsid()
    chan = SeqChannel(conn)
    try:
        last_cap = read_last_cap(sc)  # host /proc, before joining the mount namespace
        join_container(target_pid, cfg, sc)
    except BaseException as e:  # noqa: BLE001
        return _fail(chan, e)
    err_r, err_w = os.pipe()  # CLOEXEC: EOF when the child's execve succeeds
    pid = os.fork()
    if pid == 0:
        code = 126
        try:
            os.close(err_r)
            for i, fd in enumerate(stdio[:3]):
                os.dup2(fd, i)
            if cfg.tty:
                os.setsid()
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            user = resolve_user(cfg.user, cfg.group_add, sc.read_file("/etc/passwd"),
                                sc.read_file("/etc/group"))
            # the container's own confinement, applied as its init applied it
            security.apply(Identity(user, cfg.security, last_cap), sc)
            sc.chdir(cfg.cwd or "/")
            exec_command(list(cfg.argv), build_env(cfg.env, user), sc, keep_fds=(err_w,))
        except BaseException as e:  # noqa: BLE001
            code = _fail(_PipeChannel(err_w), e)
        os._exit(code)
    os.close(err_w)
    for fd in stdio:
        os.close(fd)
    failure = b""
    while True:
        chunk = os.read(err_r, 65536)
        if not chunk:
            break
        failure += chunk
    os.close(err_r)
    if failure:
        chan.send(json.loads(failure))
    else:
        chan.send({"started": True, "pid": pid})
    signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGTERM))
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    code = exit_code_of(status)
    try:
        chan.send({"exit_code": code})
    except OSError:
        pass
    return code
