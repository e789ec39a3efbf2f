"""runtime.tasks: a child's end is ignored, the caller's own cancellation is not."""
from __future__ import annotations

import asyncio

import pytest

from runtime.tasks import cancel_and_wait, settle


async def test_a_cancelled_child_is_waited_for_and_forgotten() -> None:
    ended = asyncio.Event()

    async def child() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            ended.set()

    task = asyncio.create_task(child())
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert task.cancelled() and ended.is_set()


async def test_a_failed_child_is_forgotten() -> None:
    async def boom() -> None:
        raise ValueError("x")

    await settle(asyncio.create_task(boom()))


async def test_the_callers_cancellation_goes_through() -> None:
    """The old `with suppress(BaseException): await task` swallowed this one."""
    after = []

    async def child() -> None:
        await asyncio.shield(asyncio.sleep(60))

    async def cleaner() -> None:
        task = asyncio.create_task(child())
        await asyncio.sleep(0)
        await cancel_and_wait(asyncio.ensure_future(asyncio.sleep(60)))  # a child: forgotten
        await settle(task)  # cancelled while waiting here
        after.append("went on")

    outer = asyncio.create_task(cleaner())
    await asyncio.sleep(0.05)
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
    assert after == []
