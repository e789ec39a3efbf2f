"""The launch child: forked by the monitor for one container, it makes the pid namespace
(unshare CLONE_NEWPID affects children only; with a user namespace the stage-1 dance of
`start_in_userns`), forks the container's init (pid 1 there), tells the monitor the init's
host pid on its `report` socket, and exits. The monitor is a child subreaper: it adopts the init,
reaps it and writes its exit.json (runtime.process.monitor).

The child is short-lived, so it may block (a user namespace's maps and idmapped mounts, the
fluentd driver's first connection) without holding up the monitor's loop.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import signal
import socket
import termios
import traceback
from collections.abc import Callable

from runtime.errors import LaunchError
from runtime.process import userns
from runtime.process.config import LaunchConfig
from runtime.process.fluentd import FluentdSender
from runtime.process.init import _fail, run_init
from runtime.process.syscalls import (
    CLONE_NEWPID,
    CLONE_NEWUSER,
    PR_SET_CHILD_SUBREAPER,
    Syscalls,
)


class SeqChannel:
    """JSON messages over a SOCK_SEQPACKET connection (one message per packet)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def send(self, msg: dict[str, object]) -> None:
        self.sock.send(json.dumps(msg).encode())

    def recv(self) -> dict[str, object] | None:
        data = self.sock.recv(65536)
        return json.loads(data) if data else None


def reset_signals() -> None:
    """Python ignores SIGPIPE/SIGXFSZ, the monitor ignores SIGINT and catches SIGCHLD (with
    a wake-up fd of its own); ignored signals survive execve, so give the container the
    defaults back, and keep the monitor's wake-up pipe out of its children."""
    signal.set_wakeup_fd(-1)
    for s in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGCHLD, signal.SIGINT, signal.SIGTERM,
              signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(s, signal.SIG_DFL)


def run_launch(cfg: LaunchConfig, conn: socket.socket, child_io: tuple[int, int, int],
               report: socket.socket, monitor_pid: int, sc: Syscalls) -> int:
    """The launch child's whole life; returns its exit code (0: the init runs or reported
    its own failure to the launcher). `report` takes one message to the monitor: the init's
    host pid, with the fluentd connection (SCM_RIGHTS) when one was made here."""
    reset_signals()
    os.setsid()  # its own session and process group: a signal to the monitor's stays there
    forward: list[int] = []
    if cfg.log_forward.address and not cfg.log_forward.async_connect:
        # as Docker: without fluentd-async the container does not start when the endpoint
        # cannot be reached; the connection, made here where waiting blocks nobody, is
        # handed to the monitor
        probe = FluentdSender(cfg.log_forward)
        try:
            probe.connect()
        except OSError as e:
            _fail(SeqChannel(conn), LaunchError(
                f"failed to initialize logging driver: fluentd: cannot connect to "
                f"{cfg.log_forward.address}: {e.strerror or e} (start it first, or set "
                "the logging option fluentd-async: \"true\")"))
            return 0
        assert probe.sock is not None
        forward.append(probe.sock.fileno())

    def init_main(idmapped: tuple[int, ...] = ()) -> None:  # the container init
        code = 125
        try:
            report.close()
            for fd in forward:
                os.close(fd)
            for i, fd in enumerate(child_io):
                os.dup2(fd, i)  # dup2 clears CLOEXEC on 0/1/2
            if cfg.tty:
                os.setsid()
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            code = run_init(cfg, sc, SeqChannel(conn), conn.fileno(), idmapped, monitor_pid)
        except BaseException:  # noqa: BLE001
            traceback.print_exc()
        os._exit(code)

    # a subreaper until the monitor knows the init's pid: an init that dies at once stays
    # our zombie (not the monitor's) until then, and the monitor gets it with us
    sc.prctl(PR_SET_CHILD_SUBREAPER, 1)
    if "user" in cfg.namespaces:
        try:
            pid = start_in_userns(cfg, sc, init_main)
        except BaseException as e:  # noqa: BLE001 - the launcher waits for "ready"
            _fail(SeqChannel(conn), e)
            return 0
    else:
        if "pid" in cfg.join_namespaces:
            fd = sc.open_ns(cfg.join_namespaces["pid"])
            sc.setns(fd, CLONE_NEWPID)
            sc.close(fd)
        pid = fork_init(cfg, sc, CLONE_NEWPID if "pid" in cfg.namespaces
                        and "pid" not in cfg.join_namespaces else 0)
        if pid == 0:
            init_main()
    socket.send_fds(report, [str(pid).encode()], forward)
    return 0


def fork_init(cfg: LaunchConfig, sc: Syscalls, flags: int) -> int:
    """fork() for the init, in new namespaces `flags` (CLONE_NEWPID: it is pid 1 there): born
    in its cgroup when the engine named a v2 directory and the kernel takes clone3's
    CLONE_INTO_CGROUP (as crun does), else unshare + a plain fork, and the engine moves it
    into its cgroup before "go". Either way the init is in its cgroup before it execs."""
    if cfg.cgroup_dir:
        try:
            fd = os.open(cfg.cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            fd = -1
        if fd >= 0:
            try:
                return sc.fork_into_cgroup(fd, flags)
            except OSError:
                pass  # Linux < 5.7, not a v2 directory, clone3 filtered: as without
            finally:
                os.close(fd)  # in both: the init needs no copy
    if flags:
        sc.unshare(flags)
    return os.fork()


def start_in_userns(cfg: LaunchConfig, sc: Syscalls,
                    init_main: Callable[[tuple[int, ...]], None]) -> int:
    """The init in a new user namespace that owns its pid namespace; returns the init's pid.

        launch child (host root)              stage-1 child
        ------------------------              -------------
        subreaper; fork ------------------->  unshare(NEWUSER); send "u"
        write uid_map, gid_map of the child
        chown upper/work to the mapped root
        idmapped clones of every lowerdir ->  (fds over the socketpair)
                                              setresgid/setresuid(0); unshare(NEWPID)
                                              fork the init (pid 1) -> init_main(fds)
        waitpid(stage-1) <------------------  send the init's pid; exit
        the init is reparented to the launch child (subreaper), then to the monitor

    The pid namespace must be created inside the user namespace (mounting /proc needs
    CAP_SYS_ADMIN in its owner), and the monitor must stay outside (it writes exit.json as
    host root), hence the stage-1 child. The maps are written from outside as only host root
    may map ranges other than its own id.
    """
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    stage1 = os.fork()
    if stage1 == 0:
        code = 125
        try:
            mine.close()
            sc.unshare(CLONE_NEWUSER)
            theirs.send(b"u")
            msg, layer_fds, _flags, _addr = socket.recv_fds(theirs, 64, len(cfg.lowerdirs) + 1)
            if msg == b"go":
                sc.setresgid(0)
                sc.setresuid(0)
                sc.unshare(CLONE_NEWPID)
                pid = os.fork()
                if pid == 0:
                    theirs.close()
                    init_main(tuple(layer_fds))
                theirs.send(str(pid).encode())
                code = 0
        except BaseException:  # noqa: BLE001
            traceback.print_exc()
        os._exit(code)
    theirs.close()
    fds: list[int] = []
    try:
        if mine.recv(16) != b"u":
            raise OSError(errno.EPERM, "could not create the user namespace: is "
                          "/proc/sys/user/max_user_namespaces 0?")
        userns.write_maps(stage1, cfg.uid_map, cfg.gid_map)
        root_uid, root_gid = userns.to_host(cfg.uid_map, 0), userns.to_host(cfg.gid_map, 0)
        for d in (cfg.upperdir, cfg.workdir):
            if d:
                os.chown(d, root_uid, root_gid)
        ns_fd = os.open(f"/proc/{stage1}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        try:
            fds = [sc.idmapped_clone(d, ns_fd) for d in cfg.lowerdirs]
        finally:
            os.close(ns_fd)
        socket.send_fds(mine, [b"go"], fds)
        reply = mine.recv(32)
        if not reply:
            raise OSError(errno.ECHILD, "the container's user namespace setup failed")
        return int(reply)
    except BaseException:
        mine.close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(stage1, signal.SIGKILL)
        raise
    finally:
        for fd in fds:
            os.close(fd)
        mine.close()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(stage1, 0)
