"""composerd's routes and the Client agree: every route has a client method that reaches it,
and the Client, the real engine and the fake implement EngineAPI with the same signatures."""
from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from runtime.api import BuildRequest, CommitRequest, EngineAPI
from runtime.client import Client
from runtime.daemon import create_app
from runtime.engine import Engine
from runtime.errors import EngineError
from runtime.types import ContainerSpec, NetworkSpec, VolumeSpec
from tests.unit.daemon.fake_engine import FakeEngine

DOCKER_ALIASES = {("GET", "/containers/json")}  # Docker's spelling of GET /containers


def daemon_routes() -> set[tuple[str, str]]:
    app = create_app(FakeEngine())
    return {(r.method, r.resource.canonical) for r in app.router.routes()
            if r.resource is not None and r.method != "HEAD"}


def route_of(method: str, path: str) -> tuple[str, str] | None:
    app = create_app(FakeEngine())
    for r in app.router.routes():
        if r.method == method and r.resource is not None \
                and r.resource._match(path) is not None:  # noqa: SLF001
            return method, r.resource.canonical
    return None


async def reached(coro: Awaitable[Any]) -> None:
    """Run one client call; the engine may refuse it, the route was reached all the same."""
    with contextlib.suppress(EngineError):
        result = await asyncio.wait_for(coro, 10)
        if hasattr(result, "__aiter__"):
            await drain(result)
        elif isinstance(result, tuple) and result and hasattr(result[-1], "__aiter__"):
            await drain(result[-1])


async def drain(it: AsyncIterator[Any]) -> None:
    async for _ in it:
        pass


async def nothing() -> AsyncIterator[bytes]:
    if False:  # pragma: no cover - an empty async generator
        yield b""


async def test_every_route_is_reached_by_a_client_method(
        socket_path: Path, engine: FakeEngine, tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []

    async def on_start(_s: Any, _ctx: Any, params: aiohttp.TraceRequestStartParams) -> None:
        seen.append((params.method, params.url.raw_path))

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    client = Client(socket_path)
    client._http = aiohttp.ClientSession(  # noqa: SLF001 - the same session, traced
        connector=aiohttp.UnixConnector(path=str(socket_path)), trace_configs=[trace])
    try:
        await reached(client.ping())
        await reached(client.version())
        info = await client.create_container(ContainerSpec("routes-1", "busybox:latest"))
        cid = info.id
        await reached(client.start_container(cid))
        for call in (client.inspect_container(cid), client.list_containers(all=True),
                     client.top(cid), client.stats(cid), client.exec_run(cid, ["true"]),
                     client.exec_prepare(cid, ["true"]), client.stat_path(cid, "/"),
                     client.get_archive(cid, "/etc"), client.put_archive(cid, "/", nothing()),
                     client.remove_paths(cid, ["/tmp/x"]),
                     client.commit_container(cid, CommitRequest())):
            await reached(call)
        await drain(client.logs(cid))
        with contextlib.suppress(EngineError):
            await drain(client.export_container(cid))
        for stream in (await client.exec_attach(cid, ["false"]),
                       await client.attach_container(cid)):
            await stream.close()
        for call in (client.pause_container(cid), client.unpause_container(cid),
                     client.restart_container(cid), client.kill_container(cid),
                     client.stop_container(cid), client.wait_container(cid),
                     client.remove_container(cid, force=True)):
            await reached(call)
        await reached(client.create_network(NetworkSpec("routes_net")))
        await reached(client.list_networks())
        await reached(client.remove_network("routes_net"))
        await reached(client.create_volume(VolumeSpec("routes-vol")))
        await reached(client.list_volumes())
        await reached(client.remove_volume("routes-vol"))
        await reached(client.list_images())
        await reached(client.inspect_image("busybox:latest"))
        await reached(client.remove_image("nosuch/x:1"))
        await reached(client.import_image(str(tmp_path / "none.tar"), "x:1"))
        await reached(client.load_image(str(tmp_path / "none.tar")))
        with contextlib.suppress(EngineError):
            await drain(client.build_image(BuildRequest(context=str(tmp_path))))
        with contextlib.suppress(EngineError):
            await drain(client.pull_image("nosuch/x:1"))
        await drain(client.events(since=0, until=time.time()))
    finally:
        await client.close()
    hit = {route_of(m, p) for m, p in seen}
    assert None not in hit, [(m, p) for m, p in seen if route_of(m, p) is None]
    assert daemon_routes() - DOCKER_ALIASES - hit == set()  # a route no client method uses


@pytest.mark.parametrize("impl", [Client, Engine, FakeEngine], ids=lambda c: c.__name__)
def test_engine_api_has_one_signature_everywhere(impl: type) -> None:
    """exec_attach's flags were written out in four places: a new one added to three of them
    would pass every other test."""
    for name, proto in inspect.getmembers(EngineAPI, inspect.isfunction):
        if name.startswith("_"):
            continue
        mine = getattr(impl, name, None)
        assert mine is not None, f"{impl.__name__} has no {name}"
        want = [(p.name, p.kind, p.default) for p in inspect.signature(proto).parameters.values()]
        params = list(inspect.signature(mine).parameters.values())
        got = [(p.name, p.kind, p.default) for p in params]
        # the protocol's parameters, in order; an engine's own extras only after them, optional
        extras = params[len(want):]
        assert got[:len(want)] == want and all(p.default is not p.empty for p in extras), \
            f"{impl.__name__}.{name}{inspect.signature(mine)} is not " \
            f"EngineAPI.{name}{inspect.signature(proto)}"


def test_the_route_check_sees_a_missing_route() -> None:
    assert route_of("GET", "/containers/abc/json") == ("GET", "/containers/{ref}/json")
    assert route_of("GET", "/containers/abc/nosuch") is None
