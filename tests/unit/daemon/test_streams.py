"""Streaming endpoints: logs (tail, follow) and events as chunked JSON lines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from runtime.api import Event, LogLine
from runtime.client import Client
from runtime.errors import Conflict
from runtime.types import ContainerSpec
from tests.unit.daemon.fake_engine import FakeEngine


async def started(engine: FakeEngine, name: str = "web-1") -> str:
    info = await engine.create_container(ContainerSpec(name, "busybox:latest"))
    await engine.start_container(info.id)
    return info.id


async def until(cond: object, timeout: float = 2.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():  # type: ignore[operator]
        assert loop.time() < end, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_logs_all_and_tail(client: Client, engine: FakeEngine) -> None:
    cid = await started(engine)
    for i in range(5):
        await engine.add_log(cid, f"line {i}\n", "stdout" if i % 2 else "stderr")
    lines = [line async for line in client.logs(cid)]
    assert [x.data for x in lines] == [f"line {i}\n" for i in range(5)]
    assert [x.stream for x in lines[:2]] == ["stderr", "stdout"]
    assert all(isinstance(x, LogLine) for x in lines)
    assert [x.data async for x in client.logs(cid, tail=2)] == ["line 3\n", "line 4\n"]
    assert [x.data async for x in client.logs(cid, tail=0)] == []


async def test_logs_follow_streams_new_lines_and_ends_on_exit(
    client: Client, engine: FakeEngine
) -> None:
    cid = await started(engine)
    await engine.add_log(cid, "old\n")
    got: list[str] = []

    async def read() -> None:
        async with client.logs(cid, follow=True, tail=1) as stream:
            async for line in stream:
                got.append(line.data)

    reader = asyncio.ensure_future(read())
    await until(lambda: got == ["old\n"])
    await engine.add_log(cid, "new 1\n")
    await engine.add_log(cid, "x" * 200_000 + "\n")  # a long line crosses chunk boundaries
    await until(lambda: len(got) == 3)
    assert got[1] == "new 1\n" and len(got[2]) == 200_001
    assert not reader.done()
    await engine.exit(cid, 0)
    await asyncio.wait_for(reader, 2)


async def test_abandoned_follow_closes_server_side(client: Client, engine: FakeEngine) -> None:
    cid = await started(engine)
    stream = client.logs(cid, follow=True)
    await stream.open()
    await stream.aclose()
    # the server's generator is waiting on the container's condition; a cancelled handler
    # leaves no waiter behind
    box = engine.containers[cid]
    await until(lambda: not box.changed._waiters)  # type: ignore[attr-defined]


async def test_events_stream_and_unsubscribe_on_disconnect(
    client: Client, engine: FakeEngine
) -> None:
    stream = await client.events().open()  # subscribed once open() returns
    assert engine.bus.subscribers == 1
    cid = await started(engine)
    got: list[Event] = []
    async for ev in stream:
        got.append(ev)
        if len(got) == 2:
            break
    assert [(e.action, e.id, e.name) for e in got] == [
        ("create", cid, "web-1"),
        ("start", cid, "web-1"),
    ]
    assert isinstance(got[0].attributes, dict) and got[0].attributes["name"] == "web-1"
    await stream.aclose()
    await until(lambda: engine.bus.subscribers == 0)


async def test_two_event_subscribers_both_see_everything(
    client: Client, engine: FakeEngine, socket_path: object
) -> None:
    async with Client(socket_path) as other:  # type: ignore[arg-type]
        a = await client.events().open()
        b = await other.events().open()
        await started(engine)
        for s in (a, b):
            assert (await asyncio.wait_for(s.__anext__(), 2)).action == "create"
            await s.aclose()


async def test_error_mid_stream_is_raised_with_its_class(
    client: Client, engine: FakeEngine
) -> None:
    cid = await started(engine)
    await engine.add_log(cid, "before\n")

    async def broken(
        ref: str, follow: bool = False, tail: int | None = None,
        since: float | None = None, until: float | None = None,
    ) -> AsyncIterator[LogLine]:
        yield LogLine("stdout", 1.0, "before\n")
        raise Conflict("container web-1 was removed while streaming", subject="web-1")

    engine.logs = broken  # type: ignore[method-assign]
    stream = client.logs(cid)
    assert (await stream.__anext__()).data == "before\n"
    with pytest.raises(Conflict, match="was removed while streaming") as exc:
        await stream.__anext__()
    assert exc.value.subject == "web-1"
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()


async def test_daemon_shutdown_ends_streams(engine: FakeEngine, short_tmp: object) -> None:
    from runtime.daemon import serve

    path = short_tmp / "s.sock"  # type: ignore[operator]
    runner = await serve(engine, path, shutdown_timeout=0.2)
    async with Client(path) as c:
        stream = await c.events().open()
        reader = asyncio.ensure_future(stream.__anext__())
        await asyncio.sleep(0.05)
        await runner.cleanup()
        with pytest.raises((StopAsyncIteration, ConnectionError)):
            await asyncio.wait_for(reader, 3)


async def test_generator_events_are_subscribed_before_open_returns(
    client: Client, engine: FakeEngine
) -> None:
    async def gen_events() -> AsyncIterator[Event]:  # how runtime.engine writes it
        sub = engine.bus.subscribe()
        try:
            async for ev in sub:
                yield ev
        finally:
            sub.close()

    engine.events = gen_events  # type: ignore[method-assign]
    for _ in range(20):  # no race window between the headers and the subscription
        stream = await client.events().open()
        cid = await started(engine, "web-x")
        ev = await asyncio.wait_for(stream.__anext__(), 2)
        assert (ev.action, ev.id) == ("create", cid)
        await stream.aclose()
        await engine.remove_container(cid, force=True)


async def test_generator_failing_at_once_gets_a_status(client: Client, engine: FakeEngine) -> None:
    cid = await started(engine)

    async def gone(
        ref: str, follow: bool = False, tail: int | None = None,
        since: float | None = None, until: float | None = None,
    ) -> AsyncIterator[LogLine]:
        raise Conflict(f"container {ref} is being removed")
        yield  # pragma: no cover

    engine.logs = gone  # type: ignore[method-assign]
    stream = client.logs(cid)
    with pytest.raises(Conflict, match="is being removed"):
        await stream.open()


async def test_state_change_completes_when_the_client_leaves(
    client: Client, engine: FakeEngine
) -> None:
    engine.create_delay = 0.2
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(
            client.create_container(ContainerSpec("web-1", "busybox:latest")), 0.05
        )
    assert engine.containers == {}
    await until(lambda: len(engine.containers) == 1)  # finished anyway: no half-done create
    assert next(iter(engine.containers.values())).info.name == "web-1"


async def test_wait_is_cancelled_when_the_client_leaves(client: Client, engine: FakeEngine) -> None:
    cid = await started(engine)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(client.wait_container(cid), 0.05)
    box = engine.containers[cid]
    await until(lambda: not box.changed._waiters)  # type: ignore[attr-defined]
