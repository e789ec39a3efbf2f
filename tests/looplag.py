"""How long the event loop stood still while an awaitable ran: the loop-lag tests' one ticker."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")
TICK = 0.005


async def worst_lag(aw: Awaitable[T]) -> tuple[T, float, float]:
    """(aw's result, the longest a 5 ms tick overran while it ran, its elapsed time). A loop
    blocked throughout runs no tick: the worst lag is then the whole elapsed time."""
    lags: list[float] = []
    done = False

    async def ticker() -> None:
        while not done:
            t = time.monotonic()
            await asyncio.sleep(TICK)
            lags.append(time.monotonic() - t - TICK)

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0)  # the ticker is in its first sleep before the work begins
    t0 = time.monotonic()
    try:
        result = await aw
    finally:
        elapsed = time.monotonic() - t0
        done = True
        await tick
    return result, max(lags, default=elapsed), elapsed
