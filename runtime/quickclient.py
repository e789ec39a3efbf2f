"""A client of composerd on the standard library alone, for the CLI's read-only verbs.

`ps`, `port` and `logs` (without follow) are one or a few plain requests: runtime.unixhttp
(a few pages of HTTP/1.1 on a socket; http.client would cost ~13 ms to import) answers them in
a millisecond, where importing aiohttp alone costs ~130 ms.
The calls, routes and error decoding are runtime.calls' (shared with runtime.client.Client);
this module adds only the transport. It blocks while a request is under way, which is what
a one-shot CLI command wants: its coroutines never wait on anything, so `run_now` runs them
without an event loop. `exec_attach` gives a runtime.quickattach.QuickAttach, the exec
websocket on runtime.wsclient (`exec -T`); the other streams, uploads and attaches are
Client's.
"""
from __future__ import annotations

import json
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

from runtime import routes, rpc, serde
from runtime.calls import (
    DaemonUnavailable,
    Params,
    PlainCalls,
    attach_refused,
    connect_error,
    exec_attach_route,
    logs_route,
    status_of_kind,
)
from runtime.errors import EngineError, InvalidArgument
from runtime.unixhttp import Connection, Response

if TYPE_CHECKING:
    from runtime.api import ContainerInfo, LogLine
    from runtime.quickattach import QuickAttach

CONNECT_TIMEOUT = 10.0  # seconds, as Client's sock_connect
T = TypeVar("T")


def run_now(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never waits (QuickClient's calls, QuickAttach's reads and
    writes) to its end, without an event loop; RuntimeError if it does wait on something."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("run_now: the coroutine waited on something (it needs an event loop)")


class QuickClient(PlainCalls):
    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self._conn: Connection | None = None
        self._resp: Response | None = None  # the last answer, maybe unread

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def runs_this_code(self) -> bool:
        """After `ping`: whether composerd runs this code (its X-Composer-Identity header,
        runtime.identity). If not, the CLI takes its full path, which restarts composerd."""
        from runtime import identity

        theirs = self._resp.headers.get(identity.HEADER.lower()) if self._resp is not None else None
        return identity.same_code(theirs)

    def _request(self, method: str, path: str, params: Params | None,
                 body: bytes | None) -> Response:
        url = f"{path}?{urlencode(params)}" if params else path
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if self._conn is not None and self._resp is not None and not self._resp.reusable:
            self._conn.close()  # a log stream left half read: its connection can't be reused
            self._conn = None
        if self._conn is None:
            self._conn = Connection(self.socket_path, connect_timeout=CONNECT_TIMEOUT)
            try:
                self._conn.connect()
            except OSError as e:
                self._conn = None
                raise connect_error(e, self.socket_path) from None
        try:
            self._resp = self._conn.request(method, url, body=body, headers=headers)
            return self._resp
        except OSError as e:
            self._conn.close()
            self._conn = None
            raise DaemonUnavailable(
                f"lost the connection to composerd: {e or type(e).__name__}") from None

    def _read(self, resp: Response) -> bytes:
        try:
            return resp.read()
        except OSError as e:
            raise DaemonUnavailable(f"lost the connection to composerd: {e}") from None

    def _error(self, resp: Response) -> EngineError:
        try:
            raw = self._read(resp)
            body = json.loads(raw) if raw else {}
        except (ValueError, EngineError):
            body = {}
        return rpc.error_from_body(resp.status, body)

    async def _call(self, method: str, path: str, *, params: Params | None = None,
                    body: Any = None) -> Any:
        raw_body = rpc.encode(body) if body is not None else None
        if raw_body is not None and len(raw_body) > rpc.MAX_BODY:
            err = InvalidArgument(rpc.TOO_LARGE)
            err.status = 413
            raise err
        resp = self._request(method, path, params, raw_body)
        if resp.status >= 400:
            raise self._error(resp)
        raw = self._read(resp)
        if resp.status == 204 or not raw:
            return None
        if resp.content_type() == "application/json":
            return json.loads(raw)
        return raw.decode()

    async def list_containers(self, all: bool = False,
                              labels: dict[str, str] | None = None) -> list[ContainerInfo]:
        """As PlainCalls', as ContainerRows: `exec -T` reads only ids and labels, and building
        ContainerInfos costs importing runtime.api's dataclasses (~15 ms) and decoding."""
        params = [("all", str(int(all))), *rpc.format_labels(labels)]
        data = await self._call(*routes.LIST_CONTAINERS.request(), params=params)
        return [ContainerRow(d) for d in data]  # type: ignore[misc]

    def logs(self, ref: str, follow: bool = False, tail: int | None = None,
             since: float | None = None, until: float | None = None) -> AsyncIterator[LogLine]:
        """The log lines there are now (follow is runtime.client.Client's: it streams)."""
        if follow:
            raise InvalidArgument("QuickClient.logs: follow needs runtime.client.Client")
        return self._logs(*logs_route(ref, False, tail, since, until))

    async def _logs(self, path: str, params: Params) -> AsyncIterator[LogLine]:
        from runtime.api import LogLine

        # a connection of its own: several containers' logs may be read at once (one task
        # each), and a stream left half read must not spoil the shared connection
        own = QuickClient(self.socket_path)
        try:
            resp = own._request(routes.LOGS.method, path, params, None)
            if resp.status >= 400:
                raise own._error(resp)
            while True:
                try:
                    line = resp.readline()
                except OSError as e:
                    raise DaemonUnavailable(f"lost the connection to composerd: {e}") from None
                if not line:
                    return
                if not line.strip():
                    continue
                data = json.loads(line)
                if isinstance(data, dict) and set(data) == {"error"}:
                    err = data["error"]
                    status = status_of_kind(err.get("kind")) if isinstance(err, dict) else 500
                    raise rpc.error_from_body(status, err)
                yield serde.from_dict(LogLine, data)
        finally:
            await own.close()

    async def exec_attach(self, ref: str, argv: list[str], user: str | None = None,
                          env: dict[str, str] | None = None, workdir: str | None = None,
                          tty: bool = False, stdin: bool = True, detach: bool = False,
                          privileged: bool = False) -> QuickAttach:
        """As Client.exec_attach: the command starts before the upgrade (an unknown or
        stopped container is composerd's 4xx error), then its stdio as attach frames."""
        return self._websocket(*exec_attach_route(
            ref, argv, user=user, env=env, workdir=workdir, tty=tty, stdin=stdin,
            detach=detach, privileged=privileged))

    async def attach_container(self, ref: str, logs: bool = False,
                               follow: bool = False) -> QuickAttach:
        """As Client.attach_container (`run`'s quick path attaches so before the start)."""
        return self._websocket(routes.ATTACH_CONTAINER.url(ref),
                               [("logs", str(int(logs))), ("follow", str(int(follow)))])

    async def run_attached(self, ref: str, rm: bool = False) -> QuickAttach:
        """As Client.run_attached: attach, start, relay, remove (`rm`), then EXIT."""
        return self._websocket(routes.RUN_ATTACHED.url(ref), [("rm", str(int(rm)))])

    def _websocket(self, path: str, params: Params) -> QuickAttach:
        from runtime.quickattach import QuickAttach  # here: ps, port, logs need none of it
        from runtime.wsclient import HandshakeError, WebSocket

        try:
            ws = WebSocket.connect(self.socket_path, f"{path}?{urlencode(params)}",
                                   max_msg_size=rpc.MAX_BODY)
        except HandshakeError as e:
            raise attach_refused(e.status, e.reason, e.headers.get(rpc.ERROR_HEADER.lower())) \
                from None
        except FileNotFoundError as e:
            raise connect_error(e, self.socket_path) from None
        except OSError as e:
            if isinstance(e, (ConnectionRefusedError, PermissionError)):
                raise connect_error(e, self.socket_path) from None
            raise DaemonUnavailable(f"lost the connection to composerd: {e}") from None
        return QuickAttach(ws)


class ContainerRow:
    """One container of a listing, as composerd sent it: `id`, `name`, `state` and `labels`
    read from the JSON; any other attribute decodes the whole runtime.api.ContainerInfo
    (once) and is read from it, so a row reads like a ContainerInfo."""

    __slots__ = ("_data", "_info", "id", "labels", "name", "state")

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data
        self._info: ContainerInfo | None = None
        self.id: str = data["id"]
        self.name: str = data["name"]
        self.state: str = data.get("state", "created")
        self.labels: dict[str, str] = dict((data.get("spec") or {}).get("labels") or {})

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") or attr in ContainerRow.__slots__:
            raise AttributeError(attr)
        return getattr(self.full(), attr)

    def full(self) -> ContainerInfo:
        """The ContainerInfo this row stands for."""
        if self._info is None:
            from runtime.api import ContainerInfo

            self._info = serde.from_dict(ContainerInfo, self._data)
        return self._info

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ContainerRow):
            other = other.full()
        return self.full() == other

    __hash__ = None  # type: ignore[assignment]  # as ContainerInfo's (its dict fields)

    def __repr__(self) -> str:
        return f"ContainerRow(id={self.id!r}, name={self.name!r}, state={self.state!r})"
