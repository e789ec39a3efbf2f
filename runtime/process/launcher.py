"""The engine's side of the process layer: asyncio, never forks (the fork server does).

    launcher = Launcher("/run/composer/forkserver.sock")
    await launcher.start_server()
    launched = await launcher.launch(cfg, prepare)   # prepare(pid): cgroup + network
    status = await launcher.wait(launched)            # ExitStatus(code, signal, finished_at)
    # after a daemon restart: launched = launcher.adopt(state_dir)  (None if it has exited)

See runtime.process.forkserver for the sync protocol.
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
from runtime.process.shim import EXIT_FILE

STATE_FILE = "process.json"
Prepare = Callable[[int], Awaitable[None]]
_PKG_ROOT = str(Path(__file__).resolve().parents[2])


@dataclass(frozen=True)
class Launched:
    id: str
    pid: int  # host pid of the container's init (pid 1 inside)
    shim_pid: int
    start_time: int  # /proc/<pid>/stat field 22 (clock ticks since boot): pid-reuse guard
    shim_start_time: int
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
        self._proc: asyncio.subprocess.Process | None = None

    # -- the fork server ------------------------------------------------------------------
    async def start_server(self) -> None:
        os.makedirs(os.path.dirname(self.socket_path) or ".", exist_ok=True)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PKG_ROOT, env.get("PYTHONPATH")) if p)
        self._proc = await asyncio.create_subprocess_exec(
            self.python, "-m", "runtime.process.forkserver", self.socket_path,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, env=env)
        assert self._proc.stdout is not None
        try:
            line = await asyncio.wait_for(self._proc.stdout.readline(), 30)
        except TimeoutError:
            line = b""
        if line.strip() != b"ready":
            await self.close()
            raise LaunchError("the fork server did not start: see the daemon's stderr")

    @property
    def server_pid(self) -> int | None:
        """The fork server's pid while it runs (every shim is its child)."""
        return self._proc.pid if self._proc is not None and self._proc.returncode is None else None

    async def close(self) -> None:
        """Stop the fork server. Running containers (shims) are not affected."""
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
            await self._proc.wait()
        self._proc = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)

    async def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, self.socket_path)
        except OSError as e:
            sock.close()
            raise LaunchError(f"cannot reach the fork server at {self.socket_path}: {e.strerror}"
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
        sock = await self._connect()
        try:
            sock.send(json.dumps({"op": "launch", "config": serde.to_dict(cfg)}).encode())
            msg = await _recv(sock, timeout)
            if not msg or not msg.get("ready"):
                raise LaunchError(_error_text(msg, "the shim exited before the container was"
                                              " ready"), subject=cfg.id,
                                  exit_code=int((msg or {}).get("exit_code", 125)))
            pid, shim_pid = int(msg["pid"]), int(msg["shim_pid"])
            launched = Launched(cfg.id, pid, shim_pid, proc_start_time(pid) or 0,
                                proc_start_time(shim_pid) or 0, cfg.state_dir, cfg.log_file)
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
        """After a daemon restart: the container of `state_dir` if its shim still runs (pid and
        start time match), None if it has exited (read `exit_status`). NotFound if never run."""
        try:
            with open(os.path.join(state_dir, STATE_FILE)) as f:
                launched = serde.from_dict(Launched, json.load(f))
        except (OSError, ValueError) as e:
            raise NotFound(f"no launched container in {state_dir}: {e}") from None
        if proc_start_time(launched.shim_pid) != launched.shim_start_time:
            return None
        return launched

    @staticmethod
    def exit_status(state_dir: str) -> ExitStatus | None:
        return read_exit(state_dir)

    async def wait(self, target: Launched | str) -> ExitStatus:
        """Until the container has exited and its shim recorded the status."""
        launched = target if isinstance(target, Launched) else self.adopt(target)
        state_dir = target.state_dir if isinstance(target, Launched) else target
        if launched is not None:
            await _wait_pid(launched.shim_pid, launched.shim_start_time)
        status = read_exit(state_dir)
        if status is None:
            return ExitStatus(255, None, time.time())  # the shim was killed: status unknown
        return status

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
