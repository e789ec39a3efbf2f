"""`composerd`: serves the Engine API as JSON over HTTP on a root-only unix socket.

    create_app(engine)            the aiohttp application (routes in runtime.rpc), no I/O
    serve(engine, socket_path)    bind the socket (0600, dir 0700) and start serving -> runner
    run(paths, engine_factory)    the daemon's life: lock, stale socket, pid file, signals, close
    main()                        console script; `--background` forks *before* any event loop
                                  and returns once the daemon answers (or failed to start)

Stopping the daemon (SIGTERM/SIGINT) stops serving and closes the engine; containers keep
running under their shims and a restarted daemon re-adopts them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import importlib
import inspect
import json
import logging
import os
import platform
import signal
import socket
import stat
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import WSCloseCode, WSMsgType, web

from runtime import access, rpc
from runtime.api import BuildRequest, CommitRequest, EngineAPI
from runtime.attach import AttachStream, frame, split_frames
from runtime.errors import EngineError, InvalidArgument
from runtime.paths import Paths
from runtime.tasks import cancel_and_wait
from runtime.types import ContainerSpec, NetworkSpec, VolumeSpec
from runtime.unixsock import bind_private

log = logging.getLogger("composerd")

VERSION = "0.1.0"
ENGINE_ENV = "COMPOSERD_ENGINE"  # "module:factory" — tests only; default runtime.engine:Engine.open
DEFAULT_ENGINE = "runtime.engine:Engine.open"
PID_FILE = "composerd.pid"
LOCK_FILE = "composerd.lock"
LOG_FILE = "composerd.log"

EngineFactory = Callable[[Paths], Awaitable[EngineAPI]]
ENGINE = web.AppKey("engine", EngineAPI)
# engine calls still running after their client left
ORPHANS: web.AppKey[set[asyncio.Task[Any]]] = web.AppKey("orphans")
T = TypeVar("T")
ORPHAN_GRACE = 60.0  # seconds run() waits for orphans before closing the engine


class DaemonError(EngineError):
    """The daemon itself cannot start: already running, socket path taken, not root."""


# ---------------------------------------------------------------- errors -> JSON


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=rpc.encode(data), status=status, content_type="application/json")


def _error(status: int, message: str, kind: str = "EngineError") -> web.Response:
    body = {"message": message, "kind": kind, "subject": None}
    return web.Response(
        body=json.dumps(body).encode(), status=status, content_type="application/json"
    )


_HTTP_KINDS = {400: "InvalidArgument", 404: "NotFound", 409: "Conflict"}


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except EngineError as e:
        if e.status >= 500:
            log.warning("%s %s: %s", request.method, request.path, e)
        body = json.dumps(rpc.error_body(e)).encode()
        # also in a header: a websocket client's failed handshake shows headers, not bodies
        return web.Response(body=body, status=e.status, content_type="application/json",
                            headers={rpc.ERROR_HEADER: body.decode()})
    except web.HTTPException as e:
        if e.status < 400:
            raise
        if e.status == 413:
            msg = rpc.TOO_LARGE
        elif e.status == 404:
            msg = f"no such endpoint: {request.method} {request.path}"
        elif e.status == 405:
            msg = f"method {request.method} not allowed on {request.path}"
        else:
            msg = (e.text or e.reason).strip().splitlines()[0].lower()
        return _error(e.status, msg, _HTTP_KINDS.get(e.status, "EngineError"))
    except (asyncio.CancelledError, ConnectionError):
        raise
    except Exception as e:  # a bug: one line to the client, the traceback to the log
        log.exception("%s %s failed", request.method, request.path)
        first = (str(e).splitlines() or [""])[0]
        return _error(500, f"internal error in composerd: {type(e).__name__}: {first}")


# ---------------------------------------------------------------- handlers


def _engine(request: web.Request) -> EngineAPI:
    return request.app[ENGINE]


async def _complete(request: web.Request, call: Awaitable[T]) -> T:
    """Run a state-changing engine call to its end even if the client goes away (a CLI's ^C
    must not leave half a container); `run()` waits for such orphans before closing."""
    task = asyncio.ensure_future(call)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        orphans = request.app[ORPHANS]
        orphans.add(task)
        task.add_done_callback(_orphan_done(orphans, f"{request.method} {request.path}"))
        raise


def _orphan_done(orphans: set[asyncio.Task[Any]], what: str) -> Callable[[asyncio.Task[Any]], None]:
    def done(task: asyncio.Task[Any]) -> None:
        orphans.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("%s finished after its client left: %s", what, task.exception())

    return done


async def _body(request: web.Request, cls: type[Any]) -> Any:
    raw = await request.read()  # raises 413 past client_max_size
    return rpc.decode(cls, rpc.decode_json(raw))


def _ref(request: web.Request) -> str:
    return rpc.container_ref(request.match_info["ref"])


def _q(request: web.Request, key: str) -> str | None:
    return request.query.get(key)


async def ping(request: web.Request) -> web.Response:
    return web.Response(text="OK")


async def version(request: web.Request) -> web.Response:
    return _json(
        {
            "version": VERSION,
            "api_version": rpc.API_VERSION,
            "pid": os.getpid(),
            "python": platform.python_version(),
            "engine": type(_engine(request)).__name__,
        }
    )


async def create_container(request: web.Request) -> web.Response:
    spec: ContainerSpec = await _body(request, ContainerSpec)
    rpc.object_name(spec.name, "container name")
    rpc.image_ref(spec.image)
    return _json(await _complete(request, _engine(request).create_container(spec)), 201)


async def list_containers(request: web.Request) -> web.Response:
    all_ = rpc.parse_bool(_q(request, "all"), "all")
    labels = rpc.parse_labels(request.query.getall("label", []))
    return _json(await _engine(request).list_containers(all=all_, labels=labels))


async def inspect_container(request: web.Request) -> web.Response:
    return _json(await _engine(request).inspect_container(_ref(request)))


async def start_container(request: web.Request) -> web.Response:
    return _json(await _complete(request, _engine(request).start_container(_ref(request))))


async def stop_container(request: web.Request) -> web.Response:
    ref = _ref(request)
    timeout = rpc.parse_float(_q(request, "timeout"), "timeout")
    return _json(await _complete(request, _engine(request).stop_container(ref, timeout=timeout)))


async def restart_container(request: web.Request) -> web.Response:
    ref = _ref(request)
    timeout = rpc.parse_float(_q(request, "timeout"), "timeout")
    return _json(await _complete(request, _engine(request).restart_container(ref,
                                                                             timeout=timeout)))


async def kill_container(request: web.Request) -> web.Response:
    ref = _ref(request)
    sig = rpc.parse_signal(_q(request, "signal"))
    await _complete(request, _engine(request).kill_container(ref, signal=sig))
    return web.Response(status=204)


async def wait_container(request: web.Request) -> web.Response:
    return _json({"exit_code": await _engine(request).wait_container(_ref(request))})


async def remove_container(request: web.Request) -> web.Response:
    ref = _ref(request)
    force = rpc.parse_bool(_q(request, "force"), "force")
    volumes = rpc.parse_bool(_q(request, "v"), "v")
    await _complete(request, _engine(request).remove_container(ref, force=force, volumes=volumes))
    return web.Response(status=204)


async def pause_container(request: web.Request) -> web.Response:
    await _complete(request, _engine(request).pause_container(_ref(request)))
    return web.Response(status=204)


async def unpause_container(request: web.Request) -> web.Response:
    await _complete(request, _engine(request).unpause_container(_ref(request)))
    return web.Response(status=204)


async def container_logs(request: web.Request) -> web.StreamResponse:
    ref = _ref(request)
    follow = rpc.parse_bool(_q(request, "follow"), "follow")
    tail = rpc.parse_int(_q(request, "tail"), "tail")
    since = rpc.parse_time(_q(request, "since"), "since")
    until = rpc.parse_time(_q(request, "until"), "until")
    engine = _engine(request)
    await engine.inspect_container(ref)  # a missing container is a 404, not a broken stream
    return await _stream(request, engine.logs(ref, follow=follow, tail=tail, since=since,
                                              until=until))


async def exec_run(request: web.Request) -> web.Response:
    ref = _ref(request)
    req: rpc.ExecRequest = await _body(request, rpc.ExecRequest)
    if not req.argv:
        raise InvalidArgument("invalid exec: argv is empty, give the command to run")
    result = await _engine(request).exec_run(
        ref, list(req.argv), user=req.user, env=dict(req.env) or None, workdir=req.workdir,
        privileged=req.privileged,
    )
    return _json(result)


async def exec_prepare(request: web.Request) -> web.Response:
    ref = _ref(request)
    req: rpc.ExecRequest = await _body(request, rpc.ExecRequest)
    if not req.argv:
        raise InvalidArgument("invalid exec: argv is empty, give the command to run")
    target = await _engine(request).exec_prepare(
        ref, list(req.argv), user=req.user, env=dict(req.env) or None, workdir=req.workdir,
        tty=req.tty, privileged=req.privileged,
    )
    return _json(target)


async def remove_paths(request: web.Request) -> web.Response:
    ref = _ref(request)
    req: rpc.RemovePathsRequest = await _body(request, rpc.RemovePathsRequest)
    if any(not p.startswith("/") for p in req.paths):
        raise InvalidArgument("invalid path: give absolute paths in the container")
    return _json(await _engine(request).remove_paths(ref, list(req.paths)))


async def attach_container(request: web.Request) -> web.StreamResponse:
    """A websocket relaying attach frames (runtime.attach) both ways: binary messages of
    whole frames. Errors (unknown or stopped container) come before the upgrade, as 4xx.
    `follow=1`: the engine's follow mode (every run of the container, EXIT after each)."""
    ref = _ref(request)
    logs = rpc.parse_bool(_q(request, "logs"), "logs")
    follow = rpc.parse_bool(_q(request, "follow"), "follow")
    stream = await _engine(request).attach_container(ref, logs=bool(logs), follow=bool(follow))
    return await _relay(request, stream)


async def exec_attach(request: web.Request) -> web.StreamResponse:
    """`exec` with its stdio on a websocket (runtime.exec_session): the command starts
    before the upgrade, so an unknown or stopped container is a 4xx."""
    ref = _ref(request)
    raw = _q(request, "request")
    if raw is None:
        raise InvalidArgument("exec-attach needs a request query value (ExecRequest as JSON)")
    req: rpc.ExecRequest = rpc.decode(rpc.ExecRequest, rpc.decode_json(raw.encode()))
    if not req.argv:
        raise InvalidArgument("invalid exec: argv is empty, give the command to run")
    stream = await _engine(request).exec_attach(
        ref, list(req.argv), user=req.user, env=dict(req.env) or None, workdir=req.workdir,
        tty=req.tty, stdin=req.stdin, detach=req.detach, privileged=req.privileged)
    return await _relay(request, stream)


CLIENT_LINGER = 10.0  # s a websocket client has to close after the end of its stream


async def _relay(request: web.Request, stream: AttachStream) -> web.StreamResponse:
    """Relay `stream` on a websocket until either side ends; the stream is closed after.

    One task reads the websocket, and it is the one that closes it: aiohttp's close() from
    another task while a receive() waits drops the transport without waiting for the
    client's CLOSE, so a client write racing the end (CLOSE_IN) failed and the client's loop
    dropped the EXIT frame it had not read yet. Closed from the reader, close() sends CLOSE
    and reads (discarding late input) until the client answers, at most CLIENT_LINGER."""
    ws = web.WebSocketResponse(max_msg_size=rpc.MAX_BODY, timeout=CLIENT_LINGER)
    recv: asyncio.Future[Any] | None = None
    out: asyncio.Future[None] | None = None
    try:
        await ws.prepare(request)

        async def output() -> None:
            while (item := await stream.recv_frame()) is not None:
                await ws.send_bytes(frame(*item))

        out = asyncio.ensure_future(output())
        while True:
            recv = recv or asyncio.ensure_future(ws.receive())
            await asyncio.wait({recv, out}, return_when=asyncio.FIRST_COMPLETED)
            if not recv.done():
                break  # the container's output ended: so does the client's stream
            msg, recv = recv.result(), None
            if msg.type != WSMsgType.BINARY:
                break  # the client closed (aiohttp answered its CLOSE) or broke the stream
            try:
                for kind, payload in split_frames(bytearray(msg.data)):
                    await stream.send_frame(kind, payload)
            except ValueError as e:
                await ws.close(code=WSCloseCode.UNSUPPORTED_DATA, message=str(e).encode())
                break
    finally:
        # aiohttp cancels this handler when the connection goes (the client closed), and
        # cancel_and_wait passes that cancellation on: the stream is closed whatever happens
        try:
            for task in (recv, out):  # no receive() may be pending when close() runs
                if task is not None:
                    await cancel_and_wait(task)
        finally:
            await stream.close()
            await ws.close()
    return ws


async def top(request: web.Request) -> web.Response:
    return _json(await _engine(request).top(_ref(request)))


async def stats(request: web.Request) -> web.Response:
    return _json(await _engine(request).stats(_ref(request)))


async def stat_path(request: web.Request) -> web.Response:
    path = rpc.container_path(_q(request, "path"))
    return _json(await _engine(request).stat_path(_ref(request), path))


async def _send_tar(request: web.Request, chunks: AsyncIterator[bytes],
                    headers: dict[str, str]) -> web.StreamResponse:
    """Stream tar bytes; an error after the headers went out cuts the response short (the
    client sees a broken transfer, the log says why)."""
    resp = web.StreamResponse(headers={"Content-Type": rpc.TAR_CONTENT_TYPE, **headers})
    resp.enable_chunked_encoding()
    try:
        await resp.prepare(request)
        async for chunk in chunks:
            await resp.write(chunk)
        await resp.write_eof()
    except ConnectionError:
        pass  # the client went away
    except Exception:
        log.exception("%s %s failed while streaming", request.method, request.path)
        if request.transport is not None:
            request.transport.close()  # no terminating chunk: the client knows it broke
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
    return resp


async def get_archive(request: web.Request) -> web.StreamResponse:
    path = rpc.container_path(_q(request, "path"))
    follow = rpc.parse_bool(_q(request, "follow"), "follow")
    st, chunks = await _engine(request).get_archive(_ref(request), path, follow_link=follow)
    return await _send_tar(request, chunks, {rpc.PATH_STAT_HEADER: rpc.encode(st).decode()})


async def put_archive(request: web.Request) -> web.Response:
    path = rpc.container_path(_q(request, "path"))
    copy_ids = rpc.parse_bool(_q(request, "copy_uid_gid"), "copy_uid_gid")
    raw = _q(request, "no_overwrite_dir_non_dir")
    strict = True if raw is None else rpc.parse_bool(raw, "no_overwrite_dir_non_dir")
    try:
        await _engine(request).put_archive(
            _ref(request), path, request.content.iter_chunked(1 << 16), copy_uid_gid=copy_ids,
            no_overwrite_dir_non_dir=strict)
    except EngineError:
        # read what the client still sends, so that it gets to read our answer
        while await request.content.readany():
            pass
        raise
    return web.Response(status=204)


async def export_container(request: web.Request) -> web.StreamResponse:
    engine = _engine(request)
    ref = _ref(request)
    await engine.inspect_container(ref)  # a missing container is a 404, not a broken stream
    chunks = aiter(engine.export_container(ref))
    first = await anext(chunks, b"")  # errors (refused, not found) before the headers

    async def all_chunks() -> AsyncIterator[bytes]:
        if first:
            yield first
        async for chunk in chunks:
            yield chunk
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()

    return await _send_tar(request, all_chunks(), {})


async def commit_container(request: web.Request) -> web.Response:
    req: CommitRequest = await _body(request, CommitRequest)
    return _json(await _complete(request, _engine(request).commit_container(_ref(request), req)),
                 201)


async def create_network(request: web.Request) -> web.Response:
    spec: NetworkSpec = await _body(request, NetworkSpec)
    rpc.object_name(spec.name, "network name")
    return _json(await _complete(request, _engine(request).create_network(spec)), 201)


async def list_networks(request: web.Request) -> web.Response:
    labels = rpc.parse_labels(request.query.getall("label", []))
    return _json(await _engine(request).list_networks(labels=labels))


async def remove_network(request: web.Request) -> web.Response:
    name = rpc.object_name(request.match_info["name"], "network name")
    await _complete(request, _engine(request).remove_network(name))
    return web.Response(status=204)


async def create_volume(request: web.Request) -> web.Response:
    spec: VolumeSpec = await _body(request, VolumeSpec)
    rpc.object_name(spec.name, "volume name")
    return _json(await _complete(request, _engine(request).create_volume(spec)), 201)


async def list_volumes(request: web.Request) -> web.Response:
    labels = rpc.parse_labels(request.query.getall("label", []))
    return _json(await _engine(request).list_volumes(labels=labels))


async def remove_volume(request: web.Request) -> web.Response:
    name = rpc.object_name(request.match_info["name"], "volume name")
    force = rpc.parse_bool(_q(request, "force"), "force")
    await _complete(request, _engine(request).remove_volume(name, force=force))
    return web.Response(status=204)


async def list_images(request: web.Request) -> web.Response:
    return _json(await _engine(request).list_images())


async def inspect_image(request: web.Request) -> web.Response:
    return _json(await _engine(request).inspect_image(rpc.image_ref(request.match_info["ref"])))


async def remove_image(request: web.Request) -> web.Response:
    ref = rpc.image_ref(request.match_info["ref"])
    force = rpc.parse_bool(_q(request, "force"), "force")
    return _json(
        {"deleted": await _complete(request, _engine(request).remove_image(ref, force=force))}
    )


async def import_image(request: web.Request) -> web.Response:
    req: rpc.ImportRequest = await _body(request, rpc.ImportRequest)
    rpc.host_path(req.path, "import path")
    rpc.image_ref(req.tag)
    return _json(await _complete(request, _engine(request).import_image(req.path, req.tag)), 201)


async def load_image(request: web.Request) -> web.Response:
    req: rpc.LoadRequest = await _body(request, rpc.LoadRequest)
    return _json(
        await _complete(
            request, _engine(request).load_image(rpc.host_path(req.path, "archive path"))
        )
    )


async def build_image(request: web.Request) -> web.StreamResponse:
    req: BuildRequest = await _body(request, BuildRequest)
    rpc.host_path(req.context, "build context")
    if req.tag:
        rpc.image_ref(req.tag)
    return await _stream(request, _engine(request).build_image(req))


async def pull_image(request: web.Request) -> web.StreamResponse:
    req: rpc.PullRequest = await _body(request, rpc.PullRequest)
    return await _stream(request, _engine(request).pull_image(rpc.image_ref(req.ref)))


async def events(request: web.Request) -> web.StreamResponse:
    since = rpc.parse_time(_q(request, "since"), "since")
    until = rpc.parse_time(_q(request, "until"), "until")
    if since is None and until is None:
        return await _stream(request, _engine(request).events())
    return await _stream(request, _engine(request).events(since=since, until=until))


_END: Any = object()


async def _next(it: AsyncIterator[Any]) -> Any:
    try:
        return await anext(it)
    except StopAsyncIteration:
        return _END


async def _stream(request: web.Request, items: AsyncIterator[Any]) -> web.StreamResponse:
    """Write `items` as JSON lines; an error after the headers went out becomes an error line."""
    it = aiter(items)
    # Take the first step before answering: an async generator runs up to its first await,
    # so it has subscribed (events) or failed (unknown container) before the client sees
    # the headers -- the client may act as soon as `open()` returns and must miss nothing.
    first = asyncio.ensure_future(_next(it))
    try:
        await asyncio.sleep(0)
        if first.done() and isinstance(first.exception(), EngineError):
            await first  # raises: a proper status code, not a broken stream
        resp = web.StreamResponse(headers={"Content-Type": rpc.STREAM_CONTENT_TYPE})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        try:
            item = await first
            while item is not _END:
                await resp.write(rpc.encode(item) + b"\n")
                item = await _next(it)
        except EngineError as e:
            await resp.write(json.dumps({"error": rpc.error_body(e)}).encode() + b"\n")
        except ConnectionError:  # the client went away
            return resp
        except Exception as e:
            log.exception("%s %s failed while streaming", request.method, request.path)
            body = {
                "message": f"internal error in composerd: {type(e).__name__}: {e}",
                "kind": "EngineError",
                "subject": None,
            }
            await resp.write(json.dumps({"error": body}).encode() + b"\n")
        with contextlib.suppress(ConnectionError):
            await resp.write_eof()
        return resp
    finally:
        if not first.done():
            await cancel_and_wait(first)
        aclose = getattr(it, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()


def create_app(engine: EngineAPI) -> web.Application:
    app = web.Application(client_max_size=rpc.MAX_BODY, middlewares=[_errors])
    app[ENGINE] = engine
    app[ORPHANS] = set()
    r = app.router
    r.add_get("/_ping", ping)
    r.add_get("/version", version)
    r.add_post("/containers/create", create_container)
    r.add_get("/containers", list_containers)
    r.add_get("/containers/json", list_containers)  # docker's spelling
    r.add_get("/containers/{ref}/json", inspect_container)
    r.add_post("/containers/{ref}/start", start_container)
    r.add_post("/containers/{ref}/stop", stop_container)
    r.add_post("/containers/{ref}/restart", restart_container)
    r.add_post("/containers/{ref}/kill", kill_container)
    r.add_post("/containers/{ref}/wait", wait_container)
    r.add_delete("/containers/{ref}", remove_container)
    r.add_post("/containers/{ref}/pause", pause_container)
    r.add_post("/containers/{ref}/unpause", unpause_container)
    r.add_get("/containers/{ref}/logs", container_logs)
    r.add_post("/containers/{ref}/exec", exec_run)
    r.add_post("/containers/{ref}/exec-prepare", exec_prepare)
    r.add_get("/containers/{ref}/attach", attach_container)
    r.add_get("/containers/{ref}/exec-attach", exec_attach)
    r.add_post("/containers/{ref}/remove-paths", remove_paths)
    r.add_get("/containers/{ref}/top", top)
    r.add_get("/containers/{ref}/stats", stats)
    r.add_get("/containers/{ref}/archive/stat", stat_path)
    r.add_get("/containers/{ref}/archive", get_archive)
    r.add_put("/containers/{ref}/archive", put_archive)
    r.add_get("/containers/{ref}/export", export_container)
    r.add_post("/containers/{ref}/commit", commit_container)
    r.add_post("/networks/create", create_network)
    r.add_get("/networks", list_networks)
    r.add_delete("/networks/{name}", remove_network)
    r.add_post("/volumes/create", create_volume)
    r.add_get("/volumes", list_volumes)
    r.add_delete("/volumes/{name}", remove_volume)
    r.add_get("/images", list_images)
    r.add_post("/images/import", import_image)
    r.add_post("/images/load", load_image)
    r.add_post("/images/build", build_image)
    r.add_post("/images/pull", pull_image)
    r.add_get("/images/{ref:.+}/json", inspect_image)
    r.add_delete("/images/{ref:.+}", remove_image)
    r.add_get("/events", events)
    return app


# ---------------------------------------------------------------- socket and serving


def bind_socket(path: Path, gid: int | None = None) -> socket.socket:
    """Bind a unix socket at `path` created 0600 (umask during bind: no window where it is
    open); with an access group `gid` it becomes 0660 root:group afterwards (runtime.access)."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        bind_private(sock, str(path))
    except OSError as e:
        sock.close()
        raise DaemonError(
            f"cannot bind the socket {path}: {e.strerror.lower() if e.strerror else e}"
        ) from None
    access.share_socket(path, gid)
    sock.setblocking(False)
    return sock


async def serve(
    engine: EngineAPI, socket_path: Path, *, debug: bool = False, shutdown_timeout: float = 1.0
) -> web.AppRunner:
    """Start serving `engine` on `socket_path`; stop with `await runner.cleanup()`."""
    runner = web.AppRunner(
        create_app(engine),
        handler_cancellation=True,  # a client that disconnects cancels its request (wait, logs -f)
        shutdown_timeout=shutdown_timeout,
        access_log=log if debug else None,
    )
    await runner.setup()
    sock = bind_socket(socket_path, access.access_gid())
    try:
        await web.SockSite(runner, sock).start()
    except BaseException:
        sock.close()
        await runner.cleanup()
        raise
    return runner


async def _socket_answers(path: Path) -> bool:
    """True if something accepts connections on `path`; remove it if it is a stale socket."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return False
    if not stat.S_ISSOCK(st.st_mode):
        raise DaemonError(f"{path} exists and is not a socket: remove it or pass another --socket")
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), 2)
    except TimeoutError:  # a listener too busy to accept is still a listener
        return True
    except (ConnectionRefusedError, FileNotFoundError):
        log.info("removing stale socket %s", path)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return False
    writer.close()
    return True


def _take_daemon_lock(run: Path) -> int:
    """One daemon per run dir: an flock the kernel drops when the daemon dies (even -9)."""
    fd = os.open(run / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DaemonError(f"composerd is already running{_pid_hint(run)}: stop it first") from None
    return fd


def _pid_hint(run: Path) -> str:
    try:
        return f" (pid {int((run / PID_FILE).read_text())})"
    except (OSError, ValueError):
        return ""


def _secure_run_dir(run: Path) -> None:
    """0700, or 0710 root:composer when the access group exists (runtime.access); never
    chmod a shared dir such as /tmp (sticky) or someone else's. Project locks beside it."""
    run.mkdir(mode=0o700, parents=True, exist_ok=True)
    gid = access.access_gid()
    access.share_dir(run, gid)
    access.share_lock_dir(run / "locks", gid)
    if gid is not None:
        log.info("members of group %s may use composerd (root-equivalent)", access.group_name())


async def run(
    paths: Paths,
    engine_factory: EngineFactory,
    *,
    socket_path: Path | None = None,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[], None] | None = None,
    debug: bool = False,
) -> None:
    """The daemon's life: take the run-dir lock, open the engine, serve until SIGTERM/`stop`."""
    socket_path = socket_path or paths.socket
    stop = stop or asyncio.Event()
    _secure_run_dir(paths.run)
    lock_fd = _take_daemon_lock(paths.run)
    try:
        if await _socket_answers(socket_path):
            raise DaemonError(f"another composerd answers on {socket_path}: stop it first")
        engine = await engine_factory(paths)
        try:
            runner = await serve(engine, socket_path, debug=debug)
            ino = socket_path.stat().st_ino
            pid_file = paths.run / PID_FILE
            pid_file.write_text(f"{os.getpid()}\n")
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            try:
                log.info("composerd %s serving on %s (pid %d)", VERSION, socket_path, os.getpid())
                if on_ready is not None:
                    on_ready()
                await stop.wait()
                log.info("stopping: containers keep running")
            finally:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
                orphans = runner.app[ORPHANS]
                await runner.cleanup()  # cancels handlers: their state changes become orphans
                if orphans:  # let them finish before the engine closes
                    await asyncio.wait(set(orphans), timeout=ORPHAN_GRACE)
                with contextlib.suppress(FileNotFoundError):
                    if socket_path.stat().st_ino == ino:
                        socket_path.unlink()
                with contextlib.suppress(FileNotFoundError):
                    pid_file.unlink()
        finally:
            close = getattr(engine, "close", None)
            if close is not None:
                res = close()
                if inspect.isawaitable(res):
                    await res
    finally:
        os.close(lock_fd)


def load_engine_factory(spec: str | None = None) -> EngineFactory:
    """`module:attr.path` -> the callable; default `runtime.engine:Engine.open` or $COMPOSERD_ENGINE."""
    spec = spec or os.environ.get(ENGINE_ENV) or DEFAULT_ENGINE
    module, _, attr = spec.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)

    async def factory(paths: Paths) -> EngineAPI:
        res = obj(paths)
        return await res if inspect.isawaitable(res) else res  # type: ignore[no-any-return]

    return factory


# ---------------------------------------------------------------- command line


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="composerd", description="composer's daemon: serves the engine on a unix socket"
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--foreground", action="store_true", help="stay attached (default)")
    mode.add_argument(
        "--background", action="store_true", help="detach; return once the daemon answers"
    )
    p.add_argument("--socket", type=Path, help="socket path (default $COMPOSER_RUN/composer.sock)")
    p.add_argument(
        "--root", type=Path, help="state root (default $COMPOSER_ROOT or /var/lib/composer)"
    )
    p.add_argument("--run", type=Path, help="run root (default $COMPOSER_RUN or /run/composer)")
    p.add_argument("--debug", action="store_true", help="debug logging and tracebacks")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s composerd[%(process)d] %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    env = Paths.from_env()
    paths = Paths(root=args.root or env.root, run=args.run or env.run)
    if os.geteuid() != 0:
        print("composerd needs root: run it with sudo", file=sys.stderr)
        return 1
    try:
        factory = load_engine_factory()
        _secure_run_dir(paths.run)
    except (ImportError, AttributeError, OSError) as e:
        print(f"composerd: cannot start: {e}", file=sys.stderr)
        return 1
    if args.background:
        return _background(paths, factory, args)
    return _foreground(paths, factory, args, ready_fd=None)


def _foreground(
    paths: Paths, factory: EngineFactory, args: argparse.Namespace, ready_fd: int | None
) -> int:
    pending = [ready_fd] if ready_fd is not None else []  # the fd to report to, until used

    def report(msg: bytes) -> None:
        if pending:
            fd = pending.pop()
            with contextlib.suppress(OSError):
                os.write(fd, msg)
            os.close(fd)

    try:
        asyncio.run(
            run(
                paths,
                factory,
                socket_path=args.socket,
                on_ready=lambda: report(b"ok\n"),
                debug=args.debug,
            )
        )
    except Exception as e:  # one line for the user; the traceback only with --debug
        if args.debug or not isinstance(e, (EngineError, OSError)):
            log.exception("composerd failed")
        msg = f"composerd: {e}"
        print(msg, file=sys.stderr)
        report(msg.encode() + b"\n")
        return 1
    report(b"composerd: stopped before it was ready\n")
    return 0


def _background(paths: Paths, factory: EngineFactory, args: argparse.Namespace) -> int:
    """Fork now (single-threaded, no event loop yet); the parent returns when the child is ready."""
    r, w = os.pipe()
    pid = os.fork()
    if pid:  # parent: relay the child's verdict
        os.close(w)
        chunks = []
        while chunk := os.read(r, 4096):
            chunks.append(chunk)
        os.close(r)
        out = b"".join(chunks).decode(errors="replace").strip()
        if out == "ok":
            return 0
        print(
            out or f"composerd: exited before it was ready; see {paths.run / LOG_FILE}",
            file=sys.stderr,
        )
        return 1
    # child: own session, stdio to the log file, then run as in the foreground
    os.close(r)
    os.setsid()
    null = os.open(os.devnull, os.O_RDONLY)
    logfd = os.open(paths.run / LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(null, 0)
    os.dup2(logfd, 1)
    os.dup2(logfd, 2)
    os.close(null)
    os.close(logfd)
    os.chdir("/")
    os._exit(_foreground(paths, factory, args, ready_fd=w))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
