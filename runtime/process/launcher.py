"""The engine's side of the process layer: asyncio, never forks (the monitor does).

    launcher = Launcher("/run/composer/monitor.sock")
    await launcher.start_server()   # finds the running monitor, or starts one
    launched = await launcher.launch(cfg, prepare)   # prepare(pid): cgroup + network
    status = await launcher.wait(launched)            # ExitStatus(code, signal, finished_at)
    # after a daemon restart: launched = launcher.adopt(state_dir)  (None if it has exited)
    await launcher.close()          # the monitor stays while containers run

The launcher holds a session with the monitor (one connection): the monitor tells it of
every container that ends there, after writing its exit.json. If the session ends without
a `close` (the monitor was killed), the containers of that monitor have lost their stdio
and reaper: `wait` kills each one's init and reports code 255, and the next launch starts a
new monitor. See runtime.process.monitor for the protocols.
"""
from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime import serde
from runtime.errors import LaunchError, NotFound
from runtime.process.config import ExecConfig, LaunchConfig, check
from runtime.process.monitor import CGROUP_FEATURE, EXIT_FILE, LOOPBACK_FEATURE

STATE_FILE = "process.json"
Prepare = Callable[[int], Awaitable[None]]
_PKG_ROOT = str(Path(__file__).resolve().parents[2])


@dataclass(frozen=True)
class Launched:
    id: str
    pid: int  # host pid of the container's init (pid 1 inside)
    monitor_pid: int  # the monitor holding its stdio and reaping it
    start_time: int  # /proc/<pid>/stat field 22 (clock ticks since boot): pid-reuse guard
    monitor_start_time: int
    state_dir: str
    log_path: str


@dataclass(frozen=True)
class ExitStatus:
    code: int  # exit code, or 128 + signal
    signal: int | None
    finished_at: float  # epoch seconds


def proc_start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat; None if the process is gone or a zombie (it has exited)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def read_exit(state_dir: str) -> ExitStatus | None:
    try:
        with open(os.path.join(state_dir, EXIT_FILE)) as f:
            raw = json.load(f)
    except (OSError, ValueError):
        return None
    return ExitStatus(int(raw["exit_code"]), raw.get("signal"), float(raw["finished_at"]))


class ExecProcess:
    """A command running in a container. Output fds are non-blocking; `tty` merges into stdout.
    `stdin_fd` (non-blocking) is the write end of its stdin pipe when asked for, else -1 (with
    a tty the pty master, `stdout_fd`, is its input too)."""

    def __init__(self, pid: int, sock: socket.socket, stdout_fd: int, stderr_fd: int,
                 stdin_fd: int = -1) -> None:
        self.pid = pid
        self._sock = sock
        self.stdout_fd = stdout_fd
        self.stderr_fd = stderr_fd
        self.stdin_fd = stdin_fd
        self._code: int | None = None

    async def read_output(self) -> tuple[bytes, bytes]:
        try:
            return tuple(await asyncio.gather(  # type: ignore[return-value]
                _drain(self.stdout_fd), _drain(self.stderr_fd)))
        finally:
            self._close_fds()

    def _close_fds(self) -> None:
        for fd in (self.stdout_fd, self.stderr_fd, self.stdin_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.stdout_fd = self.stderr_fd = self.stdin_fd = -1

    @property
    def exit_code(self) -> int | None:
        """The code once `wait()` returned it, else None."""
        return self._code

    async def wait(self) -> int:
        if self._code is None:
            msg = await _recv(self._sock, None)
            self._sock.close()
            self._code = int(msg["exit_code"]) if msg and "exit_code" in msg else 255
        return self._code

    def kill(self, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)

    def close(self) -> None:
        """Drop the connection and output fds (the command keeps running unless killed)."""
        self._sock.close()
        self._close_fds()


class Launcher:
    def __init__(self, socket_path: str, python: str = sys.executable) -> None:
        self.socket_path = socket_path
        self.python = python
        self.monitor_pid: int | None = None  # the monitor of our session
        self.features: frozenset[str] = frozenset()  # what its inits do (monitor.FEATURES)
        self._monitor_start = 0
        self._session: socket.socket | None = None
        self._reader: asyncio.Task[None] | None = None
        self._exits: dict[str, list[asyncio.Future[bool]]] = {}  # True: ended, False: lost
        self._closing: asyncio.Future[dict[str, Any]] | None = None
        self._starting: asyncio.Lock | None = None
        # called with the monitor's pid on each new session (the engine puts the monitor in
        # its delegated cgroup scope: docs/cgroups.md), also for a monitor started again
        self.on_session: Callable[[int], Awaitable[None]] | None = None

    # -- the monitor ----------------------------------------------------------------------
    async def start_server(self) -> None:
        """Open a session with the monitor of `socket_path`, starting one if none runs."""
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._session is not None:
                return
            if await self._open_session():
                return
            await self._spawn()
            if not await self._open_session():
                raise LaunchError("the monitor did not start: see the daemon's stderr")

    async def _spawn(self) -> None:
        os.makedirs(os.path.dirname(self.socket_path) or ".", exist_ok=True)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PKG_ROOT, env.get("PYTHONPATH")) if p)
        # cwd "/": `-m` looks in the cwd first (the caller's may hold another `runtime`), and
        # the long-lived monitor must not keep the caller's directory busy
        proc = await asyncio.create_subprocess_exec(
            self.python, "-m", "runtime.process.monitor", self.socket_path, cwd="/",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, env=env)
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
        except TimeoutError:
            line = b""
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        await proc.wait()  # the monitor forked away from it: it never is our child
        if not line.startswith(b"ready"):
            raise LaunchError("the monitor did not start: see the daemon's stderr")

    async def _open_session(self) -> bool:
        try:
            sock = await self._connect()
        except LaunchError:
            return False
        try:
            sock.send(json.dumps({"op": "session"}).encode())
            reply = await _recv(sock, 10)
        except (OSError, LaunchError):
            reply = None
        if not reply or "pid" not in reply:
            sock.close()
            return False
        self.monitor_pid = int(reply["pid"])
        self.features = frozenset(str(f) for f in reply.get("features", ()))
        self._monitor_start = proc_start_time(self.monitor_pid) or 0
        self._session = sock
        self._reader = asyncio.get_running_loop().create_task(self._read_session(sock))
        if self.on_session is not None:
            await self.on_session(self.monitor_pid)
        return True

    async def _read_session(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                data = await loop.sock_recv(sock, 1 << 16)
            except OSError:
                data = b""
            if not data:
                break
            msg = json.loads(data)
            if "exit" in msg:
                for fut in self._exits.pop(str(msg["exit"]), []):
                    if not fut.done():
                        fut.set_result(True)
            elif "exiting" in msg and self._closing is not None and not self._closing.done():
                self._closing.set_result(msg)
        # the monitor is gone (killed): its containers lost their stdio and their reaper
        if self._session is sock:
            self._session = None
            self.monitor_pid = None
            sock.close()
        for futs in self._exits.values():
            for fut in futs:
                if not fut.done():
                    fut.set_result(False)
        self._exits.clear()

    @property
    def inits_bring_lo_up(self) -> bool:
        """Whether the monitor's inits bring lo up in a network namespace they create."""
        return LOOPBACK_FEATURE in self.features

    @property
    def clones_into_cgroup(self) -> bool:
        """Whether the monitor takes LaunchConfig.cgroup_dir (an older one refuses the field)."""
        return CGROUP_FEATURE in self.features

    @property
    def server_pid(self) -> int | None:
        """The monitor's pid while our session with it lasts."""
        return self.monitor_pid if self._session is not None else None

    async def close(self) -> None:
        """End our session. The monitor stays while containers run, else it leaves: then
        this returns once it has."""
        sock, reader = self._session, self._reader
        if sock is None:
            return
        exiting = False
        self._closing = asyncio.get_running_loop().create_future()
        try:
            sock.send(json.dumps({"op": "close"}).encode())
            reply = await asyncio.wait_for(asyncio.shield(self._closing), 5)
            exiting = bool(reply.get("exiting"))
        except (OSError, TimeoutError):
            pass
        finally:
            self._closing = None
        pid, start = self.monitor_pid, self._monitor_start
        self._session = None
        self.monitor_pid = None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        sock.close()
        for futs in self._exits.values():
            for fut in futs:
                fut.cancel()
        self._exits.clear()
        if exiting and pid is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_wait_pid(pid, start), 5)

    async def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, self.socket_path)
        except OSError as e:
            sock.close()
            raise LaunchError(f"cannot reach the monitor at {self.socket_path}: {e.strerror}"
                              "; is the daemon running?") from None
        return sock

    # -- containers -----------------------------------------------------------------------
    async def launch(self, cfg: LaunchConfig, prepare: Prepare | None = None,
                     timeout: float = 60.0) -> Launched:
        """Start the container; `prepare(pid)` runs while its init waits in its namespaces.
        If prepare raises, the container is killed (nothing remains) and the error re-raised."""
        check(cfg)
        os.makedirs(cfg.state_dir, exist_ok=True)
        for stale in (EXIT_FILE, STATE_FILE):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(cfg.state_dir, stale))
        if self._session is None:  # the monitor was killed: a new one
            await self.start_server()
        sock = await self._connect()
        try:
            config = serde.to_dict(cfg)
            if not cfg.cgroup_dir:  # a monitor from before the field would refuse it
                del config["cgroup_dir"]
            sock.send(json.dumps({"op": "launch", "config": config}).encode())
            msg = await _recv(sock, timeout)
            if not msg or not msg.get("ready"):
                raise LaunchError(_error_text(msg, "the container's launch failed before it"
                                              " was ready"), subject=cfg.id,
                                  exit_code=int((msg or {}).get("exit_code", 125)))
            pid, monitor_pid = int(msg["pid"]), int(msg["monitor_pid"])
            launched = Launched(cfg.id, pid, monitor_pid, proc_start_time(pid) or 0,
                                proc_start_time(monitor_pid) or 0, cfg.state_dir, cfg.log_file)
        except BaseException:
            sock.close()
            raise
        try:
            if prepare is not None:
                await prepare(pid)
            sock.send(json.dumps({"go": True}).encode())
            msg = await _recv(sock, timeout)
        except BaseException:
            sock.close()
            self.kill(launched, signal.SIGKILL)
            with contextlib.suppress(Exception):
                await asyncio.shield(self.wait(launched))
            raise
        sock.close()
        if msg is not None:  # the init reported a failure instead of exec'ing (EOF)
            code = int(msg.get("exit_code", 125))
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.wait(launched), timeout)
            raise LaunchError(_error_text(msg, "container setup failed"), subject=cfg.id,
                              exit_code=code)
        _write_json(os.path.join(cfg.state_dir, STATE_FILE), serde.to_dict(launched))
        return launched

    def adopt(self, state_dir: str) -> Launched | None:
        """After a daemon restart: the container of `state_dir` if its init and the monitor
        holding it still run (pids and start times match), None if it has exited (read
        `exit_status`). An init whose monitor is gone (killed) has lost its stdio and its
        reaper: it is killed here, and counts as exited. NotFound if never run."""
        try:
            with open(os.path.join(state_dir, STATE_FILE)) as f:
                launched = serde.from_dict(Launched, json.load(f))
        except (OSError, ValueError, TypeError, KeyError) as e:
            raise NotFound(f"no launched container in {state_dir}: {e}") from None
        if not self.alive(launched):
            return None
        if proc_start_time(launched.monitor_pid) != launched.monitor_start_time:
            self.kill(launched, signal.SIGKILL)
            return None
        return launched

    @staticmethod
    def exit_status(state_dir: str) -> ExitStatus | None:
        return read_exit(state_dir)

    async def wait(self, target: Launched | str) -> ExitStatus:
        """Until the container has exited and the monitor recorded the status; code 255 when
        its monitor was killed (the container is killed then: see the module's docstring)."""
        launched = target if isinstance(target, Launched) else self.adopt(target)
        state_dir = target.state_dir if isinstance(target, Launched) else target
        if launched is not None and not await self._wait_monitor(launched):
            self.kill(launched, signal.SIGKILL)  # its monitor is gone: end it, wait for that
            await _wait_pid(launched.pid, launched.start_time)
        status = read_exit(state_dir)
        if status is None:
            return ExitStatus(255, None, time.time())  # the monitor was killed: status unknown
        return status

    async def _wait_monitor(self, launched: Launched) -> bool:
        """True once the monitor reported the container's end; False if the monitor holding
        it is gone."""
        if self._session is None:
            with contextlib.suppress(LaunchError):
                await self.start_server()
        if self._session is None or launched.monitor_pid != self.monitor_pid or \
                launched.monitor_start_time != self._monitor_start:
            return read_exit(launched.state_dir) is not None  # not ours: gone, or recorded
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._exits.setdefault(launched.state_dir, []).append(fut)
        if read_exit(launched.state_dir) is not None:  # ended before we asked
            return True
        try:
            return await asyncio.shield(fut)
        finally:
            futs = self._exits.get(launched.state_dir, [])
            if fut in futs:
                futs.remove(fut)
                if not futs:
                    del self._exits[launched.state_dir]

    @staticmethod
    def alive(launched: Launched) -> bool:
        return proc_start_time(launched.pid) == launched.start_time

    @staticmethod
    def kill(target: Launched | int, sig: int = signal.SIGKILL) -> bool:
        """Signal the container's init (pid-reuse safe for a Launched). False if it is gone."""
        if isinstance(target, int):
            try:
                os.kill(target, sig)
                return True
            except ProcessLookupError:
                return False
        try:
            fd = os.pidfd_open(target.pid)
        except ProcessLookupError:
            return False
        try:
            if proc_start_time(target.pid) != target.start_time:
                return False
            signal.pidfd_send_signal(fd, sig)
            return True
        except ProcessLookupError:
            return False
        finally:
            os.close(fd)

    # -- exec -----------------------------------------------------------------------------
    async def exec(self, target: Launched | int, cfg: ExecConfig,
                   stdin: bool = False) -> ExecProcess:
        """Start `cfg.argv` in the running container; LaunchError (126/127) if exec fails.
        `stdin`: give it a pipe for its input (else /dev/null; a tty reads the pty)."""
        pid = target.pid if isinstance(target, Launched) else target
        null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
        mine: list[int] = []
        if cfg.detach:
            theirs = [null, null, null]
        elif cfg.tty:
            master, slave = os.openpty()
            theirs, mine = [slave, slave, slave], [master, -1]
        else:
            out_r, out_w = os.pipe2(os.O_CLOEXEC)
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
            theirs, mine = [null, out_w, err_w], [out_r, err_r]
            if stdin:
                in_r, in_w = os.pipe2(os.O_CLOEXEC)
                theirs[0] = in_r
                mine.append(in_w)
            for fd in mine:
                _grow_pipe(fd)
        sock = await self._connect()
        try:
            req = {"op": "exec", "target_pid": pid, "config": serde.to_dict(cfg)}
            socket.send_fds(sock, [json.dumps(req).encode()], theirs)
        finally:
            for fd in set(theirs):
                os.close(fd)
        try:
            msg = await _recv(sock, 30)
        except BaseException:
            sock.close()
            _close_all(mine)
            raise
        if not msg or not msg.get("started"):
            sock.close()
            _close_all(mine)
            raise LaunchError(_error_text(msg, "exec failed"),
                              exit_code=int((msg or {}).get("exit_code", 126)))
        for fd in mine:
            if fd >= 0:
                os.set_blocking(fd, False)
        out_fd, err_fd, in_fd = (mine + [-1, -1, -1])[:3]
        return ExecProcess(int(msg["pid"]), sock, out_fd, err_fd, in_fd)

    async def exec_run(self, target: Launched | int, cfg: ExecConfig,
                       timeout: float | None = None) -> tuple[int, bytes, bytes]:
        """Run to completion: (exit code, stdout, stderr). Exec failures are 126/127 + message."""
        try:
            proc = await self.exec(target, cfg)
        except LaunchError as e:
            return e.exit_code, b"", (e.message + "\n").encode()
        try:
            out, err = await asyncio.wait_for(proc.read_output(), timeout)
            code = await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            proc.kill()
            code = await proc.wait()
            return code, b"", b"exec timed out\n"
        except BaseException:  # cancelled: the command must not outlive the call
            proc.kill()
            proc.close()
            raise
        return code, out, err


PIPE_SIZE = 1024 * 1024  # bytes in flight per exec pipe: fewer wake-ups on a bulk copy


def _grow_pipe(fd: int) -> None:
    """A larger pipe buffer (F_SETPIPE_SZ): fewer wake-ups per MiB of a bulk copy such as
    `exec -T db mysql < dump.sql`. Capped by /proc/sys/fs/pipe-max-size; a refusal keeps
    the default 64 KiB."""
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)


F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        if fd >= 0:
            os.close(fd)


def _error_text(msg: dict[str, Any] | None, default: str) -> str:
    if msg and "error" in msg:
        return str(msg["error"])
    return default


def _write_json(path: str, data: object) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


async def _recv(sock: socket.socket, timeout: float | None) -> dict[str, Any] | None:
    loop = asyncio.get_running_loop()
    try:
        data = await asyncio.wait_for(loop.sock_recv(sock, 1 << 16), timeout)
    except ConnectionResetError:
        return None
    except TimeoutError:
        raise LaunchError("no answer from the container's init in time") from None
    return json.loads(data) if data else None


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def _wait_pid(pid: int, start_time: int) -> None:
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        if proc_start_time(pid) != start_time:
            return  # a different process now has that pid: ours is gone
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        loop.add_reader(fd, _wake, fut)
        try:
            await fut
        finally:
            loop.remove_reader(fd)
    finally:
        os.close(fd)


async def _drain(fd: int) -> bytes:
    """Read a non-blocking fd to EOF (EIO on a pty counts as EOF). The caller closes it."""
    if fd < 0:
        return b""
    loop = asyncio.get_running_loop()
    chunks: list[bytes] = []
    while True:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            fut: asyncio.Future[None] = loop.create_future()
            loop.add_reader(fd, _wake, fut)
            try:
                await fut
            finally:
                loop.remove_reader(fd)
            continue
        except OSError as e:
            if e.errno == errno.EIO:  # pty: the last slave closed
                break
            raise
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)
