"""The monitor: one long-lived, single-threaded, pre-imported Python per engine state root
that launches every container, holds its stdio, writes its log, serves its attach socket,
reaps its init and records its exit. It outlives the engine (composerd may exit, crash and
come back: the new one finds the monitor at its socket and adopts the running containers)
and exits by itself once it has no container left and no engine connected.

    composerd ... monitor (setsid, child subreaper) ─┬─ init (pid 1) ── the container's
                                                      ├─ init ── ...
                                                      └─ exec helpers (one per `exec`)

Started by the engine (`python -m runtime.process.monitor <socket>`): the process forks, the
child becomes the monitor (its own session: a terminal's ^C never reaches it; not the
engine's child: nothing of the engine waits for it), prints "ready <pid>" and the parent
exits. It listens on a SOCK_SEQPACKET unix socket (mode 0600); one JSON message per packet.
Requests, each on a connection of its own:

    {"op": "session"}       an engine: answered {"pid": P, "features": [...]} (FEATURES;
                            an older monitor sends none); the connection stays open and
                            carries {"exit": state_dir, "exit_code": n, "signal": s} for
                            every container that ends, and {"op": "close"} from the engine
                            (answered {"exiting": bool}: the monitor leaves when idle)
    {"op": "launch", "config": LaunchConfig}   see below
    {"op": "exec", "target_pid": P, "config": ExecConfig} + stdin/stdout/stderr fds as
                            SCM_RIGHTS: a forked helper joins the container and runs it
                            (runtime.process.nsexec has its replies)
    {"op": "ping"}          {"pong": pid}

Sync protocol of a launch (on the request's connection):

 step | who -> whom              | message                                  | meaning
 -----+--------------------------+------------------------------------------+--------------------------------
  1   | launcher -> monitor      | {"op": "launch", "config": LaunchConfig} | parsed before any fork
  2   | monitor                  | pipes or pty, log writer, attach.sock;   | failure: {"error": msg}
      |                          | fork a launch child (runtime.process.    |
      |                          | spawn), close its copy of the connection |
  3   | launch child             | setsid, unshare(NEWPID) or join, fork    | userns: spawn.start_in_userns
      |                          | the init; its host pid -> the monitor    |
      |                          | (a pipe); exit: the monitor adopts it    |
  4   | init -> launcher         | {"ready": true, "pid": P, "monitor_pid": | uts/ipc/net/mnt namespaces exist;
      |                          | M}                                       | init is paused in recv()
  5   | launcher                 | await prepare(P)                         | engine: cgroup, network (netns of P)
  6   | launcher -> init         | {"go": true}                             | or close: init exits, nothing left
  7   | init                     | cgroup ns, mounts, pivot_root, caps, ...,| the connection is CLOEXEC
      |                          | execve                                   |
  8   | init -> launcher         | EOF                                      | execve succeeded: started
      |                          | {"error": msg, "exit_code": n}           | setup/exec failed (125/126/127)
  9   | monitor                  | reaps the init, its output ends ->       | then {"exit": ...} to every
      |                          | <state_dir>/exit.json                    | engine session

If the monitor itself is killed, its containers lose their stdio (their writes fail with
EPIPE), their logs and their reaper: the engine sees its session end, kills those containers
(SIGKILL to each init) and records them as exited with code 255; the next launch starts a
new monitor (see docs/architecture.md, "The monitor").
"""
from __future__ import annotations

import contextlib
import gc
import json
import os
import select
import signal
import socket
import sys
import time
import traceback
from dataclasses import dataclass

from runtime import serde
from runtime.attach import SOCKET
from runtime.process import logs
from runtime.process.config import ExecConfig, LaunchConfig
from runtime.process.fluentd import FluentdSender
from runtime.process.init import exit_code_of
from runtime.process.nsexec import run_exec
from runtime.process.spawn import run_launch
from runtime.process.stdio import Poll, StdioPump, listen
from runtime.process.syscalls import PR_SET_CHILD_SUBREAPER, LibcSyscalls, Syscalls
from runtime.unixsock import bind_private

MAX_MSG = 1 << 20
# what this monitor's inits do that an older one's did not, told to each session: an engine
# does the work itself when its monitor (started before an upgrade) does not name it
LOOPBACK_FEATURE = "loopback"  # the init brings lo up in a network namespace it creates
CGROUP_FEATURE = "cgroup_dir"  # LaunchConfig.cgroup_dir: the init is cloned into its cgroup
FEATURES = (LOOPBACK_FEATURE, CGROUP_FEATURE)
EXIT_FILE = "exit.json"
FIRST_SESSION_WAIT = 30.0  # seconds a new monitor waits for its engine before leaving idle
REQUEST_TIMEOUT = 5.0  # a connection that says nothing for this long is closed


def write_exit(state_dir: str, code: int, sig: int | None) -> None:
    tmp = os.path.join(state_dir, EXIT_FILE + ".tmp")
    with open(tmp, "w") as f:
        json.dump({"exit_code": code, "signal": sig, "finished_at": time.time()}, f)
    os.rename(tmp, os.path.join(state_dir, EXIT_FILE))


def close_inherited(keep: set[int]) -> None:
    """In a forked child: close every fd of the monitor's (other containers' pipes, attach
    clients, engine sessions) but 0-2 and `keep`. A copy kept by a helper would hold a
    client's connection open after the monitor dropped it."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)


@dataclass(eq=False)
class Container:
    state_dir: str
    pump: StdioPump | None = None
    launch_pid: int = 0  # the launch child, until reaped
    report: socket.socket | None = None  # the launch child's message: the init's pid
    init_pid: int = 0
    status: tuple[int, int | None] | None = None  # (exit code, signal) once reaped
    output_closed: bool = False


class Monitor:
    def __init__(self, path: str, sc: Syscalls, oom_score_adj: int = 0) -> None:
        self.path = path
        self.sc = sc
        self.oom_score_adj = oom_score_adj  # what a container's processes get back (ours: -999)
        self.pid = os.getpid()  # (a forked child's os.getpid() is its own)
        self.poll = Poll()
        self.containers: dict[str, Container] = {}  # by state dir
        self.by_launch: dict[int, Container] = {}
        self.by_init: dict[int, Container] = {}
        self.sessions: dict[int, socket.socket] = {}
        self.requests: dict[int, tuple[socket.socket, float]] = {}
        self.had_session = False
        self.started = time.monotonic()
        self.running = True
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        bind_private(self.srv, path)
        self.srv.listen(128)
        self.srv.setblocking(False)
        self.ino = os.stat(path).st_ino
        self.poll.register(self.srv.fileno(), select.POLLIN, self._accept)
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler: the wake-up fd fires
        self.poll.register(self.wake_r, select.POLLIN, self._wake)

    # -- the loop
    def serve(self) -> None:
        while self.running:
            ending = [c.pump for c in self.containers.values()
                      if c.pump is not None and not c.pump.readers and not c.pump.closed]
            forwards = [c.pump.writer.forward for c in self.containers.values()
                        if c.pump is not None and c.pump.writer.forward is not None
                        and c.pump.writer.forward.pending]
            for fwd in forwards:  # lines buffered while the endpoint was away or slow
                fwd.flush()
            timeout = 0.05 if ending or self.requests else None
            if timeout is None and (forwards or not self.had_session and not self.containers):
                timeout = 1.0
            self.poll.run_once(timeout)
            for pump in ending:  # output ended: clients are getting their last words
                pump.tick()
            now = time.monotonic()
            for fd, (conn, since) in list(self.requests.items()):
                if now - since > REQUEST_TIMEOUT:  # connected and said nothing
                    self._forget_request(fd)
                    conn.close()
            self._reap()
            self._check_idle()
        self._leave()

    def _check_idle(self) -> None:
        if self.containers or self.sessions or self.requests:
            return
        if self.had_session or time.monotonic() - self.started > FIRST_SESSION_WAIT:
            self.running = False

    def _leave(self) -> None:
        self.poll.unregister(self.srv.fileno())
        self.srv.close()
        with contextlib.suppress(OSError):  # a newer monitor may have bound the path since
            if os.stat(self.path).st_ino == self.ino:
                os.unlink(self.path)

    def _wake(self, fd: int, _ev: int) -> None:
        with contextlib.suppress(OSError):
            while os.read(fd, 512):
                pass

    # -- children
    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            except InterruptedError:
                continue
            if pid == 0:
                return
            self._reaped(pid, status)

    def _reaped(self, pid: int, status: int) -> None:
        if pid in logs.compressors:
            logs.compressors.discard(pid)
            return
        if pid not in self.by_init:  # its init may be a child of ours already: learn it
            for pending in list(self.by_launch.values()):
                self._read_report(pending)
        ended = self.by_init.pop(pid, None)
        if ended is not None:
            ended.status = (exit_code_of(status),
                            os.WTERMSIG(status) if os.WIFSIGNALED(status) else None)
            self._maybe_done(ended)
            return
        c = self.by_launch.pop(pid, None)
        if c is not None:
            self._read_report(c)
            self._end_report(c)
            c.launch_pid = 0
            if not c.init_pid:  # it failed before the init (it told the launcher)
                c.status = (125, None)
                self._maybe_done(c)
        # anything else: an exec helper, or an orphan of a container without its own pid
        # namespace (the monitor is their subreaper)

    def _read_report(self, c: Container) -> None:
        """The launch child's message, if it came: the init's pid (and the fluentd
        connection it made); EOF without it: it failed before the init."""
        if c.report is None:
            return
        try:
            data, fds, _flags, _addr = socket.recv_fds(c.report, 64, 1)
        except BlockingIOError:
            return
        except OSError:
            data, fds = b"", []
        forward = c.pump.writer.forward if c.pump is not None else None
        for fd in fds:
            if forward is not None:
                forward.adopt(fd)
            else:
                os.close(fd)
        if data.strip().isdigit() and not c.init_pid:
            c.init_pid = int(data)
            self.by_init[c.init_pid] = c
        self._end_report(c)

    def _end_report(self, c: Container) -> None:
        if c.report is not None:
            self.poll.unregister(c.report.fileno())
            c.report.close()
            c.report = None
        if c.pump is not None and c.pump.writer.forward is not None:
            c.pump.writer.forward.release()

    # -- containers
    def _output_closed(self, c: Container) -> None:
        c.output_closed = True
        self._maybe_done(c)

    def _maybe_done(self, c: Container) -> None:
        if c.status is None or not c.output_closed or c.launch_pid:
            return
        if self.containers.get(c.state_dir) is c:
            del self.containers[c.state_dir]
        if c.pump is not None:
            c.pump.writer.close()  # waits for a compression still running: the dir may go next
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(c.state_dir, SOCKET))
        code, sig = c.status
        try:
            write_exit(c.state_dir, code, sig)
        except OSError:
            traceback.print_exc()
        event = json.dumps({"exit": c.state_dir, "exit_code": code, "signal": sig}).encode()
        for fd, sess in list(self.sessions.items()):
            try:
                sess.send(event)
            except OSError:
                self._drop_session(fd)

    def launch(self, cfg: LaunchConfig, conn: socket.socket) -> None:
        os.makedirs(cfg.state_dir, exist_ok=True)
        old = self.containers.get(cfg.state_dir)
        if old is not None and old.status is None:
            raise ValueError(f"a container still runs in {cfg.state_dir}")
        forward = FluentdSender(cfg.log_forward, hold=not cfg.log_forward.async_connect) \
            if cfg.log_forward.address else None
        writer = logs.JsonLogWriter(None if cfg.log_driver == "none" else cfg.log_file,
                                    cfg.log_max_size, cfg.log_max_files, cfg.log_compress,
                                    forward)
        devnull = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
        readers: dict[int, str] = {}
        keep_in = -1
        if cfg.tty:
            master, slave = os.openpty()
            os.set_inheritable(master, False)
            child_io = (slave, slave, slave)
            readers[master] = "stdout"
            keep_in = master
        else:
            out_r, out_w = os.pipe2(os.O_CLOEXEC)
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
            stdin = devnull
            if cfg.stdin_open:  # keep a writer open so the command never sees EOF on stdin
                stdin, keep_in = os.pipe2(os.O_CLOEXEC)
            child_io = (stdin, out_w, err_w)
            readers[out_r] = "stdout"
            readers[err_r] = "stderr"
        try:
            listener: socket.socket | None = listen(cfg.state_dir)
        except OSError:
            listener = None  # no attach, the logs still work
        report_r, report_w = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            pid = os.fork()
        except OSError:
            for fd in (*readers, *set(child_io), keep_in):
                with contextlib.suppress(OSError):
                    os.close(fd)
            report_r.close()
            report_w.close()
            if listener is not None:
                listener.close()
            writer.close()
            raise
        if pid == 0:
            code = 125
            try:
                _write_oom_score_adj(self.oom_score_adj)  # the container's, not the monitor's
                close_inherited({conn.fileno(), *child_io, report_w.fileno()})
                conn.setblocking(True)  # the init may wait for "go" as long as prepare() takes
                code = run_launch(cfg, conn, child_io, report_w, self.pid, self.sc)
            except BaseException as e:  # noqa: BLE001 - report, then leave without unwinding
                with contextlib.suppress(OSError):
                    conn.send(json.dumps({"error": str(e), "exit_code": 125}).encode())
            os._exit(code)
        report_w.close()
        report_r.setblocking(False)
        for fd in set(child_io):
            os.close(fd)
        if devnull not in child_io:
            os.close(devnull)
        c = Container(cfg.state_dir, launch_pid=pid, report=report_r)
        self.containers[cfg.state_dir] = c
        self.by_launch[pid] = c
        c.pump = StdioPump(readers, writer, self.poll, stdin_fd=keep_in, tty=cfg.tty,
                           listener=listener, on_closed=lambda: self._output_closed(c))
        self.poll.register(report_r.fileno(), select.POLLIN, lambda _fd, _ev: self._read_report(c))

    # -- requests
    def _accept(self, _fd: int, _ev: int) -> None:
        while True:
            try:
                conn, _ = self.srv.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                traceback.print_exc()
                return
            conn.setblocking(False)
            self.requests[conn.fileno()] = (conn, time.monotonic())
            self.poll.register(conn.fileno(), select.POLLIN, self._request)

    def _forget_request(self, fd: int) -> None:
        self.requests.pop(fd, None)
        self.poll.unregister(fd)

    def _request(self, fd: int, _ev: int) -> None:
        conn, _ = self.requests[fd]
        try:
            msg, fds, _flags, _addr = socket.recv_fds(conn, MAX_MSG, 3)
        except BlockingIOError:
            return
        except OSError:
            msg, fds = b"", []
        self._forget_request(fd)
        keep = False
        try:
            if msg:
                keep = self._handle(conn, json.loads(msg), fds)
        except Exception as e:  # noqa: BLE001 - one bad request must not stop the monitor
            what = "fork failed" if isinstance(e, OSError) else "bad request"
            with contextlib.suppress(OSError):
                conn.send(json.dumps({"error": f"{what}: {e}", "exit_code": 125}).encode())
        finally:
            for f in fds:
                with contextlib.suppress(OSError):
                    os.close(f)
            if not keep:
                conn.close()

    def _handle(self, conn: socket.socket, req: dict[str, object], fds: list[int]) -> bool:
        """Serve one request; True when `conn` stays open (an engine's session)."""
        op = req.get("op")
        if op == "ping":
            conn.send(json.dumps({"pong": self.pid}).encode())
            return False
        if op == "session":
            conn.send(json.dumps({"pid": self.pid, "features": list(FEATURES)}).encode())
            self.sessions[conn.fileno()] = conn
            self.had_session = True
            self.poll.register(conn.fileno(), select.POLLIN, self._session_event)
            return True
        if op == "launch":
            self.launch(serde.from_dict(LaunchConfig, req["config"]), conn)
            return False
        if op == "exec":
            cfg = serde.from_dict(ExecConfig, req["config"])
            target = int(req["target_pid"])  # type: ignore[call-overload]
            pid = os.fork()
            if pid == 0:
                code = 125
                try:
                    _write_oom_score_adj(self.oom_score_adj)
                    close_inherited({conn.fileno(), *fds})
                    conn.setblocking(True)
                    code = run_exec(target, cfg, conn, fds, self.sc)
                except BaseException as e:  # noqa: BLE001
                    with contextlib.suppress(OSError):
                        conn.send(json.dumps({"error": str(e), "exit_code": 125}).encode())
                os._exit(code)
            return False
        raise ValueError(f"unknown monitor request {op!r}")

    def _session_event(self, fd: int, _ev: int) -> None:
        sess = self.sessions[fd]
        try:
            data = sess.recv(MAX_MSG)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop_session(fd)
            return
        with contextlib.suppress(ValueError, OSError):
            if json.loads(data).get("op") == "close":
                exiting = not self.containers and len(self.sessions) == 1
                sess.send(json.dumps({"exiting": exiting}).encode())

    def _drop_session(self, fd: int) -> None:
        sess = self.sessions.pop(fd, None)
        if sess is not None:
            self.poll.unregister(fd)
            sess.close()


def _warm_up() -> None:
    """Fill serde's type-hint cache and the json encoder before serving."""
    cfg = LaunchConfig(id="warm", argv=("true",), state_dir="/", mergeddir="/", lowerdirs=("/",))
    serde.from_dict(LaunchConfig, json.loads(json.dumps(serde.to_dict(cfg))))
    serde.from_dict(ExecConfig, serde.to_dict(ExecConfig(argv=("true",))))
    logs.rfc3339_nano()


OOM_SCORE_ADJ = "/proc/self/oom_score_adj"
MONITOR_OOM_SCORE_ADJ = -999  # containerd's and its shims': the OOM killer takes it last


def _write_oom_score_adj(value: int) -> None:
    with contextlib.suppress(OSError):  # not root, or a kernel without it: as it was
        with open(OOM_SCORE_ADJ, "w") as f:
            f.write(str(value))


def protect_from_oom() -> int:
    """Put the monitor last in the OOM killer's choice (its death ends every container of
    the root); returns the score it had (composerd's), which its containers keep."""
    try:
        with open(OOM_SCORE_ADJ) as f:
            inherited = int(f.read())
    except (OSError, ValueError):
        return 0
    _write_oom_score_adj(MONITOR_OOM_SCORE_ADJ)
    return inherited


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m runtime.process.monitor <socket-path>\n")
        raise SystemExit(2)
    r, w = os.pipe()
    if os.fork():  # the parent tells the engine once the monitor listens, and leaves
        os.close(w)
        line = os.read(r, 64)
        sys.stdout.write(line.decode() if line else "failed\n")
        sys.stdout.flush()
        os._exit(0 if line else 1)
    os.close(r)
    os.setsid()  # its own session: a terminal's ^C or the engine's end do not reach it
    sc = LibcSyscalls()
    sc.prctl(PR_SET_CHILD_SUBREAPER, 1)  # every init is ours once its launch child exits
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # a gone client or stdin reader is EPIPE
    inherited_oom = protect_from_oom()
    _warm_up()
    monitor = Monitor(args[0], sc, inherited_oom)
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    gc.collect()
    gc.freeze()  # keep the launch children's copy-on-write pages shared
    os.write(w, f"ready {os.getpid()}\n".encode())
    os.close(w)
    monitor.serve()


if __name__ == "__main__":
    main()
