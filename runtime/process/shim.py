"""The per-container shim: forked by the fork server, survives the daemon and the fork server.

It makes the pid namespace (unshare CLONE_NEWPID affects children only), forks the container
init (pid 1 there), turns the init's stdout/stderr into the json log and serves attach
clients on `<state_dir>/attach.sock` (runtime.process.stdio), and when the init exits
writes `<state_dir>/exit.json` atomically, then exits. The engine waits on the shim's pidfd.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import gc
import json
import os
import signal
import socket
import termios
import time
import traceback
from collections.abc import Callable

from runtime.attach import SOCKET
from runtime.errors import LaunchError
from runtime.process import userns
from runtime.process.config import LaunchConfig
from runtime.process.fluentd import FluentdSender
from runtime.process.init import _fail, exit_code_of, run_init
from runtime.process.logs import JsonLogWriter
from runtime.process.stdio import StdioPump, listen
from runtime.process.syscalls import (
    CLONE_NEWPID,
    CLONE_NEWUSER,
    PR_SET_CHILD_SUBREAPER,
    Syscalls,
)

EXIT_FILE = "exit.json"


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
    """Python ignores SIGPIPE/SIGXFSZ and the fork server ignores SIGCHLD; ignored signals
    survive execve, so give the container the defaults back."""
    for s in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGCHLD, signal.SIGINT, signal.SIGTERM,
              signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(s, signal.SIG_DFL)


def write_exit(state_dir: str, code: int, sig: int | None) -> None:
    tmp = os.path.join(state_dir, EXIT_FILE + ".tmp")
    with open(tmp, "w") as f:
        json.dump({"exit_code": code, "signal": sig, "finished_at": time.time()}, f)
    os.rename(tmp, os.path.join(state_dir, EXIT_FILE))


def run_shim(cfg: LaunchConfig, conn: socket.socket, sc: Syscalls) -> int:
    gc.disable()  # no cycles are made here; a collection would dirty copy-on-write pages
    reset_signals()
    os.setsid()  # its own session: a daemon's ^C or death does not reach containers
    os.makedirs(cfg.state_dir, exist_ok=True)
    forward = None
    if cfg.log_forward.address:  # the fluentd driver: as Docker, no endpoint, no start
        forward = FluentdSender(cfg.log_forward)
        try:
            forward.connect()
        except OSError as e:
            if not cfg.log_forward.async_connect:
                _fail(SeqChannel(conn), LaunchError(
                    f"failed to initialize logging driver: fluentd: cannot connect to "
                    f"{cfg.log_forward.address}: {e.strerror or e} (start it first, or set "
                    "the logging option fluentd-async: \"true\")"))
                return 0
    writer = JsonLogWriter(None if cfg.log_driver == "none" else cfg.log_file,
                           cfg.log_max_size, cfg.log_max_files, cfg.log_compress, forward)
    devnull = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
    readers: dict[int, str] = {}
    keep_in = -1
    if cfg.tty:
        master, slave = os.openpty()
        child_io = (slave, slave, slave)
        readers[master] = "stdout"
        keep_in = master
    else:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        stdin = devnull
        if cfg.stdin_open:  # keep a writer open so the command never sees EOF on stdin
            stdin, keep_in = os.pipe()
        child_io = (stdin, out_w, err_w)
        readers[out_r] = "stdout"
        readers[err_r] = "stderr"

    try:
        listener = listen(cfg.state_dir)  # close-on-exec: the container never holds it
    except OSError:
        listener = None  # no attach, the logs still work

    shim_pid = os.getpid()  # the init's parent is not always us (user namespaces)

    def init_main(idmapped: tuple[int, ...] = ()) -> None:  # the container init
        code = 125
        try:
            for i, fd in enumerate(child_io):
                os.dup2(fd, i)  # dup2 clears CLOEXEC on 0/1/2
            if cfg.tty:
                os.setsid()
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            code = run_init(cfg, sc, SeqChannel(conn), conn.fileno(), idmapped, shim_pid)
        except BaseException:  # noqa: BLE001
            traceback.print_exc()
        os._exit(code)

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
        elif "pid" in cfg.namespaces:
            sc.unshare(CLONE_NEWPID)
        pid = os.fork()
        if pid == 0:
            init_main()

    conn.close()
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # a gone client or stdin reader is EPIPE
    for fd in set(child_io) - {devnull}:
        os.close(fd)
    for i in range(3):
        os.dup2(devnull, i)
    StdioPump(readers, writer, stdin_fd=keep_in, tty=cfg.tty, listener=listener).run()
    writer.close()  # waits for a compression still running: the state dir may go next
    with contextlib.suppress(OSError):
        os.unlink(os.path.join(cfg.state_dir, SOCKET))
    _, status = os.waitpid(pid, 0)
    code = exit_code_of(status)
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    write_exit(cfg.state_dir, code, sig)
    return 0


def start_in_userns(cfg: LaunchConfig, sc: Syscalls,
                    init_main: Callable[[tuple[int, ...]], None]) -> int:
    """The init in a new user namespace that owns its pid namespace; returns the init's pid.

        shim (host root)                      stage-1 child
        ----------------                      -------------
        subreaper; fork ------------------->  unshare(NEWUSER); send "u"
        write uid_map, gid_map of the child
        chown upper/work to the mapped root
        idmapped clones of every lowerdir ->  (fds over the socketpair)
                                              setresgid/setresuid(0); unshare(NEWPID)
                                              fork the init (pid 1) -> init_main(fds)
        waitpid(stage-1) <------------------  send the init's pid; exit
        the init is reparented to the shim (subreaper) and waited for as usual

    The pid namespace must be created inside the user namespace (mounting /proc needs
    CAP_SYS_ADMIN in its owner), and the shim must stay outside (it writes exit.json as host
    root), hence the stage-1 child. The maps are written from outside as only host root may
    map ranges other than its own id.
    """
    sc.prctl(PR_SET_CHILD_SUBREAPER, 1)
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
