"""composerd's aiohttp application: the handlers registered from the one route table
(runtime.routes), behind a middleware that turns every error into the JSON body the clients
decode (runtime.rpc). No I/O: runtime.daemon.serving binds it to the socket.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

from runtime import identity, routes, rpc
from runtime.api import EngineAPI
from runtime.daemon import handlers
from runtime.daemon.weblib import web
from runtime.errors import EngineError

log = logging.getLogger("composerd")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def handler_of(route: routes.Route) -> Handler:
    """The handler a route names (runtime.daemon.handlers.<route.name>)."""
    found: Handler | None = getattr(handlers, route.name, None)
    if found is None or route.name.startswith("_"):
        raise LookupError(f"no handler {route.name} for {route.method} {route.path}")
    return found


def create_app(engine: EngineAPI) -> web.Application:
    app = web.Application(client_max_size=rpc.MAX_BODY, middlewares=[_in_flight, _errors])
    app[handlers.ENGINE] = engine
    app[handlers.ORPHANS] = set()
    app[handlers.IN_FLIGHT] = set()
    app[handlers.IDENTITY] = identity.reported()
    for route in routes.ROUTES:
        if route.method == "GET":  # aiohttp answers HEAD on a GET route too
            app.router.add_get(route.path, handler_of(route))
        else:
            app.router.add_route(route.method, route.path, handler_of(route))
    return app


# ---------------------------------------------------------------- requests in flight

_NOT_COUNTED = frozenset({routes.PING.path, routes.VERSION.path})  # a CLI's own look


@web.middleware
async def _in_flight(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Keep the requests being served (a build, a log follow, an exec session) for
    /version's `busy`: a CLI that found composerd on other code restarts it only when idle."""
    if request.path in _NOT_COUNTED:
        return await handler(request)
    serving = request.app[handlers.IN_FLIGHT]
    key = id(request)  # unique while it is being served
    serving.add(key)
    try:
        return await handler(request)
    finally:
        serving.discard(key)


# ---------------------------------------------------------------- errors -> JSON


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

