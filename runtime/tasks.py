"""Ending asyncio tasks without losing the caller's own cancellation.

`with suppress(BaseException): await task` after `task.cancel()` also swallows the
CancelledError meant for the task that waits (e.g. composerd shutting down while a request
cleans up): that task then goes on as if nothing happened. `settle` ignores how the awaited
thing ended, except when the caller itself is being cancelled (`Task.cancelling()`, 3.11).
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any


async def settle(aw: Awaitable[Any]) -> None:
    """Await `aw`, ignoring its result, error or cancellation; re-raise CancelledError when it
    is the caller that was cancelled meanwhile."""
    try:
        await aw
    except asyncio.CancelledError:
        me = asyncio.current_task()
        if me is not None and me.cancelling():
            raise
    except Exception:  # noqa: BLE001 - the point: the caller does not care how it ended
        pass


async def cancel_and_wait(task: asyncio.Future[Any]) -> None:
    """Cancel `task` and wait until it has ended (see `settle`)."""
    task.cancel()
    await settle(task)
