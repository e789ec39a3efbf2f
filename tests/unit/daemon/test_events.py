from __future__ import annotations

import asyncio

from runtime.api import Event
from runtime.events import EventBus


def ev(n: int) -> Event:
    return Event(float(n), "container", "start", f"id{n}", f"c{n}")


async def take(sub: object, n: int) -> list[Event]:
    out = []
    async for e in sub:  # type: ignore[attr-defined]
        out.append(e)
        if len(out) == n:
            break
    return out


async def test_every_subscriber_gets_every_event_in_order() -> None:
    bus = EventBus()
    a, b = bus.subscribe(), bus.subscribe()
    for i in range(5):
        bus.publish(ev(i))
    assert [e.id for e in await take(a, 5)] == [f"id{i}" for i in range(5)]
    assert [e.id for e in await take(b, 5)] == [f"id{i}" for i in range(5)]


async def test_subscription_is_live_when_subscribe_returns() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    bus.publish(ev(1))  # before anyone iterates
    assert (await asyncio.wait_for(sub.__anext__(), 1)).id == "id1"


async def test_slow_subscriber_is_dropped_without_blocking_others() -> None:
    bus = EventBus()
    slow = bus.subscribe(maxsize=3)
    fast = bus.subscribe(maxsize=100)
    for i in range(10):
        bus.publish(ev(i))  # synchronous: would deadlock if it waited for `slow`
    assert slow.dropped and not fast.dropped
    assert bus.subscribers == 1
    got = [e.id for e in await asyncio.wait_for(take(slow, 100), 1)]
    assert got == ["id0", "id1", "id2"]  # what fitted, then the iterator ends
    assert len(await take(fast, 10)) == 10


async def test_close_ends_iteration_and_unsubscribes() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    waiter = asyncio.ensure_future(take(sub, 1))
    await asyncio.sleep(0)
    sub.close()
    assert await asyncio.wait_for(waiter, 1) == []
    assert bus.subscribers == 0
    bus.publish(ev(1))  # nobody to deliver to, no error


async def test_bus_close_ends_all_and_later_subscriptions() -> None:
    bus = EventBus()
    subs = [bus.subscribe() for _ in range(3)]
    bus.close()
    for s in subs:
        assert await asyncio.wait_for(take(s, 1), 1) == []
    late = bus.subscribe()
    assert await asyncio.wait_for(take(late, 1), 1) == []


async def test_async_with_unsubscribes() -> None:
    bus = EventBus()
    async with bus.subscribe() as sub:
        bus.publish(ev(7))
        assert (await sub.__anext__()).id == "id7"
        assert bus.subscribers == 1
    assert bus.subscribers == 0


async def test_since_replays_the_kept_events_then_follows_live_ones() -> None:
    import time

    from runtime.events import events_between

    bus = EventBus()
    for i in (1, 2, 3):
        bus.publish(ev(i))
    stream = events_between(bus, since=2.0)
    first = [e.id for e in [await stream.__anext__(), await stream.__anext__()]]
    assert first == ["id2", "id3"]  # id1 is before --since
    bus.publish(Event(time.time(), "container", "die", "live", "c"))
    assert (await asyncio.wait_for(stream.__anext__(), 1)).id == "live"
    await stream.aclose()
    assert bus.subscribers == 0


async def test_until_in_the_past_ends_after_the_kept_events_and_a_future_one_ends_then() -> None:
    import time

    from runtime.events import events_between

    bus = EventBus()
    for i in (1, 2, 3):
        bus.publish(ev(i))
    got = [e.id async for e in events_between(bus, since=1.0, until=2.0)]
    assert got == ["id1", "id2"]
    t0 = time.monotonic()
    got = [e.id async for e in events_between(bus, until=time.time() + 0.3)]
    assert got == ["id1", "id2", "id3"]
    assert 0.2 < time.monotonic() - t0 < 2
    assert bus.subscribers == 0


def test_the_bus_keeps_only_the_last_history_events() -> None:
    from runtime.events import HISTORY

    bus = EventBus()
    for i in range(HISTORY + 5):
        bus.publish(ev(i))
    assert len(bus.history) == HISTORY and bus.history[0].id == "id5"
