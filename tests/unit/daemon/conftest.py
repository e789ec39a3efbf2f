"""Fixtures: a fake engine served by the real aiohttp app on a unix socket in a short temp dir."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from runtime.client import Client
from runtime.daemon import serve
from tests.unit.daemon.fake_engine import FakeEngine


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temp dir with a short path: unix socket paths must stay under 108 bytes."""
    d = Path(tempfile.mkdtemp(prefix="cmpd-", dir="/tmp"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
async def engine() -> AsyncIterator[FakeEngine]:
    e = FakeEngine()
    yield e
    await e.close()


@pytest.fixture
async def socket_path(engine: FakeEngine, short_tmp: Path) -> AsyncIterator[Path]:
    path = short_tmp / "run" / "composer.sock"
    runner = await serve(engine, path)
    try:
        yield path
    finally:
        await runner.cleanup()


@pytest.fixture
async def client(socket_path: Path) -> AsyncIterator[Client]:
    async with Client(socket_path) as c:
        yield c


@pytest.fixture
async def raw(socket_path: Path) -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP session on the socket, for requests the Client would never send."""
    async with aiohttp.ClientSession(
        base_url="http://composerd", connector=aiohttp.UnixConnector(path=str(socket_path))
    ) as s:
        yield s
