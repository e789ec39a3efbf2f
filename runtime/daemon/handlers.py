"""composerd's request handlers: one per route of runtime.routes, named as the route (and as
the client method that calls it). Each parses and checks its query and body (runtime.rpc),
calls the engine and answers; state changes run to their end even if the client leaves.
"""
from __future__ import annotations

import asyncio
import logging
import os
import platform
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from runtime import identity, rpc
from runtime.api import BuildRequest, CommitRequest, EngineAPI
from runtime.daemon.streams import json_lines, relay, send_tar, websocket
from runtime.daemon.weblib import web
from runtime.errors import EngineError, InvalidArgument
from runtime.types import ContainerSpec, NetworkSpec, VolumeSpec

log = logging.getLogger("composerd")

VERSION = "0.1.0"
ENGINE = web.AppKey("engine", EngineAPI)
# engine calls still running after their client left
ORPHANS: web.AppKey[set[asyncio.Task[Any]]] = web.AppKey("orphans")
# requests being served (streams and websockets while they last), /_ping and /version aside
IN_FLIGHT: web.AppKey[set[int]] = web.AppKey("in_flight")
IDENTITY = web.AppKey("identity", str)  # runtime.identity: the code this daemon runs
T = TypeVar("T")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=rpc.encode(data), status=status, content_type="application/json")


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
    # the code identity rides on the ping every CLI sends first: its check costs no request
    return web.Response(text="OK", headers={identity.HEADER: request.app[IDENTITY]})


async def version(request: web.Request) -> web.Response:
    return _json(
        {
            "version": VERSION,
            "api_version": rpc.API_VERSION,
            "pid": os.getpid(),
            "python": platform.python_version(),
            "engine": type(_engine(request)).__name__,
            "identity": request.app[IDENTITY],
            # what a restart would cut short: a CLI upgrading composerd waits for none of it
            "busy": len(request.app[IN_FLIGHT]) + len(request.app[ORPHANS]),
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


async def logs(request: web.Request) -> web.StreamResponse:
    ref = _ref(request)
    follow = rpc.parse_bool(_q(request, "follow"), "follow")
    tail = rpc.parse_int(_q(request, "tail"), "tail")
    since = rpc.parse_time(_q(request, "since"), "since")
    until = rpc.parse_time(_q(request, "until"), "until")
    engine = _engine(request)
    await engine.inspect_container(ref)  # a missing container is a 404, not a broken stream
    return await json_lines(request, engine.logs(ref, follow=follow, tail=tail, since=since,
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
    return await relay(request, stream)


async def exec_attach(request: web.Request) -> web.StreamResponse:
    """`exec` with its stdio on a websocket (runtime.exec_session). The container is checked
    before the upgrade, so an unknown or stopped container is a 4xx; the upgrade is answered
    before the command starts (the engine's `ready`), so the client's start overlaps the
    launch. A command that can't start is a stream of its message and 126/127, as before."""
    ref = _ref(request)
    raw = _q(request, "request")
    if raw is None:
        raise InvalidArgument("exec-attach needs a request query value (ExecRequest as JSON)")
    req: rpc.ExecRequest = rpc.decode(rpc.ExecRequest, rpc.decode_json(raw.encode()))
    if not req.argv:
        raise InvalidArgument("invalid exec: argv is empty, give the command to run")
    ws = websocket()

    async def upgrade() -> None:
        await ws.prepare(request)

    engine: Any = _engine(request)  # Engine's exec_attach takes `ready` (not EngineAPI's)
    try:
        stream = await engine.exec_attach(
            ref, list(req.argv), user=req.user, env=dict(req.env) or None,
            workdir=req.workdir, tty=req.tty, stdin=req.stdin, detach=req.detach,
            privileged=req.privileged, ready=upgrade)
    except EngineError as e:
        if not ws.prepared:
            raise  # a proper status
        from runtime.exec_session import ExecSession

        stream = ExecSession.failed(126, str(e))  # upgraded: the error is the stream's
    return await relay(request, stream, ws)

async def run_attached(request: web.Request) -> web.StreamResponse:
    """`run`'s one-off: attach, start, relay, remove (rm=1), then its EXIT."""
    from runtime.daemon.oneoff import run_attached as run_one_off

    rm = rpc.parse_bool(_q(request, "rm"), "rm")
    return await run_one_off(request, _engine(request), _ref(request), bool(rm),
                             lambda call: _complete(request, call))


async def top(request: web.Request) -> web.Response:
    return _json(await _engine(request).top(_ref(request)))


async def stats(request: web.Request) -> web.Response:
    return _json(await _engine(request).stats(_ref(request)))


async def stat_path(request: web.Request) -> web.Response:
    path = rpc.container_path(_q(request, "path"))
    return _json(await _engine(request).stat_path(_ref(request), path))

async def get_archive(request: web.Request) -> web.StreamResponse:
    path = rpc.container_path(_q(request, "path"))
    follow = rpc.parse_bool(_q(request, "follow"), "follow")
    st, chunks = await _engine(request).get_archive(_ref(request), path, follow_link=follow)
    return await send_tar(request, chunks, {rpc.PATH_STAT_HEADER: rpc.encode(st).decode()})


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

    return await send_tar(request, all_chunks(), {})


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
    return await json_lines(request, _engine(request).build_image(req))


async def pull_image(request: web.Request) -> web.StreamResponse:
    req: rpc.PullRequest = await _body(request, rpc.PullRequest)
    return await json_lines(request, _engine(request).pull_image(rpc.image_ref(req.ref)))


async def events(request: web.Request) -> web.StreamResponse:
    since = rpc.parse_time(_q(request, "since"), "since")
    until = rpc.parse_time(_q(request, "until"), "until")
    if since is None and until is None:
        return await json_lines(request, _engine(request).events())
    return await json_lines(request, _engine(request).events(since=since, until=until))
