"""`composer run`'s quick path (composer.cli.quickrun + composerd's run_attached route) in a
subprocess against the real daemon app and a fake engine: it imports nothing heavy once its
plan is cached, creates exactly the container the full path creates (every flag it takes),
says what the full path says (output, errors, exit codes, piped stdin), removes the one-off
before it returns, and hands every case it does not serve to the full path."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime import serde
from runtime.attach import CLOSE_IN, ERR, EXIT, IN, OUT, AttachStream, exit_payload, split_frames
from runtime.errors import LaunchError
from runtime.types import ContainerSpec
from tests.unit.daemon.fake_engine import FakeEngine
from tests.unit.daemon.test_quick_cli import cli, heavy

STACK = """\
services:
  app:
    image: busybox:latest
    command: ["sleep", "1"]
    environment: {FROM_STACK: "1", OVER: stack}
    working_dir: /srv
    labels: {team: one}
    ports: ["8080:80"]
  db:
    image: busybox:latest
  web:
    image: busybox:latest
    depends_on: [db]
  hooked:
    image: busybox:latest
    post_start:
      - command: ["true"]
  missing:
    image: nosuch/image:1
"""
BASE = ("-f", "compose.yaml", "-p", "demo")


class OneOff(AttachStream):
    """A one-off's stdio as the engine's follow mode gives it: stdin read until its end,
    then `read: <input>` on stdout, `err` on stderr and EXIT 3."""

    closing = 0.0  # s its close takes (the shim's socket): a cancellation may land there

    def __init__(self) -> None:
        self.out: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()
        self.input = bytearray()

    async def _send(self, data: bytes) -> None:
        for kind, payload in split_frames(bytearray(data)):
            if kind == IN:
                self.input += payload
            elif kind == CLOSE_IN:
                self.out.put_nowait((OUT, b"read: " + bytes(self.input) + b"\n"))
                self.out.put_nowait((ERR, b"err\n"))
                self.out.put_nowait((EXIT, exit_payload(3)))
                self.out.put_nowait(None)

    async def _recv(self) -> tuple[int, bytes] | None:
        return await self.out.get()

    async def close(self) -> None:
        await asyncio.sleep(self.closing)


@pytest.fixture
def one_offs(engine: FakeEngine) -> Iterator[list[ContainerSpec]]:
    """The specs of the containers `run` creates (the engine's attach: OneOff)."""
    created: list[ContainerSpec] = []
    create = engine.create_container

    async def create_container(spec: ContainerSpec) -> Any:
        created.append(spec)
        return await create(spec)

    async def attach_container(ref: str, logs: bool = False, follow: bool = False) -> OneOff:
        engine._box(ref)  # noqa: SLF001  (a 404 as the real one)
        return OneOff()

    engine.create_container = create_container  # type: ignore[method-assign]
    engine.attach_container = attach_container  # type: ignore[method-assign]
    yield created


def normalized(spec: ContainerSpec) -> dict[str, Any]:
    """A spec without what differs from one run to the next (the generated name)."""
    data = serde.to_dict(spec)
    if "-run-" in data["name"]:
        data["name"] = data["name"].rsplit("-", 1)[0]
    return data


FLAGS: list[tuple[str, ...]] = [
    (),
    ("-T",),
    ("-t",),  # a pty one-off (our stdin is no terminal here: no raw mode, signals proxied)
    ("-e", "OVER=cli", "-e", "FROM_HOST", "-e", "EMPTY="),
    ("--entrypoint", "sh -c", "echo hi"),
    ("-w", "/tmp", "-u", "1000:1000"),
    ("--name", "chosen"),
    ("-i", "--no-deps"),
]


@pytest.mark.parametrize("flags", FLAGS, ids=lambda f: " ".join(f) or "plain")
async def test_the_quick_run_creates_the_full_paths_container_and_says_the_same(
        engine: FakeEngine, socket_path: Path, short_tmp: Path, one_offs: list[ContainerSpec],
        flags: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_HOST", "host-value")
    (short_tmp / "compose.yaml").write_text(STACK)
    argv = (*BASE, "run", "--rm", *flags[:-1], "app", *flags[-1:]) if flags and \
        flags[0] == "--entrypoint" else (*BASE, "run", "--rm", *flags, "app")
    await cli(socket_path, short_tmp, *argv, stdin=b"hi")  # makes the plan and the network
    slow = await cli(socket_path, short_tmp, *argv, stdin=b"hi", slow=True)
    assert "asyncio" in slow[3]  # the reference took the full path
    quick = await cli(socket_path, short_tmp, *argv, stdin=b"hi")
    assert heavy(quick[3]) == [], quick[3]
    assert not {"runtime.api", "runtime.types"} & quick[3]  # ~16 ms: JSON is enough here
    assert quick[:3] == slow[:3] == (3, b"read: hi\n", "err"), (quick[:3], slow[:3])
    assert len(one_offs) == 3
    assert normalized(one_offs[2]) == normalized(one_offs[1]) == normalized(one_offs[0])
    if "--name" in flags:
        assert one_offs[2].name == "chosen"
    assert engine.containers == {}  # --rm: gone when the command returned, both ways
    spec = one_offs[2]
    assert spec.ports == () and spec.restart == "no" and spec.stdin_open
    assert spec.tty == ("-t" in flags)
    assert spec.labels["com.docker.compose.oneoff"] == "True"


async def test_a_quick_run_ends_without_the_interpreters_teardown(
        engine: FakeEngine, socket_path: Path, short_tmp: Path,
        one_offs: list[ContainerSpec]) -> None:
    """As the read-only verbs (composer.cli.entry): the whole output, the exit code and the
    atexit functions, but no teardown; the full path still tears down."""
    (short_tmp / "compose.yaml").write_text(STACK)
    argv = (*BASE, "run", "--rm", "-T", "app")
    await cli(socket_path, short_tmp, *argv, stdin=b"hi")  # makes the plan and the network
    quick = await cli(socket_path, short_tmp, *argv, stdin=b"hi", teardown=True)
    slow = await cli(socket_path, short_tmp, *argv, stdin=b"hi", slow=True, teardown=True)
    assert quick[:2] == slow[:2] == (3, b"read: hi\n") and quick[3], (quick, slow)
    assert "TEARDOWN" not in quick[2] and "TEARDOWN" in slow[2], (quick[2], slow[2])


async def test_a_start_that_fails_says_it_and_gives_its_code_both_ways(
        engine: FakeEngine, socket_path: Path, short_tmp: Path,
        one_offs: list[ContainerSpec]) -> None:
    async def start_container(ref: str) -> Any:
        raise LaunchError('exec: "nosuch": executable file not found in $PATH', exit_code=127)

    engine.start_container = start_container  # type: ignore[method-assign]
    (short_tmp / "compose.yaml").write_text(STACK)
    argv = (*BASE, "run", "--rm", "-T", "db", "nosuch")
    await cli(socket_path, short_tmp, *argv)
    slow = await cli(socket_path, short_tmp, *argv, slow=True)
    quick = await cli(socket_path, short_tmp, *argv)
    assert heavy(quick[3]) == []
    assert quick[:3] == slow[:3]
    assert quick[0] == 127 and 'error: exec: "nosuch": executable file not found' in quick[2]
    assert engine.containers == {}


@pytest.mark.parametrize("argv", [
    ("run", "--rm", "web", "true"),  # a dependency to start: `up` of db first
    ("run", "--rm", "hooked", "true"),  # post_start hooks
    ("run", "--rm", "-p", "9000:80", "app"),  # a flag only the full path takes
    ("run", "--rm", "-v", "/tmp:/host", "app"),
    ("run", "-d", "app"),
    ("run", "--rm", "missing", "true"),  # an image to pull (then here: the next is quick)
    ("run", "--rm", "nosuch", "true"),  # the loader's error
], ids=lambda a: " ".join(a))
async def test_what_the_quick_path_does_not_serve_goes_to_the_full_path(
        engine: FakeEngine, socket_path: Path, short_tmp: Path, one_offs: list[ContainerSpec],
        argv: tuple[str, ...]) -> None:
    (short_tmp / "compose.yaml").write_text(STACK)
    first = await cli(socket_path, short_tmp, *BASE, *argv)
    again = await cli(socket_path, short_tmp, *BASE, *argv)  # with its plan cached
    assert "asyncio" in first[3], (argv, first[:3])
    if "missing" in argv:  # pulled by the first
        assert heavy(again[3]) == [] and again[0] == 3
    else:
        assert "asyncio" in again[3], (argv, again[:3])
        assert again[0] == first[0] and (again[0] == 0 or argv[1] != "-d")


async def test_deps_already_there_with_no_deps_is_quick_and_a_new_network_is_not(
        engine: FakeEngine, socket_path: Path, short_tmp: Path,
        one_offs: list[ContainerSpec]) -> None:
    (short_tmp / "compose.yaml").write_text(STACK)
    argv = (*BASE, "run", "--rm", "--no-deps", "-T", "web")
    first = await cli(socket_path, short_tmp, *argv)
    assert "asyncio" in first[3] and "Network demo_default  Created" in first[2]
    quick = await cli(socket_path, short_tmp, *argv)
    assert heavy(quick[3]) == [] and quick[0] == 3
    engine.networks.clear()  # gone: the full path makes it again, and says so
    again = await cli(socket_path, short_tmp, *argv)
    assert "asyncio" in again[3] and "Network demo_default  Created" in again[2]


async def test_a_client_gone_mid_run_leaves_no_rm_one_off(
        engine: FakeEngine, socket_path: Path, one_offs: list[ContainerSpec],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A killed CLI (its socket closed, no websocket CLOSE): composerd removes the `rm`
    one-off itself, also when aiohttp's cancellation of the handler lands in its clean-up
    (a slow stream close here); without rm it stays (as after a detach)."""
    from runtime.quickclient import QuickClient, run_now

    monkeypatch.setattr(OneOff, "closing", 0.3)
    for rm in (True, False):
        info = await engine.create_container(ContainerSpec(f"demo-app-run-{int(rm)}",
                                                           "busybox:latest"))

        def attach_and_die(cid: str = info.id, rm: bool = rm) -> None:
            stream = run_now(QuickClient(socket_path).run_attached(cid, rm=rm))
            stream.ws.sock.close()  # as the kernel does for a SIGKILLed process

        await asyncio.to_thread(attach_and_die)
        for _ in range(100):
            if (info.id in engine.containers) != rm:
                break
            await asyncio.sleep(0.05)
        assert (info.id in engine.containers) == (not rm), rm
        if not rm:
            assert engine.containers[info.id].info.state == "running"


async def test_a_composerd_from_before_the_run_route_gets_the_full_path(
        engine: FakeEngine, short_tmp: Path, one_offs: list[ContainerSpec],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A composerd started before an upgrade (its code has no run route): the quick path's
    created container is removed and the full path serves the run, with the same result."""
    from runtime import routes
    from runtime.daemon.serving import serve

    monkeypatch.setattr(routes, "ROUTES", tuple(r for r in routes.ROUTES
                                                 if r is not routes.RUN_ATTACHED))
    path = short_tmp / "run" / "composer.sock"
    runner = await serve(engine, path)
    try:
        (short_tmp / "compose.yaml").write_text(STACK)
        argv = (*BASE, "run", "--rm", "-T", "app")
        first = await cli(path, short_tmp, *argv, stdin=b"hi")  # makes the plan
        again = await cli(path, short_tmp, *argv, stdin=b"hi")
        assert first[0] == 3 and "Network demo_default  Created" in first[2]
        assert again[:3] == (3, b"read: hi\n", "err"), again[:3]
        assert "asyncio" in again[3]  # the quick path gave it up, the full path ran
        assert len(one_offs) == 3  # the quick path's create, removed, then the full path's
        assert engine.containers == {}
    finally:
        await runner.cleanup()
