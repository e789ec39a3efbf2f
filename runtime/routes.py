"""composerd's routes, written once: the daemon registers its handlers from this table and both
clients (runtime.client, runtime.quickclient through runtime.calls) build their requests
from it. Standard library only: the CLI's quick path imports it.

Each route's `name` is the handler in runtime.daemon.handlers and the client method that
calls it (tests/unit/daemon/test_routes.py checks both ways, and that the clients write no
path of their own); `doc` is its query, body and answer. Bodies, streams and errors are
runtime.rpc's.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

# aiohttp's path template: `{name}` is one path segment, `{name:regex}` may span '/'
_PLACEHOLDER = re.compile(r"\{(\w+)(:[^}]*)?\}")


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # aiohttp's template, e.g. /containers/{ref}/json
    name: str  # the daemon's handler and the client's method
    doc: str = ""  # query, body -> answer
    alias: bool = False  # another spelling (Docker's) of a route: the daemon's only

    def url(self, *values: str) -> str:
        """The path with `values` in its placeholders, in order, quoted: a `{name}` value
        must stay one segment, a `{name:regex}` one (an image ref) keeps its '/', ':', '@'."""
        it = iter(values)

        def fill(m: re.Match[str]) -> str:
            try:
                value = next(it)
            except StopIteration:
                raise TypeError(f"{self.name}: no value for {{{m.group(1)}}}") from None
            return quote(value, safe="/:@" if m.group(2) else "")

        path = _PLACEHOLDER.sub(fill, self.path)
        if next(it, None) is not None:
            raise TypeError(f"{self.name}: more values than placeholders in {self.path}")
        return path

    def request(self, *values: str) -> tuple[str, str]:
        """(method, path): the first two arguments of a client's `_call`/`_send`."""
        return self.method, self.url(*values)


_C = "/containers/{ref}"
PING = Route("GET", "/_ping", "ping", '-> "OK"')
VERSION = Route("GET", "/version", "version", '-> {"version", "api_version", "pid", ...}')
CREATE_CONTAINER = Route("POST", "/containers/create", "create_container",
                         "ContainerSpec -> 201 ContainerInfo")
LIST_CONTAINERS = Route("GET", "/containers", "list_containers",
                        "?all=1&label=k=v -> [ContainerInfo]")
LIST_CONTAINERS_DOCKER = Route("GET", "/containers/json", "list_containers",
                               "Docker's spelling of GET /containers", alias=True)
INSPECT_CONTAINER = Route("GET", f"{_C}/json", "inspect_container", "-> ContainerInfo")
START_CONTAINER = Route("POST", f"{_C}/start", "start_container", "-> ContainerInfo")
STOP_CONTAINER = Route("POST", f"{_C}/stop", "stop_container", "?timeout=s -> ContainerInfo")
RESTART_CONTAINER = Route("POST", f"{_C}/restart", "restart_container",
                          "?timeout=s -> ContainerInfo (stop, then start)")
KILL_CONTAINER = Route("POST", f"{_C}/kill", "kill_container", "?signal=SIG -> 204")
WAIT_CONTAINER = Route("POST", f"{_C}/wait", "wait_container", '-> {"exit_code": n}')
REMOVE_CONTAINER = Route("DELETE", _C, "remove_container", "?force=1&v=1 -> 204")
PAUSE_CONTAINER = Route("POST", f"{_C}/pause", "pause_container", "-> 204")
UNPAUSE_CONTAINER = Route("POST", f"{_C}/unpause", "unpause_container", "-> 204")
LOGS = Route("GET", f"{_C}/logs", "logs",
             "?follow=1&tail=n&since=t&until=t -> stream of LogLine")
EXEC_RUN = Route("POST", f"{_C}/exec", "exec_run", "ExecRequest -> ExecResult")
EXEC_PREPARE = Route("POST", f"{_C}/exec-prepare", "exec_prepare",
                     "ExecRequest -> ExecTarget (for exec -it)")
ATTACH_CONTAINER = Route("GET", f"{_C}/attach", "attach_container",
                         "?logs=0|1&follow=0|1 -> websocket of attach frames")
EXEC_ATTACH = Route("GET", f"{_C}/exec-attach", "exec_attach",
                    "?request=ExecRequest(JSON) -> websocket of attach frames: the command's "
                    "stdio, then EXIT")
RUN_ATTACHED = Route("GET", f"{_C}/run", "run_attached",
                     "?rm=0|1 -> websocket of attach frames: attached (follow), started, the "
                     "container's stdio, then EXIT (with rm=1 once it is removed); runtime."
                     "daemon.oneoff")
REMOVE_PATHS = Route("POST", f"{_C}/remove-paths", "remove_paths",
                     "RemovePathsRequest -> ArchiveResult")
TOP = Route("GET", f"{_C}/top", "top", "-> [{column: value}]")
STATS = Route("GET", f"{_C}/stats", "stats", "-> Stats")
STAT_PATH = Route("GET", f"{_C}/archive/stat", "stat_path", "?path=p -> PathStat")
GET_ARCHIVE = Route("GET", f"{_C}/archive", "get_archive",
                    "?path=p&follow=1 -> application/x-tar (PathStat in the "
                    "X-Composer-Path-Stat header, JSON)")
PUT_ARCHIVE = Route("PUT", f"{_C}/archive", "put_archive",
                    "?path=dir&copy_uid_gid=1&no_overwrite_dir_non_dir=1, tar body -> 204")
EXPORT_CONTAINER = Route("GET", f"{_C}/export", "export_container", "-> application/x-tar")
COMMIT_CONTAINER = Route("POST", f"{_C}/commit", "commit_container",
                         "CommitRequest -> 201 ImageInfo")
CREATE_NETWORK = Route("POST", "/networks/create", "create_network",
                       "NetworkSpec -> 201 NetworkInfo")
LIST_NETWORKS = Route("GET", "/networks", "list_networks", "?label=k=v -> [NetworkInfo]")
REMOVE_NETWORK = Route("DELETE", "/networks/{name}", "remove_network", "-> 204")
CREATE_VOLUME = Route("POST", "/volumes/create", "create_volume",
                      "VolumeSpec -> 201 VolumeInfo")
LIST_VOLUMES = Route("GET", "/volumes", "list_volumes", "?label=k=v -> [VolumeInfo]")
REMOVE_VOLUME = Route("DELETE", "/volumes/{name}", "remove_volume", "?force=1 -> 204")
LIST_IMAGES = Route("GET", "/images", "list_images", "-> [ImageInfo]")
IMPORT_IMAGE = Route("POST", "/images/import", "import_image", "ImportRequest -> 201 ImageInfo")
LOAD_IMAGE = Route("POST", "/images/load", "load_image", "LoadRequest -> [ImageInfo]")
BUILD_IMAGE = Route("POST", "/images/build", "build_image",
                    "BuildRequest -> stream of BuildProgress")
PULL_IMAGE = Route("POST", "/images/pull", "pull_image", "PullRequest -> stream of PullEvent")
INSPECT_IMAGE = Route("GET", "/images/{ref:.+}/json", "inspect_image",
                      "-> ImageInfo (ref may contain '/')")
REMOVE_IMAGE = Route("DELETE", "/images/{ref:.+}", "remove_image",
                     '?force=1 -> {"deleted": [str]}')
EVENTS = Route("GET", "/events", "events", "?since=t&until=t -> stream of Event (t: epoch s)")

# In the order the daemon registers them (aiohttp tries them in this order).
ROUTES: tuple[Route, ...] = (
    PING, VERSION,
    CREATE_CONTAINER, LIST_CONTAINERS, LIST_CONTAINERS_DOCKER, INSPECT_CONTAINER,
    START_CONTAINER, STOP_CONTAINER, RESTART_CONTAINER, KILL_CONTAINER, WAIT_CONTAINER,
    REMOVE_CONTAINER, PAUSE_CONTAINER, UNPAUSE_CONTAINER, LOGS, EXEC_RUN, EXEC_PREPARE,
    ATTACH_CONTAINER, EXEC_ATTACH, RUN_ATTACHED, REMOVE_PATHS, TOP, STATS, STAT_PATH, GET_ARCHIVE,
    PUT_ARCHIVE, EXPORT_CONTAINER, COMMIT_CONTAINER,
    CREATE_NETWORK, LIST_NETWORKS, REMOVE_NETWORK,
    CREATE_VOLUME, LIST_VOLUMES, REMOVE_VOLUME,
    LIST_IMAGES, IMPORT_IMAGE, LOAD_IMAGE, BUILD_IMAGE, PULL_IMAGE, INSPECT_IMAGE, REMOVE_IMAGE,
    EVENTS,
)
