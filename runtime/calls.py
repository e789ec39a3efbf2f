"""The plain request/response calls of the Engine API, shared by both clients of composerd.

`runtime.client.Client` (aiohttp) speaks every route: streams, websockets, uploads.
`runtime.quickclient.QuickClient` (stdlib http.client) speaks only these plain calls and
logs without follow, for the CLI's read-only verbs (`ps`, `port`, `logs`), which so start
without importing aiohttp. Both build their requests here, from the route table
(runtime.routes), and differ only in `_call` (the transport); the errors they raise are the
same.
"""
from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime import access, routes, rpc, serde
from runtime.errors import EngineError

if TYPE_CHECKING:  # imported by the calls that build them: `run`'s quick path needs none
    from runtime.api import ContainerInfo, ImageInfo, NetworkInfo, VolumeInfo

Params = list[tuple[str, str]]


def needs_root() -> str:
    return (
        "permission denied: run composer with sudo, or have an admin add you to the "
        f"{access.group_name()} group (membership is root-equivalent, see docs/security.md)"
    )


class DaemonUnavailable(EngineError, ConnectionError):
    """Nothing answers on the socket, or the connection broke."""

    status = 503


class PermissionDenied(EngineError, PermissionError):
    status = 403


def connect_error(e: BaseException, socket_path: Path) -> EngineError:
    """What a failed connect to the socket means to the user: no daemon, or no permission."""
    os_error = getattr(e, "os_error", e)
    code = getattr(os_error, "errno", None)
    if code in (errno.EACCES, errno.EPERM):
        return PermissionDenied(needs_root(), subject=str(socket_path))
    return DaemonUnavailable(
        f"composerd is not running on {socket_path}: start it with `composerd` "
        "(or `systemctl start composerd`)",
        subject=str(socket_path),
    )


def status_of_kind(kind: Any) -> int:
    for name, cls in rpc._subclasses(EngineError).items():
        if name == kind:
            return cls.status
    return 500


def logs_route(ref: str, follow: bool = False, tail: int | None = None,
               since: float | None = None, until: float | None = None) -> tuple[str, Params]:
    """routes.LOGS: the path and query of a logs request."""
    params = [("follow", str(int(follow)))]
    if tail is not None:
        params.append(("tail", str(tail)))
    if since is not None:
        params.append(("since", repr(float(since))))
    if until is not None:
        params.append(("until", repr(float(until))))
    return routes.LOGS.url(ref), params


def exec_attach_route(ref: str, argv: list[str], user: str | None = None,
                      env: dict[str, str] | None = None, workdir: str | None = None,
                      tty: bool = False, stdin: bool = True, detach: bool = False,
                      privileged: bool = False) -> tuple[str, Params]:
    """routes.EXEC_ATTACH (a websocket): the path and query."""
    req = rpc.ExecRequest(argv=tuple(argv), user=user, env=dict(env or {}), workdir=workdir,
                          tty=tty, stdin=stdin, detach=detach, privileged=privileged)
    return routes.EXEC_ATTACH.url(ref), [("request", rpc.encode(req).decode())]


def attach_refused(status: int, reason: str, error_header: str | None) -> EngineError:
    """What an attach websocket's failed handshake means: composerd's own error (its body
    is repeated in the X-Composer-Error header, which a handshake keeps), else the status."""
    if status < 400:
        return DaemonUnavailable(f"composerd refused the attach: {reason}")
    try:
        body = json.loads(error_header) if error_header else None
    except ValueError:
        body = None
    if isinstance(body, dict):
        return rpc.error_from_body(status, body)
    return rpc.error_from_body(status, {"message": reason or f"status {status}"})


class PlainCalls:
    """The calls that are one request and one JSON answer; `_call` is the transport."""

    async def _call(self, method: str, path: str, *, params: Params | None = None,
                    body: Any = None) -> Any:
        raise NotImplementedError

    async def call_json(self, route: routes.Route, *values: str, params: Params | None = None,
                        body: Any = None) -> Any:
        """A route's JSON answer as it came, no dataclass built: `run`'s quick path
        (composer.cli.quickrun) so imports neither runtime.api nor runtime.types."""
        return await self._call(*route.request(*values), params=params, body=body)

    async def ping(self) -> bool:
        return bool(await self._call(*routes.PING.request()) == "OK")

    async def version(self) -> dict[str, Any]:
        return await self._call(*routes.VERSION.request())  # type: ignore[no-any-return]

    async def inspect_container(self, ref: str) -> ContainerInfo:
        from runtime.api import ContainerInfo

        return serde.from_dict(
            ContainerInfo, await self._call(*routes.INSPECT_CONTAINER.request(ref))
        )

    async def list_containers(
        self, all: bool = False, labels: dict[str, str] | None = None
    ) -> list[ContainerInfo]:
        from runtime.api import ContainerInfo

        params = [("all", str(int(all))), *rpc.format_labels(labels)]
        return [
            serde.from_dict(ContainerInfo, d)
            for d in await self._call(*routes.LIST_CONTAINERS.request(), params=params)
        ]

    async def list_networks(self, labels: dict[str, str] | None = None) -> list[NetworkInfo]:
        from runtime.api import NetworkInfo

        data = await self._call(*routes.LIST_NETWORKS.request(), params=rpc.format_labels(labels))
        return [serde.from_dict(NetworkInfo, d) for d in data]

    async def list_volumes(self, labels: dict[str, str] | None = None) -> list[VolumeInfo]:
        from runtime.api import VolumeInfo

        data = await self._call(*routes.LIST_VOLUMES.request(), params=rpc.format_labels(labels))
        return [serde.from_dict(VolumeInfo, d) for d in data]

    async def list_images(self) -> list[ImageInfo]:
        from runtime.api import ImageInfo

        data = await self._call(*routes.LIST_IMAGES.request())
        return [serde.from_dict(ImageInfo, d) for d in data]

    # the one-off container's calls: `run`'s quick path (composer.cli.quickrun) as well
    async def kill_container(self, ref: str, signal: str = "SIGKILL") -> None:
        await self._call(*routes.KILL_CONTAINER.request(ref), params=[("signal", signal)])

    async def wait_container(self, ref: str) -> int:
        data = await self._call(*routes.WAIT_CONTAINER.request(ref))
        return int(data["exit_code"])

    async def remove_container(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        params = [("force", str(int(force))), ("v", str(int(volumes)))]
        await self._call(*routes.REMOVE_CONTAINER.request(ref), params=params)
