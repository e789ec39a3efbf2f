"""The fork server: a single-threaded, pre-imported Python that forks shims and exec helpers.

Started once by the engine (`python -m runtime.process.forkserver <socket>`), it listens on a
SOCK_SEQPACKET unix socket (mode 0600). Each request is one connection; the server forks a
child that inherits the connection and goes straight back to accept(), so it never blocks on
a container. No interpreter start-up on the hot path, and never a fork of the asyncio daemon.

Sync protocol of a launch (one JSON message per packet on the request's connection):

 step | who -> whom              | message                                  | meaning
 -----+--------------------------+------------------------------------------+--------------------------------
  1   | launcher -> server       | {"op": "launch", "config": LaunchConfig} | fork a shim for it
  2   | server                   | (fork; close its copy of the connection) | fork failed: {"error": msg}
  3   | shim                     | setsid, unshare(NEWPID), fork init       | shim closes its copy
      |                          | userns: stage-1 child unshares USER, shim| see shim.start_in_userns
      |                          | writes its maps + idmapped lowerdirs,    |
      |                          | child unshares PID and forks the init    |
  4   | init -> launcher         | {"ready": true, "pid": P, "shim_pid": S} | uts/ipc/net/mnt namespaces exist;
      |                          |                                          | init is paused in recv()
  5   | launcher                 | await prepare(P)                         | engine: cgroup, network (netns of P)
  6   | launcher -> init         | {"go": true}                             | or close: init exits, nothing left
  7   | init                     | cgroup ns, mounts, pivot_root, caps, ...,| the connection is CLOEXEC
      |                          | execve                                   |
  8   | init -> launcher         | EOF                                      | execve succeeded: started
      |                          | {"error": msg, "exit_code": n}           | setup/exec failed (125/126/127)
  9   | shim                     | waitpid(init) -> <state_dir>/exit.json   | engine waits on the shim's pidfd

Exec: {"op": "exec", "target_pid": P, "config": ExecConfig} with stdin/stdout/stderr fds as
SCM_RIGHTS; see runtime.process.nsexec for its replies. {"op": "ping"} answers {"pong": pid}.
"""
from __future__ import annotations

import gc
import json
import os
import signal
import socket
import sys
import traceback

from runtime import serde
from runtime.process import logs as _logs  # noqa: F401 - imported before fork, used by shims
from runtime.process.config import ExecConfig, LaunchConfig
from runtime.process.nsexec import run_exec
from runtime.process.shim import run_shim
from runtime.process.syscalls import PR_SET_PDEATHSIG, LibcSyscalls, Syscalls
from runtime.unixsock import bind_private

MAX_MSG = 1 << 20


def _warm_up() -> None:
    """Fill serde's type-hint cache and the json encoder before forking children."""
    cfg = LaunchConfig(id="warm", argv=("true",), state_dir="/", mergeddir="/", lowerdirs=("/",))
    serde.from_dict(LaunchConfig, json.loads(json.dumps(serde.to_dict(cfg))))
    serde.from_dict(ExecConfig, serde.to_dict(ExecConfig(argv=("true",))))
    _logs.rfc3339_nano()


def _parse(req: dict[str, object]) -> LaunchConfig | ExecConfig:
    """The request's config, parsed here before the fork: the objects it allocates then sit
    in pages the children share instead of dirtying each child's copy (~0.3 MiB a shim)."""
    op = req.get("op")
    if op == "launch":
        return serde.from_dict(LaunchConfig, req["config"])
    if op == "exec":
        return serde.from_dict(ExecConfig, req["config"])
    raise ValueError(f"unknown fork server request {op!r}")


def _child(req: dict[str, object], cfg: LaunchConfig | ExecConfig, conn: socket.socket,
           fds: list[int], sc: Syscalls) -> int:
    if isinstance(cfg, LaunchConfig):
        return run_shim(cfg, conn, sc)
    return run_exec(int(req["target_pid"]), cfg, conn, fds, sc)  # type: ignore[call-overload]


def handle(srv: socket.socket, conn: socket.socket, sc: Syscalls) -> None:
    msg, fds, _flags, _addr = socket.recv_fds(conn, MAX_MSG, 3)
    if not msg:
        return
    req = json.loads(msg)
    if req.get("op") == "ping":
        conn.send(json.dumps({"pong": os.getpid()}).encode())
        return
    try:
        cfg = _parse(req)
        pid = os.fork()
    except Exception as e:  # noqa: BLE001 - a bad request or a failed fork: reply, serve on
        for fd in fds:
            os.close(fd)
        what = "fork failed" if isinstance(e, OSError) else "bad request"
        conn.send(json.dumps({"error": f"{what}: {e}", "exit_code": 125}).encode())
        return
    if pid == 0:
        code = 125
        try:
            srv.close()
            conn.settimeout(None)  # the init may wait for "go" as long as prepare() takes
            code = _child(req, cfg, conn, fds, sc)
        except BaseException as e:  # noqa: BLE001 - report, then leave without unwinding
            try:
                conn.send(json.dumps({"error": str(e), "exit_code": 125}).encode())
            except OSError:
                traceback.print_exc()
        os._exit(code)
    for fd in fds:
        os.close(fd)


def serve(path: str) -> None:
    sc = LibcSyscalls()
    sc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # die with the daemon; shims live on
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _warm_up()
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    bind_private(srv, path)
    srv.listen(128)
    gc.collect()
    gc.freeze()  # keep the children's copy-on-write pages shared
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    while True:
        try:
            conn, _ = srv.accept()
        except InterruptedError:
            continue
        try:
            conn.settimeout(5.0)  # a client that connects and sends nothing can't wedge us
            handle(srv, conn, sc)
        except Exception:  # noqa: BLE001 - one bad request must not stop the server
            traceback.print_exc()
        finally:
            conn.close()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m runtime.process.forkserver <socket-path>\n")
        raise SystemExit(2)
    serve(args[0])


if __name__ == "__main__":
    main()
