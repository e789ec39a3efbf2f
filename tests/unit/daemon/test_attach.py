"""Attach over composerd: a websocket relaying frames both ways, errors before the upgrade."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from runtime import rpc
from runtime.api import ExecResult
from runtime.attach import CLOSE_IN, EXIT, HELLO, frame, split_frames
from runtime.client import Client
from runtime.daemon import streams
from runtime.engine import Engine
from runtime.errors import Conflict, LaunchError, NotFound
from runtime.process.config import ExecConfig
from runtime.types import ContainerSpec
from tests.unit.daemon.fake_engine import FakeEngine


async def started(engine: FakeEngine, name: str = "web-1") -> str:
    info = await engine.create_container(ContainerSpec(name, "busybox:latest"))
    await engine.start_container(info.id)
    return info.id


async def let_go(engine: FakeEngine) -> None:
    """The daemon closes the engine's side of the stream when the websocket ends."""
    for _ in range(100):
        if engine.attached and engine.attached[-1].closed:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the daemon kept the engine's attach stream open")


async def test_attach_relays_input_resize_and_end(client: Client, engine: FakeEngine) -> None:
    cid = await started(engine)
    await engine.add_log(cid, "before\n")
    stream = await client.attach_container(cid, logs=True)
    assert await asyncio.wait_for(stream.read(), 5) == ("stdout", b"before\n")  # replay
    await stream.write(b"hi\n")
    assert await asyncio.wait_for(stream.read(), 5) == ("stdout", b"echo: hi\n")
    await stream.resize(40, 120)
    assert await asyncio.wait_for(stream.read(), 5) == ("stderr", b"size 40 120\n")
    big = bytes(range(256)) * 1024  # 256 KiB: more than one frame, arrives whole and in order
    await stream.write(big)
    got = b""
    while len(got) < len(big) + 4 * len(b"echo: "):
        item = await asyncio.wait_for(stream.read(), 5)
        assert item is not None and item[0] == "stdout"
        got += item[1]
    assert got.replace(b"echo: ", b"") == big
    await stream.close_stdin()
    assert await asyncio.wait_for(stream.read(), 5) is None  # the engine's stream ended
    await stream.close()
    await let_go(engine)


async def test_attach_without_logs_does_not_replay(client: Client, engine: FakeEngine) -> None:
    cid = await started(engine)
    await engine.add_log(cid, "before\n")
    stream = await client.attach_container(cid)
    await stream.write(b"x")
    assert await asyncio.wait_for(stream.read(), 5) == ("stdout", b"echo: x")
    await stream.close()


async def test_client_leaving_closes_the_engine_side(client: Client, engine: FakeEngine) -> None:
    cid = await started(engine)
    stream = await client.attach_container(cid)
    await stream.close()
    await let_go(engine)


async def test_attach_errors_are_the_engines(client: Client, engine: FakeEngine) -> None:
    with pytest.raises(NotFound):
        await client.attach_container("nosuch")
    info = await engine.create_container(ContainerSpec("idle-1", "busybox:latest"))
    with pytest.raises(Conflict, match="idle-1 is not running"):
        await client.attach_container(info.id)


async def test_a_client_may_not_send_output_frames(
    raw: aiohttp.ClientSession, engine: FakeEngine
) -> None:
    cid = await started(engine)
    async with raw.ws_connect(f"/containers/{cid}/attach") as ws:
        await ws.send_bytes(frame(HELLO, b"1") + frame(1, b"forged output"))
        msg = await asyncio.wait_for(ws.receive(), 5)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ws.close_code == aiohttp.WSCloseCode.UNSUPPORTED_DATA
    await let_go(engine)


async def test_exec_attach_streams_stdin_and_ends_with_the_code(
        client: Client, engine: FakeEngine) -> None:
    cid = await started(engine)
    stream = await client.exec_attach(cid, ["cat"])
    data = bytes(range(256)) * 4096  # 1 MiB: several frames and messages
    await stream.write(data)
    await stream.close_stdin()
    got = b""
    while (item := await asyncio.wait_for(stream.read(), 5)) is not None:
        assert item[0] == "stdout"
        got += item[1]
    assert got == data and stream.exit_code == 0
    await stream.close()
    stream = await client.exec_attach(cid, ["false"])  # a result with a code and no output
    assert await asyncio.wait_for(stream.read(), 5) is None and stream.exit_code == 1
    await stream.close()


async def test_exec_attach_errors_keep_their_class_and_message(
        client: Client, engine: FakeEngine) -> None:
    with pytest.raises(NotFound, match="no such container: nosuch"):
        await client.exec_attach("nosuch", ["true"])
    info = await engine.create_container(ContainerSpec("idle-1", "busybox:latest"))
    with pytest.raises(Conflict, match="idle-1 is not running"):
        await client.exec_attach(info.id, ["true"])


async def test_restart_and_follow_reach_the_engine(client: Client, engine: FakeEngine) -> None:
    cid = await started(engine)
    info = await client.restart_container(cid, timeout=1)
    assert info.state == "running"
    idle = await engine.create_container(ContainerSpec("idle-1", "busybox:latest"))
    stream = await client.attach_container(idle.id, follow=True)  # not running: follow is fine
    await stream.close()


async def exit_frame_then(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Read binary messages until one carries the EXIT frame."""
    buf = bytearray()
    while True:
        msg = await asyncio.wait_for(ws.receive(), 5)
        assert msg.type == aiohttp.WSMsgType.BINARY, msg
        buf += msg.data
        if any(kind == EXIT for kind, _ in split_frames(buf)):
            return


async def test_a_late_client_write_does_not_lose_the_end(
        raw: aiohttp.ClientSession, engine: FakeEngine) -> None:
    """A server dropping the connection right after EXIT made a client's racing write
    (CLOSE_IN) fail and its loop drop the frames it had not read (`exec -T` exited 255,
    1 run in ~40): the server sends CLOSE and waits for the client's answer."""
    cid = await started(engine)
    req = rpc.encode(rpc.ExecRequest(argv=("false",))).decode()
    async with raw.ws_connect(f"/containers/{cid}/exec-attach", params={"request": req},
                              autoclose=False) as ws:
        await exit_frame_then(ws)
        await asyncio.sleep(0.2)  # the server has sent its CLOSE by now
        await ws.send_bytes(frame(CLOSE_IN))  # a late write still lands: the socket is open
        msg = await asyncio.wait_for(ws.receive(), 5)
        assert msg.type == aiohttp.WSMsgType.CLOSE
        await asyncio.sleep(0.2)
        assert not ws.closed and ws._conn is not None  # type: ignore[attr-defined]
        await ws.close()
        assert ws.close_code == aiohttp.WSCloseCode.OK


async def test_a_client_that_never_answers_is_closed_on(
        raw: aiohttp.ClientSession, engine: FakeEngine,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streams, "CLIENT_LINGER", 0.2)
    cid = await started(engine)
    req = rpc.encode(rpc.ExecRequest(argv=("false",))).decode()
    async with raw.ws_connect(f"/containers/{cid}/exec-attach", params={"request": req},
                              autoclose=False) as ws:
        await exit_frame_then(ws)
        assert (await asyncio.wait_for(ws.receive(), 5)).type == aiohttp.WSMsgType.CLOSE
        msg = await asyncio.wait_for(ws.receive(), 5)  # then the connection goes
        assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)


async def test_exec_upgrade_is_answered_before_the_command_starts(
        client: Client, engine: FakeEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command's start is held until the client has its handshake: the client's own
    start overlaps the launch. (Upgrading after the launch, the client would wait here.)"""
    cid = await started(engine)
    go = asyncio.Event()
    run = engine.exec_run

    async def held(ref: str, argv: list[str], **kw: object) -> ExecResult:
        await go.wait()
        return await run(ref, argv, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "exec_run", held)
    stream = await asyncio.wait_for(client.exec_attach(cid, ["false"]), 5)
    assert engine.exec_ready == [(cid, ["false"])] and engine.exec_calls == []
    go.set()
    assert await asyncio.wait_for(stream.read(), 5) is None and stream.exit_code == 1
    assert engine.exec_calls == [(cid, ["false"])]
    await stream.close()


async def test_an_exec_error_after_the_upgrade_is_the_streams(
        client: Client, engine: FakeEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The container stopping between the check and the launch: the websocket is answered,
    so the engine's error comes as the stream's message and 126, as a failed launch."""
    cid = await started(engine)

    async def vanished(ref: str, argv: list[str], **kw: object) -> ExecResult:
        raise Conflict(f"container {ref} is not running: start it first")

    monkeypatch.setattr(engine, "exec_run", vanished)
    stream = await client.exec_attach(cid, ["echo"])
    got = b""
    while (item := await asyncio.wait_for(stream.read(), 5)) is not None:
        got += item[1]
    assert b"is not running" in got and stream.exit_code == 126
    await stream.close()


class _Order:
    """Engine.exec_attach's collaborators, recording the order of the steps."""

    def __init__(self) -> None:
        self.steps: list[str] = []
        self.launcher = self

    async def _exec_config(self, *args: object) -> tuple[None, str, ExecConfig]:
        self.steps.append("check")
        return None, "launched", ExecConfig(argv=("true",))

    async def exec(self, launched: str, cfg: ExecConfig, stdin: bool) -> None:
        self.steps.append("launch")
        raise LaunchError("exec failed: no such file", exit_code=127)


async def test_the_engine_calls_ready_after_the_check_and_before_the_launch() -> None:
    order = _Order()

    async def ready() -> None:
        order.steps.append("ready")

    session = await Engine.exec_attach(order, "c", ["true"], ready=ready)  # type: ignore[arg-type]
    assert order.steps == ["check", "ready", "launch"]
    assert await session.recv_frame() is not None  # the failed launch: its message, then 127


async def test_the_engine_does_not_call_ready_for_a_stopped_container() -> None:
    order = _Order()

    async def stopped(*args: object) -> None:
        raise Conflict("container c is not running")

    order._exec_config = stopped  # type: ignore[method-assign,assignment]

    async def ready() -> None:
        order.steps.append("ready")

    with pytest.raises(Conflict):
        await Engine.exec_attach(order, "c", ["true"], ready=ready)  # type: ignore[arg-type]
    assert order.steps == []
