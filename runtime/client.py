"""The Engine API over composerd's unix socket: `Client` is a drop-in EngineAPI.

    async with await connect_or_start(Paths.from_env()) as engine:   # starts composerd if needed
        async with engine.lock("myproj"):                          # one composer per project
            info = await engine.create_container(spec)
            async with engine.logs(info.id, follow=True) as lines:
                async for line in lines: ...

Errors come back as the EngineError subclass the daemon raised (by `kind`, else by HTTP status)
with the same message. Project locks are flocks in the run dir: the kernel releases them when
the holder exits, however it exits (kill -9 included), and they survive a daemon restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import sys
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import urlencode

import runtime
from runtime import access, routes, rpc, serde
from runtime.api import (
    ArchiveResult,
    BuildProgress,
    BuildRequest,
    CommitRequest,
    ContainerInfo,
    Event,
    ExecResult,
    ExecTarget,
    ImageInfo,
    LogLine,
    NetworkInfo,
    PathStat,
    PullEvent,
    Stats,
    VolumeInfo,
)
from runtime.attach import AttachStream, split_frames
from runtime.calls import (  # noqa: F401  (DaemonUnavailable, PermissionDenied: re-exported)
    DaemonUnavailable,
    PermissionDenied,
    PlainCalls,
    attach_refused,
    connect_error,
    exec_attach_route,
    logs_route,
    needs_root,
    status_of_kind,
)
from runtime.errors import Conflict, EngineError, InvalidArgument
from runtime.paths import Paths, safe_name
from runtime.streamhttp import ConnectFailed, Pool
from runtime.types import ContainerSpec, NetworkSpec, VolumeSpec

if TYPE_CHECKING:  # imported on the first stream, upload or websocket (~100-130 ms)
    import aiohttp

T = TypeVar("T")

BASE = "http://composerd"
NEEDS_ROOT_TO_START = (
    "composerd is not running and only root can start it: "
    "`sudo systemctl start composerd` or `sudo composerd --background`"
)


class Stream(AsyncIterator[T], Generic[T]):
    """A JSON-lines response as an async iterator; close it (or use `async with`) when done."""

    def __init__(
        self,
        client: Client,
        path: str,
        params: list[tuple[str, str]],
        cls: type[T],
        *,
        method: str = "GET",
        body: Any = None,
    ) -> None:
        self._client = client
        self._path = path
        self._params = params
        self._cls = cls
        self._method = method
        self._body = rpc.encode(body) if body is not None else None
        self._resp: aiohttp.ClientResponse | None = None
        self._buf = b""
        self._lines: list[bytes] = []
        self._done = False

    async def open(self) -> Stream[T]:
        """Send the request and wait for the headers (for events: the subscription is live)."""
        if self._resp is None and not self._done:
            self._resp = await self._client._send(
                self._method, self._path, params=self._params, body=self._body
            )
            if self._resp.status >= 400:
                resp, self._resp = self._resp, None
                self._done = True
                raise await _error_of(resp)
        return self

    def __aiter__(self) -> Stream[T]:
        return self

    async def __anext__(self) -> T:
        import aiohttp
        await self.open()
        while not self._lines:
            if self._done or self._resp is None:
                raise StopAsyncIteration
            try:
                chunk = await self._resp.content.readany()
            except aiohttp.ClientError as e:
                await self.aclose()
                # (aiohttp's words -- a transfer-encoding error -- only with --debug)
                raise DaemonUnavailable(
                    "lost the connection to composerd (it stopped or restarted)") from e
            if not chunk:
                await self.aclose()
                if self._buf.strip():
                    self._lines.append(self._buf)
                self._buf = b""
                continue
            self._buf += chunk
            *lines, self._buf = self._buf.split(b"\n")
            self._lines.extend(line for line in lines if line.strip())
        data = json.loads(self._lines.pop(0))
        if isinstance(data, dict) and set(data) == {"error"}:
            await self.aclose()
            self._lines.clear()
            err = data["error"]
            status = status_of_kind(err.get("kind")) if isinstance(err, dict) else 500
            raise rpc.error_from_body(status, err)
        return serde.from_dict(self._cls, data)

    async def aclose(self) -> None:
        self._done = True
        if self._resp is not None:
            self._resp.close()
            self._resp = None

    async def __aenter__(self) -> Stream[T]:
        return await self.open()

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class ByteStream(AsyncIterator[bytes]):
    """A binary response (a tar) as chunks; opened on first use (or `open()`)."""

    def __init__(self, client: Client, method: str, path: str,
                 params: list[tuple[str, str]]) -> None:
        self._client = client
        self._method = method
        self._path = path
        self._params = params
        self._resp: aiohttp.ClientResponse | None = None
        self._done = False

    async def open(self) -> aiohttp.ClientResponse:
        if self._resp is None:
            if self._done:
                raise DaemonUnavailable("the stream is closed")
            resp = await self._client._send(self._method, self._path, params=self._params)
            if resp.status >= 400:
                self._done = True
                raise await _error_of(resp)
            self._resp = resp
        return self._resp

    def __aiter__(self) -> ByteStream:
        return self

    async def __anext__(self) -> bytes:
        import aiohttp
        if self._done:
            raise StopAsyncIteration
        resp = await self.open()
        try:
            chunk = await resp.content.readany()
        except aiohttp.ClientError as e:
            await self.aclose()
            raise DaemonUnavailable(
                f"the transfer from composerd broke off ({e or type(e).__name__}): see "
                "composerd's log") from None
        if not chunk:
            await self.aclose()
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        self._done = True
        if self._resp is not None:
            self._resp.close()
            self._resp = None


async def _error_of(resp: aiohttp.ClientResponse) -> EngineError:
    import aiohttp
    try:
        raw = await resp.read()
        body = json.loads(raw) if raw else {}
    except (ValueError, aiohttp.ClientError):
        body = {}
    finally:
        resp.release()
    return rpc.error_from_body(resp.status, body)


class WsAttach(AttachStream):
    """An attach stream over composerd's websocket (whole frames per binary message)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.buf = bytearray()
        self.frames: list[tuple[int, bytes]] = []

    async def _send(self, data: bytes) -> None:
        import aiohttp
        if not self.ws.closed:
            with contextlib.suppress(ConnectionError, aiohttp.ClientError):
                await self.ws.send_bytes(data)

    async def _recv(self) -> tuple[int, bytes] | None:
        import aiohttp
        while not self.frames:
            msg = await self.ws.receive()
            if msg.type != aiohttp.WSMsgType.BINARY:
                return None
            self.buf += msg.data
            self.frames = split_frames(self.buf)
        return self.frames.pop(0)

    async def close(self) -> None:
        await self.ws.close()


class Client(PlainCalls):
    """EngineAPI over HTTP on composerd's unix socket. Use as `async with Client() as c:`."""

    def __init__(self, socket_path: str | Path | None = None) -> None:
        self.socket_path = Path(socket_path) if socket_path else Paths.from_env().socket
        self._http: aiohttp.ClientSession | None = None  # streams, uploads, websockets
        self._pool: Pool | None = None  # the plain calls (runtime.streamhttp: no aiohttp)

    # ------------------------------------------------------------ plumbing

    def _session(self) -> aiohttp.ClientSession:
        import aiohttp
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=str(self.socket_path)),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
                raise_for_status=False,
            )
        return self._http

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: list[tuple[str, str]] | None = None,
        body: bytes | None = None,
    ) -> aiohttp.ClientResponse:
        import aiohttp
        from yarl import URL

        url = URL(BASE + path, encoded=True)
        headers = {"Content-Type": "application/json"} if body is not None else None
        try:
            return await self._session().request(
                method, url, params=params, data=body, headers=headers
            )
        except aiohttp.ClientConnectorError as e:
            raise connect_error(e, self.socket_path) from None
        except (aiohttp.ClientError, ConnectionError) as e:
            raise DaemonUnavailable(
                f"lost the connection to composerd: {e or type(e).__name__}"
            ) from None

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: list[tuple[str, str]] | None = None,
        body: Any = None,
    ) -> Any:
        raw_body = rpc.encode(body) if body is not None else None
        if raw_body is not None and len(raw_body) > rpc.MAX_BODY:  # the daemon would say 413
            err = InvalidArgument(rpc.TOO_LARGE)
            err.status = 413
            raise err
        if self._pool is None:
            self._pool = Pool(self.socket_path)
        target = f"{path}?{urlencode(params)}" if params else path
        headers = {"Content-Type": "application/json"} if raw_body is not None else {}
        try:
            status, ctype, raw = await self._pool.request(method, target, raw_body, headers)
        except ConnectFailed as e:
            raise connect_error(e.os_error, self.socket_path) from None
        except OSError as e:  # HTTPError, a reset: the connection broke
            raise DaemonUnavailable(
                f"lost the connection to composerd: {e or type(e).__name__}") from None
        if status >= 400:
            try:
                err_body = json.loads(raw) if raw else {}
            except ValueError:
                err_body = {}
            raise rpc.error_from_body(status, err_body)
        if status == 204 or not raw:
            return None
        if ctype == "application/json":
            return json.loads(raw)
        return raw.decode()

    # ------------------------------------------------------------ daemon

    # ------------------------------------------------------------ containers

    async def create_container(self, spec: ContainerSpec) -> ContainerInfo:
        return serde.from_dict(
            ContainerInfo, await self._call(*routes.CREATE_CONTAINER.request(), body=spec)
        )

    async def start_container(self, ref: str) -> ContainerInfo:
        data = await self._call(*routes.START_CONTAINER.request(ref))
        return serde.from_dict(ContainerInfo, data)

    async def stop_container(self, ref: str, timeout: float | None = None) -> ContainerInfo:
        params = [("timeout", repr(float(timeout)))] if timeout is not None else None
        data = await self._call(*routes.STOP_CONTAINER.request(ref), params=params)
        return serde.from_dict(ContainerInfo, data)

    async def restart_container(self, ref: str, timeout: float | None = None) -> ContainerInfo:
        params = [("timeout", repr(float(timeout)))] if timeout is not None else None
        data = await self._call(*routes.RESTART_CONTAINER.request(ref), params=params)
        return serde.from_dict(ContainerInfo, data)

    async def pause_container(self, ref: str) -> None:
        await self._call(*routes.PAUSE_CONTAINER.request(ref))

    async def unpause_container(self, ref: str) -> None:
        await self._call(*routes.UNPAUSE_CONTAINER.request(ref))

    def logs(self, ref: str, follow: bool = False, tail: int | None = None,
             since: float | None = None, until: float | None = None) -> Stream[LogLine]:
        path, params = logs_route(ref, follow, tail, since, until)
        return Stream(self, path, params, LogLine, method=routes.LOGS.method)

    async def exec_run(
        self,
        ref: str,
        argv: list[str],
        user: str | None = None,
        env: dict[str, str] | None = None,
        workdir: str | None = None,
        privileged: bool = False,
    ) -> ExecResult:
        body = rpc.ExecRequest(argv=tuple(argv), user=user, env=dict(env or {}), workdir=workdir,
                               privileged=privileged)
        return serde.from_dict(
            ExecResult, await self._call(*routes.EXEC_RUN.request(ref), body=body)
        )

    async def exec_prepare(
        self,
        ref: str,
        argv: list[str],
        user: str | None = None,
        env: dict[str, str] | None = None,
        workdir: str | None = None,
        tty: bool = False,
        privileged: bool = False,
    ) -> ExecTarget:
        body = rpc.ExecRequest(argv=tuple(argv), user=user, env=dict(env or {}), workdir=workdir,
                               tty=tty, privileged=privileged)
        return serde.from_dict(
            ExecTarget, await self._call(*routes.EXEC_PREPARE.request(ref), body=body)
        )

    async def remove_paths(self, ref: str, paths: list[str]) -> ArchiveResult:
        body = rpc.RemovePathsRequest(tuple(paths))
        return serde.from_dict(
            ArchiveResult, await self._call(*routes.REMOVE_PATHS.request(ref), body=body))

    async def attach_container(self, ref: str, logs: bool = False,
                               follow: bool = False) -> WsAttach:
        params = [("logs", str(int(logs))), ("follow", str(int(follow)))]
        return await self._websocket(routes.ATTACH_CONTAINER.url(ref), params)

    async def exec_attach(
        self,
        ref: str,
        argv: list[str],
        user: str | None = None,
        env: dict[str, str] | None = None,
        workdir: str | None = None,
        tty: bool = False,
        stdin: bool = True,
        detach: bool = False,
        privileged: bool = False,
    ) -> WsAttach:
        return await self._websocket(*exec_attach_route(
            ref, argv, user=user, env=env, workdir=workdir, tty=tty, stdin=stdin,
            detach=detach, privileged=privileged))

    async def run_attached(self, ref: str, rm: bool = False) -> WsAttach:
        """A created one-off container attached, started, relayed, removed with `rm`
        before its EXIT (runtime.daemon.oneoff)."""
        return await self._websocket(routes.RUN_ATTACHED.url(ref), [("rm", str(int(rm)))])

    async def _websocket(self, path: str, params: list[tuple[str, str]]) -> WsAttach:
        import aiohttp
        from yarl import URL

        try:
            ws = await self._session().ws_connect(
                URL(BASE + path, encoded=True), params=params, max_msg_size=rpc.MAX_BODY)
        except aiohttp.WSServerHandshakeError as e:
            raw = e.headers.get(rpc.ERROR_HEADER) if e.headers else None
            raise attach_refused(e.status, e.message, raw) from None
        except aiohttp.ClientConnectorError as e:
            raise connect_error(e, self.socket_path) from None
        except (aiohttp.ClientError, ConnectionError) as e:
            raise DaemonUnavailable(f"lost the connection to composerd: {e}") from None
        return WsAttach(ws)

    async def top(self, ref: str) -> list[dict[str, str]]:
        return await self._call(*routes.TOP.request(ref))  # type: ignore[no-any-return]

    async def stats(self, ref: str) -> Stats:
        return serde.from_dict(Stats, await self._call(*routes.STATS.request(ref)))

    # ------------------------------------------------------------ a container's files

    async def stat_path(self, ref: str, path: str) -> PathStat:
        data = await self._call(*routes.STAT_PATH.request(ref), params=[("path", path)])
        return serde.from_dict(PathStat, data)

    async def get_archive(
        self, ref: str, path: str, follow_link: bool = False
    ) -> tuple[PathStat, AsyncIterator[bytes]]:
        stream = ByteStream(self, *routes.GET_ARCHIVE.request(ref),
                            [("path", path), ("follow", str(int(follow_link)))])
        resp = await stream.open()
        try:
            st = serde.from_dict(PathStat, json.loads(resp.headers[rpc.PATH_STAT_HEADER]))
        except (KeyError, ValueError, TypeError):
            await stream.aclose()
            raise DaemonUnavailable("composerd sent an archive without its path's stat") from None
        return st, stream

    async def put_archive(
        self,
        ref: str,
        path: str,
        data: AsyncIterable[bytes],
        copy_uid_gid: bool = False,
        no_overwrite_dir_non_dir: bool = True,
    ) -> None:
        import aiohttp
        from yarl import URL

        url = URL(BASE + routes.PUT_ARCHIVE.url(ref), encoded=True)
        params = [("path", path), ("copy_uid_gid", str(int(copy_uid_gid))),
                  ("no_overwrite_dir_non_dir", str(int(no_overwrite_dir_non_dir)))]

        async def body() -> AsyncIterator[bytes]:
            async for chunk in data:
                yield chunk

        try:
            resp = await self._session().request(
                routes.PUT_ARCHIVE.method, url, params=params, data=body(),
                headers={"Content-Type": rpc.TAR_CONTENT_TYPE})
        except aiohttp.ClientConnectorError as e:
            raise connect_error(e, self.socket_path) from None
        except (aiohttp.ClientError, ConnectionError) as e:
            raise DaemonUnavailable(
                f"lost the connection to composerd: {e or type(e).__name__}") from None
        if resp.status >= 400:
            raise await _error_of(resp)
        resp.release()

    def export_container(self, ref: str) -> ByteStream:
        return ByteStream(self, *routes.EXPORT_CONTAINER.request(ref), [])

    async def commit_container(self, ref: str, req: CommitRequest) -> ImageInfo:
        data = await self._call(*routes.COMMIT_CONTAINER.request(ref), body=req)
        return serde.from_dict(ImageInfo, data)

    # ------------------------------------------------------------ networks, volumes, images

    async def create_network(self, spec: NetworkSpec) -> NetworkInfo:
        return serde.from_dict(NetworkInfo, await self._call(*routes.CREATE_NETWORK.request(), body=spec))

    async def remove_network(self, name: str) -> None:
        await self._call(*routes.REMOVE_NETWORK.request(name))

    async def create_volume(self, spec: VolumeSpec) -> VolumeInfo:
        return serde.from_dict(VolumeInfo, await self._call(*routes.CREATE_VOLUME.request(), body=spec))

    async def remove_volume(self, name: str, force: bool = False) -> None:
        await self._call(*routes.REMOVE_VOLUME.request(name), params=[("force", str(int(force)))])

    async def inspect_image(self, ref: str) -> ImageInfo:
        data = await self._call(*routes.INSPECT_IMAGE.request(ref))
        return serde.from_dict(ImageInfo, data)

    async def remove_image(self, ref: str, force: bool = False) -> list[str]:
        data = await self._call(*routes.REMOVE_IMAGE.request(ref), params=[("force", str(int(force)))])
        return [str(x) for x in data["deleted"]]

    async def import_image(self, path: str, tag: str) -> ImageInfo:
        body = rpc.ImportRequest(path=path, tag=tag)
        return serde.from_dict(ImageInfo, await self._call(*routes.IMPORT_IMAGE.request(), body=body))

    async def load_image(self, path: str) -> list[ImageInfo]:
        data = await self._call(*routes.LOAD_IMAGE.request(), body=rpc.LoadRequest(path=path))
        return [serde.from_dict(ImageInfo, d) for d in data]

    def build_image(self, req: BuildRequest) -> Stream[BuildProgress]:
        """Build output lines as they come; the last item has `image_id` (or `error`)."""
        method, path = routes.BUILD_IMAGE.request()
        return Stream(self, path, [], BuildProgress, method=method, body=req)

    def pull_image(self, ref: str) -> Stream[PullEvent]:
        """Pull progress as it comes; the last item has `image_id` (or `error`)."""
        method, path = routes.PULL_IMAGE.request()
        return Stream(self, path, [], PullEvent, method=method, body=rpc.PullRequest(ref))

    # ------------------------------------------------------------ events

    def events(self, since: float | None = None, until: float | None = None) -> Stream[Event]:
        """Engine events from now on (with `since`/`until`: the daemon's recent ones first,
        ending at `until`). `await stream.open()` (or `async with`) to be sure the
        subscription is live before acting, so no event is missed."""
        params = [(k, repr(float(v))) for k, v in (("since", since), ("until", until))
                  if v is not None]
        method, path = routes.EVENTS.request()
        return Stream(self, path, params, Event, method=method)

    # ------------------------------------------------------------ project lock

    def lock(
        self,
        project: str,
        *,
        timeout: float | None = None,
        on_wait: Callable[[str], None] | None = None,
    ) -> contextlib.AbstractAsyncContextManager[None]:
        """Serialise composers acting on one project (see `project_lock`)."""
        return project_lock(self.socket_path.parent, project, timeout=timeout, on_wait=on_wait)


@contextlib.asynccontextmanager
async def project_lock(
    run_dir: Path,
    project: str,
    *,
    timeout: float | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> AsyncIterator[None]:
    """Hold `<run_dir>/locks/<project>.lock` (flock) for the body; wait (polling) while another
    process holds it. `on_wait(message)` is called once if we have to wait; `timeout` -> Conflict."""
    safe_name(project, "project name")
    lock_dir = run_dir / "locks"
    try:
        lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        mode = access.lock_file_mode(lock_dir)
        fd = os.open(lock_dir / f"{project}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, mode)
        if os.fstat(fd).st_uid == os.geteuid():
            os.fchmod(fd, mode)  # the umask must not narrow it: other members open it too
    except PermissionError:
        raise PermissionDenied(needs_root(), subject=str(lock_dir)) from None
    try:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        delay = 0.005
        warned = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(fd)
                if deadline is not None and loop.time() >= deadline:
                    raise Conflict(
                        f"project {project} is busy: another composer{holder} is acting on it; "
                        "wait for it to finish",
                        subject=project,
                    ) from None
                if not warned and on_wait is not None:
                    on_wait(f"waiting for another composer{holder} acting on project {project}")
                warned = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _holder(fd: int) -> str:
    try:
        pid = int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return ""
    return f" (pid {pid})"


# ---------------------------------------------------------------- starting the daemon


class DaemonStartError(DaemonUnavailable):
    pass


# A deadline for a daemon that never comes up, not an expected start time (~0.5 s natively;
# the starter returns as soon as the daemon answers or fails, so this only bounds a hang):
# an emulated or heavily loaded host can take well over 10 s to import and open the engine.
START_TIMEOUT = 300.0


async def connect_or_start(
    paths: Paths | None = None, timeout: float = START_TIMEOUT, *, socket_path: Path | None = None,
    notice: Callable[[str], None] | None = None,
) -> Client:
    """A Client whose daemon answers: start `composerd --background` if nothing answers yet.
    A daemon on other code (runtime.identity) is restarted on this code when that is safe
    (runtime.codecheck); `notice` gets the one line saying so, or why not and what to do."""
    paths = paths or Paths.from_env()
    client = Client(socket_path or paths.socket)
    try:
        if await client.ping() and not await _replace_if_stale(client, paths, timeout, notice):
            return client
    except DaemonUnavailable:
        pass
    except BaseException:
        await client.close()
        raise
    try:
        if os.geteuid() != 0:
            raise PermissionDenied(NEEDS_ROOT_TO_START)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        problem = await _start_daemon(paths, socket_path, timeout)
        while True:
            try:
                if await client.ping():
                    return client
            except DaemonUnavailable:
                pass
            if loop.time() >= deadline:
                raise DaemonStartError(
                    f"composerd did not answer within {timeout:g}s: "
                    f"{problem or 'see ' + str(paths.run / 'composerd.log')}"
                )
            await asyncio.sleep(0.01)
    except BaseException:
        await client.close()
        raise


async def _replace_if_stale(client: Client, paths: Paths, timeout: float, notice: Callable[[str], None] | None) -> bool:
    """True when the daemon ran other code and was stopped: the caller starts this code's."""
    from runtime import codecheck, identity

    info = await client.version()
    if identity.same_code(info.get("identity")):
        return False
    plan = codecheck.decide(info, held=codecheck.held_project_locks(paths.run), euid=os.geteuid(),
                            cmdline=codecheck.cmdline_of(info.get("pid")))
    if plan.restart:
        await client.close()  # its keep-alive connection is to the old daemon
        await _stop_daemon(int(info["pid"]), timeout)
    if notice is not None:
        notice(plan.message)
    return plan.restart


async def _stop_daemon(pid: int, timeout: float) -> None:
    """SIGTERM composerd `pid` and wait until it is gone (it finishes what it serves, closes
    the engine and lets the run-dir lock go; its containers stay with the monitor)."""
    import signal

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        os.kill(pid, signal.SIGTERM)
        while True:
            os.kill(pid, 0)
            if _zombie(pid):  # gone but not reaped yet (a parent that is not init)
                return
            if loop.time() >= deadline:
                raise DaemonStartError(f"composerd (pid {pid}) did not stop within {timeout:g}s "
                                       "after SIGTERM; see its log (composerd.log in the run dir)")
            await asyncio.sleep(0.01)
    except ProcessLookupError:
        return


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


# What composerd keeps of the first CLI's environment: it outlives that CLI and serves every
# later one, so nothing of one user's shell (LD_PRELOAD, PYTHON*, proxies, a test hook) leaks in.
DAEMON_ENV_KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "DOCKER_CONFIG")
DAEMON_ENV_PREFIX = "COMPOSER_"  # COMPOSER_ROOT/RUN/CGROUP_PARENT/GROUP/MAX_IMAGE_ARCHIVE_BYTES
TEST_HOOK_ENV = "COMPOSERD_ENGINE"  # tests only: passed on when COMPOSER_TEST_HOOKS=1
# composerd runs without docstrings (and asserts, which in runtime/ only narrow types): ~1.6 MiB
# less of the resident memory of a process that lives as long as the host (issue 15). That
# bytecode is compiled once (~1 s, on the first start after an install or upgrade) into a cache
# of composer's own, not beside the sources (a distribution's /usr/lib/python3 among them).
DAEMON_PYCACHE = "/var/cache/composer/pycache"
DAEMON_PYTHON_FLAGS = ("-OO", "-X", f"pycache_prefix={DAEMON_PYCACHE}")


def daemon_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment composerd starts with: a few named variables and composer's own, and
    PYTHONPATH naming only where `runtime` is importable from."""
    env = {k: v for k, v in environ.items() if k in DAEMON_ENV_KEEP or k.startswith(DAEMON_ENV_PREFIX)}
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    if environ.get("COMPOSER_TEST_HOOKS") == "1" and TEST_HOOK_ENV in environ:
        env[TEST_HOOK_ENV] = environ[TEST_HOOK_ENV]
    env["PYTHONPATH"] = str(Path(runtime.__file__).resolve().parent.parent)
    return env


async def _start_daemon(paths: Paths, socket_path: Path | None, timeout: float) -> str:
    """Run `python -m runtime.daemon --background`; it returns once the daemon is ready.
    Returns the starter's complaint when another daemon won the race; raises on real failure."""
    argv = [
        sys.executable,
        *DAEMON_PYTHON_FLAGS,
        "-m",
        "runtime.daemon",
        "--background",
        "--root",
        str(paths.root),
        "--run",
        str(paths.run),
    ]
    if socket_path is not None:
        argv += ["--socket", str(socket_path)]
    env = daemon_environment(os.environ)
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd="/",
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise DaemonStartError(
            f"composerd did not start within {timeout:g}s; see {paths.run / 'composerd.log'}"
        ) from None
    message = err.decode(errors="replace").strip().splitlines()[-1:] or [""]
    if proc.returncode == 0:
        return ""
    if "already running" in message[0] or "another composerd" in message[0]:
        return message[0]  # a concurrent start won; its daemon will answer
    raise DaemonStartError(message[0] or f"composerd exited with status {proc.returncode}")
