"""An in-process event bus: the engine publishes `Event`s, each subscriber reads its own queue.

Publishing never blocks and never awaits: every subscriber has a bounded queue, and a
subscriber whose queue is full is dropped (its iterator ends, `dropped` is set) instead of
slowing the engine down or growing memory without bound. A subscription is registered when
`subscribe()` returns, so an event published right after that call is never missed.

    bus = EventBus()
    sub = bus.subscribe()          # registered now
    bus.publish(event)
    async for ev in sub: ...       # or: async with bus.subscribe() as sub: ...

The last HISTORY events are kept, as Docker keeps a buffer for `events --since/--until`:
`events_between(bus, since, until)` replays those, then follows live ones until `until`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import AsyncIterator, Mapping
from types import TracebackType

from runtime.api import Event

log = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE = 1024
HISTORY = 256  # events kept for --since / --until, as many as Docker keeps

_END = object()  # sentinel put in a queue to end its iterator


def container_attributes(name: str, image: str, labels: Mapping[str, str],
                         **extra: str) -> dict[str, str]:
    """A container event's attributes, as Docker's: its name, image and labels (a project's
    `events` finds its containers' events by their labels), then what the action adds."""
    return {"name": name, "image": image, **labels, **extra}


class Subscription(AsyncIterator[Event]):
    """One subscriber's view of the bus: an async iterator of events, closed on `close()`."""

    def __init__(self, bus: EventBus, maxsize: int) -> None:
        self._bus = bus
        # one spare slot so the end sentinel always fits after the queue filled up
        self._queue: asyncio.Queue[object] = asyncio.Queue(maxsize + 1)
        self._maxsize = maxsize
        self.closed = False
        self.dropped = False  # True when the bus dropped us for being too slow

    def _offer(self, event: Event) -> bool:
        """Queue `event`; return False (and end this subscription) if the queue is full."""
        if self.closed:
            return False
        if self._queue.qsize() >= self._maxsize:
            self.dropped = True
            self._end()
            return False
        self._queue.put_nowait(event)
        return True

    def _end(self) -> None:
        if not self.closed:
            self.closed = True
            self._queue.put_nowait(_END)

    def close(self) -> None:
        """Stop receiving; a pending or later `__anext__` ends the iteration."""
        self._bus._remove(self)
        self._end()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        if self.closed and self._queue.empty():
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is _END:
            raise StopAsyncIteration
        assert isinstance(item, Event)
        return item

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class EventBus:
    """Fan-out of engine events to any number of subscribers; `publish` is synchronous."""

    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self._subs: list[Subscription] = []
        self._queue_size = queue_size
        self._closed = False
        self.history: collections.deque[Event] = collections.deque(maxlen=HISTORY)

    def subscribe(self, maxsize: int | None = None) -> Subscription:
        sub = Subscription(self, maxsize or self._queue_size)
        if self._closed:
            sub._end()
        else:
            self._subs.append(sub)
        return sub

    def publish(self, event: Event) -> None:
        self.history.append(event)
        for sub in list(self._subs):
            if not sub._offer(event):
                self._remove(sub)
                if sub.dropped:
                    log.warning(
                        "event subscriber dropped: its queue of %d events is full", sub._maxsize
                    )

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def close(self) -> None:
        """End every subscription (daemon shutdown)."""
        self._closed = True
        for sub in list(self._subs):
            sub.close()

    def _remove(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)


async def events_between(bus: EventBus, since: float | None = None,
                         until: float | None = None) -> AsyncIterator[Event]:
    """Events from `since` (the kept ones first, when `since` or `until` is given), then live
    ones; the stream ends at `until` (at once when it is past)."""
    sub = bus.subscribe()  # registered before the snapshot: nothing falls in between
    try:
        if since is not None or until is not None:
            for ev in list(bus.history):
                if (since is None or ev.time >= since) and (until is None or ev.time <= until):
                    yield ev
        while True:
            left = None if until is None else until - time.time()
            if left is not None and left <= 0:
                return
            try:
                ev = await asyncio.wait_for(anext(sub), left)
            except (TimeoutError, StopAsyncIteration):
                return
            if since is None or ev.time >= since:
                yield ev
    finally:
        sub.close()
