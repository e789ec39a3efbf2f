"""runtime.quickclient.QuickClient (runtime.unixhttp, the standard library) against the real
daemon app and a fake engine: the same answers and errors as runtime.client.Client for the
calls it makes. QuickClient blocks while a request is under way, so it runs in a thread with its own loop
while the server runs on the test's loop."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from runtime.api import LogLine
from runtime.calls import DaemonUnavailable
from runtime.client import Client
from runtime.errors import Conflict, NotFound
from runtime.quickclient import QuickClient
from runtime.types import ContainerSpec, NetworkSpec, VolumeSpec
from tests.unit.daemon.fake_engine import FakeEngine

T = TypeVar("T")
LABELS = {"com.docker.compose.project": "demo", "com.docker.compose.service": "web"}


async def quick(path: Path, fn: Callable[[QuickClient], Awaitable[T]]) -> T:
    async def go() -> T:
        q = QuickClient(path)
        try:
            return await fn(q)
        finally:
            await q.close()

    return await asyncio.to_thread(asyncio.run, go())


async def collect(q: QuickClient, ref: str, **kw: Any) -> list[LogLine]:
    return [line async for line in q.logs(ref, **kw)]


async def test_plain_calls_answer_as_client_does(client: Client, engine: FakeEngine,
                                                 socket_path: Path) -> None:
    web = await client.create_container(ContainerSpec("demo-web-1", "busybox:latest",
                                                       labels=LABELS))
    await client.create_container(ContainerSpec("other-db-1", "busybox:latest",
                                                labels={"com.docker.compose.project": "o=x"}))
    await client.create_network(NetworkSpec("demo_default", labels=LABELS))
    await client.create_volume(VolumeSpec("demo_data", labels=LABELS))
    assert await quick(socket_path, lambda q: q.ping()) is True
    assert (await quick(socket_path, lambda q: q.version()))["engine"] == "FakeEngine"
    for labels in ({"com.docker.compose.project": "demo"}, {"com.docker.compose.project": "o=x"},
                   None):
        assert await quick(socket_path, lambda q, labels=labels: q.list_containers(all=True, labels=labels)) \
            == await client.list_containers(all=True, labels=labels)
    assert await quick(socket_path, lambda q: q.inspect_container("demo-web-1")) == \
        await client.inspect_container(web.id)
    assert await quick(socket_path, lambda q: q.list_networks(LABELS)) == \
        await client.list_networks(LABELS)
    assert await quick(socket_path, lambda q: q.list_volumes(LABELS)) == \
        await client.list_volumes(LABELS)
    assert await quick(socket_path, lambda q: q.list_images()) == await client.list_images()


async def test_errors_are_the_daemons(client: Client, socket_path: Path) -> None:
    with pytest.raises(NotFound) as want:
        await client.inspect_container("nope")
    with pytest.raises(NotFound) as got:
        await quick(socket_path, lambda q: q.inspect_container("nope"))
    assert str(got.value) == str(want.value) and got.value.subject == want.value.subject


async def test_logs_all_and_tail_on_one_connection(engine: FakeEngine, socket_path: Path) -> None:
    info = await engine.create_container(ContainerSpec("web-1", "busybox:latest"))
    await engine.start_container(info.id)
    for i in range(5):
        await engine.add_log(info.id, f"line {i}\n", "stdout" if i % 2 else "stderr")

    async def go(q: QuickClient) -> tuple[list[LogLine], list[str], list[str], bool]:
        every = await collect(q, info.id)
        stream = q.logs(info.id)
        first = [(await stream.__anext__()).data]  # left half read: the next call still works
        tail = [x.data for x in await collect(q, info.id, tail=2)]
        return every, first, tail, await q.ping()

    every, first, tail, pong = await quick(socket_path, go)
    assert [x.data for x in every] == [f"line {i}\n" for i in range(5)]
    assert [x.stream for x in every[:2]] == ["stderr", "stdout"]
    assert first == ["line 0\n"] and tail == ["line 3\n", "line 4\n"] and pong


async def test_logs_error_mid_stream(engine: FakeEngine, socket_path: Path) -> None:
    info = await engine.create_container(ContainerSpec("web-1", "busybox:latest"))

    async def broken(ref: str, follow: bool = False, tail: int | None = None,
                     since: float | None = None, until: float | None = None,
                     ) -> AsyncIterator[LogLine]:
        yield LogLine("stdout", 1.0, "before\n")
        raise Conflict("container web-1 was removed while streaming", subject="web-1")

    engine.logs = broken  # type: ignore[method-assign]

    async def go(q: QuickClient) -> list[str]:
        seen: list[str] = []
        with pytest.raises(Conflict, match="was removed while streaming"):
            async for line in q.logs(info.id):
                seen.append(line.data)
        return seen

    assert await quick(socket_path, go) == ["before\n"]


async def test_follow_is_clients(socket_path: Path) -> None:
    with pytest.raises(Exception, match="follow needs runtime.client.Client"):
        await quick(socket_path, lambda q: collect(q, "x", follow=True))


async def test_no_daemon_is_daemon_unavailable(short_tmp: Path) -> None:
    with pytest.raises(DaemonUnavailable, match="composerd is not running on"):
        await QuickClient(short_tmp / "none.sock").ping()


def test_importing_it_loads_no_aiohttp() -> None:
    code = "import sys, runtime.quickclient; print(' '.join(sorted(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60).stdout.split()
    assert "runtime.quickclient" in loaded
    assert not [m for m in loaded if m.split(".")[0] in ("aiohttp", "yarl", "multidict")]


CLI = ("import sys\nfrom composer.cli import main\nrc = main(sys.argv[1:])\n"
       "print(' '.join(sorted(sys.modules)), file=sys.stderr)\nsys.exit(rc)")


async def cli(socket_path: Path, tmp: Path, *argv: str) -> tuple[int, str, set[str]]:
    """`composer ARGV` in a subprocess on the fake daemon; (exit code, stdout, modules)."""
    import os

    repo = str(Path(__file__).resolve().parents[3])  # this checkout, not an installed one
    env = dict(os.environ, COMPOSER_RUN=str(socket_path.parent), COMPOSER_ROOT=str(tmp / "r"),
               PYTHONPATH=os.pathsep.join(filter(None, (repo, os.environ.get("PYTHONPATH")))))
    p = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLI, *argv, cwd=tmp, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(p.communicate(), 60)
    *errors, modules = err.decode().splitlines() or [""]
    assert p.returncode is not None
    return p.returncode, out.decode() + "".join(errors), set(modules.split())


@pytest.mark.parametrize("argv", [("ps",), ("ps", "-a", "--format", "json"), ("port", "web", "80"),
                                  ("logs", "--no-log-prefix", "web")])
async def test_read_only_verbs_run_without_aiohttp(engine: FakeEngine, socket_path: Path,
                                                   short_tmp: Path, argv: tuple[str, ...]) -> None:
    from runtime.types import PortBinding

    labels = {**LABELS, "com.docker.compose.container-number": "1",
              "com.docker.compose.oneoff": "False"}
    info = await engine.create_container(ContainerSpec("demo-web-1", "busybox:latest",
                                                       labels=labels))
    await engine.start_container(info.id)
    box = engine.containers[info.id]  # the fake binds no ports: as if 8080 was chosen
    box.info = dataclasses.replace(
        box.info, ports=(PortBinding(80, host_ip="127.0.0.1", host_port=8080),))
    await engine.add_log(info.id, "hello\n")
    code, out, modules = await cli(socket_path, short_tmp, "-p", "demo", *argv)
    assert code == 0, out
    assert not {m.split(".")[0] for m in modules} & {"aiohttp", "networkx", "rich"}, sorted(
        m for m in modules if m.startswith(("aiohttp", "networkx", "runtime.client")))
    assert "runtime.quickclient" in modules
    want = {"ps": "demo-web-1", "port": "127.0.0.1:8080", "logs": "hello"}[argv[0]]
    assert want in out


async def test_two_log_streams_read_in_turn(engine: FakeEngine, socket_path: Path) -> None:
    ids = []
    for name in ("web-1", "db-1"):
        info = await engine.create_container(ContainerSpec(name, "busybox:latest"))
        for i in range(3):
            await engine.add_log(info.id, f"{name} {i}\n")
        ids.append(info.id)

    async def go(q: QuickClient) -> list[str]:
        a, b = q.logs(ids[0]), q.logs(ids[1])
        got = []
        for _ in range(3):  # as two tasks would when each awaits in between
            got += [(await a.__anext__()).data, (await b.__anext__()).data]
        return got

    assert await quick(socket_path, go) == [f"{n} {i}\n" for i in range(3)
                                            for n in ("web-1", "db-1")]


async def test_container_rows_read_like_container_infos(client: Client, engine: FakeEngine,
                                                        socket_path: Path) -> None:
    web = await client.create_container(ContainerSpec("demo-web-1", "busybox:latest",
                                                       labels=LABELS))
    rows = await quick(socket_path, lambda q: q.list_containers(all=True))
    (row,) = rows
    assert (row.id, row.name, row.state, row.labels) == (web.id, web.name, web.state, web.labels)
    assert row._info is None  # noqa: SLF001 - nothing decoded for those four
    assert (row.image, row.spec, row.created_at) == (web.image, web.spec, web.created_at)
    assert row == web and web == row and row.full() == web
