"""composerd's routes are written once, in runtime.routes: the daemon serves exactly that table,
every route has a client method that reaches it, no client writes a route path of its own,
and the Client, the real engine, the fake and the dry run implement EngineAPI with the same
signatures."""
from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
import re
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import runtime
from composer.dryrun import DryRunEngine
from runtime import routes, streamhttp
from runtime.api import BuildRequest, CommitRequest, EngineAPI
from runtime.client import Client
from runtime.daemon import create_app
from runtime.daemon.app import handler_of
from runtime.engine import Engine
from runtime.errors import EngineError
from runtime.types import ContainerSpec, NetworkSpec, VolumeSpec
from tests.unit.daemon.fake_engine import FakeEngine

ALIASES = {(r.method, r.path) for r in routes.ROUTES if r.alias}  # Docker's spellings


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
        socket_path: Path, engine: FakeEngine, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, str]] = []

    async def on_start(_s: Any, _ctx: Any, params: aiohttp.TraceRequestStartParams) -> None:
        seen.append((params.method, params.url.raw_path))

    # the plain calls go through runtime.streamhttp's pool, the streams through aiohttp
    plain = streamhttp.Pool.request

    async def traced(pool: streamhttp.Pool, method: str, target: str, body: bytes | None,
                     headers: dict[str, str]) -> tuple[int, str, bytes]:
        seen.append((method, target.split("?", 1)[0]))
        return await plain(pool, method, target, body, headers)

    monkeypatch.setattr(streamhttp.Pool, "request", traced)

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
                       await client.attach_container(cid), await client.run_attached(cid)):
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
    assert daemon_routes() - ALIASES - hit == set()  # a route no client method uses


@pytest.mark.parametrize("impl", [Client, Engine, FakeEngine, DryRunEngine],
                         ids=lambda c: c.__name__)
def test_engine_api_has_one_signature_everywhere(impl: type) -> None:
    """exec_attach's flags are written out in five places (the protocol, the engine, the
    client, the fake, the dry run): a new one added to only some of them would pass every
    other test."""
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


def canonical(path: str) -> str:
    """aiohttp's canonical form of a template: `{ref:.+}` -> `{ref}`."""
    return re.sub(r"\{(\w+):[^}]*\}", r"{\1}", path)


def test_the_daemon_serves_the_route_table_and_nothing_else() -> None:
    table = [(r.method, canonical(r.path)) for r in routes.ROUTES]
    assert len(set(table)) == len(table), "a route twice in runtime.routes.ROUTES"
    assert daemon_routes() == set(table)


def test_every_route_names_a_client_method_and_a_constant() -> None:
    constants = {name: value for name, value in vars(routes).items()
                 if isinstance(value, routes.Route)}
    assert set(constants.values()) == set(routes.ROUTES), "a Route constant not in ROUTES"
    for const, route in constants.items():
        assert callable(getattr(Client, route.name, None)), f"no Client.{route.name}"
        if not route.alias:
            assert const == route.name.upper(), f"routes.{const} names {route.name}"


CLIENTS = ("client.py", "calls.py", "quickclient.py")
FIRST_SEGMENTS = {r.path.split("/")[1] for r in routes.ROUTES}


def route_literals(source: str) -> list[str]:
    """Strings in `source` (literals, an f-string's text) that start as a route does."""
    return [f"{node.lineno}: {node.value!r}" for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and node.value.startswith("/") and node.value[1:].split("/")[0] in FIRST_SEGMENTS]


def test_no_client_writes_a_route_of_its_own() -> None:
    """The clients take every method and path from runtime.routes."""
    base = Path(runtime.__file__).parent
    found = {name: route_literals((base / name).read_text()) for name in CLIENTS}
    assert found == dict.fromkeys(CLIENTS, [])


def test_the_check_sees_a_route_written_in_a_client() -> None:
    code = ('async def top(self, ref):\n'
            '    return await self._call("GET", f"/containers/{seg(ref)}/top")\n'
            'PING = "/_ping"\nROOT = "/"\nTMP = "/tmp/x"\n')
    assert sorted(route_literals(code)) == ["2: '/containers/'", "3: '/_ping'"]


def test_a_route_without_a_handler_is_refused() -> None:
    with pytest.raises(LookupError, match="no handler nosuch"):
        handler_of(routes.Route("GET", "/nosuch", "nosuch"))
    with pytest.raises(LookupError):
        handler_of(routes.Route("GET", "/x", "_json"))  # a helper is no handler


def test_a_route_quotes_what_it_fills_in() -> None:
    assert routes.INSPECT_CONTAINER.url("a b/c") == "/containers/a%20b%2Fc/json"
    assert routes.INSPECT_IMAGE.url("reg:5000/x/y:1") == "/images/reg:5000/x/y:1/json"
    assert routes.REMOVE_IMAGE.request("x@sha256:ab") == ("DELETE", "/images/x@sha256:ab")
    assert routes.PING.request() == ("GET", "/_ping")
    with pytest.raises(TypeError):
        routes.INSPECT_CONTAINER.url()
    with pytest.raises(TypeError):
        routes.PING.url("extra")
