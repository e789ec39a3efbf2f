from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runtime.images import registry_client
from runtime.images.store import ImageStore
from runtime.paths import Paths
from tests.unit.registry.fake_registry import FakeRegistry


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No real ~/.docker/config.json; quick retries."""
    (tmp_path / "dockercfg").mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "dockercfg"))
    monkeypatch.setattr(registry_client, "RETRY_DELAY", 0.01)


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(Paths(root=tmp_path / "state", run=tmp_path / "run"))


@pytest.fixture
async def registry() -> AsyncIterator[FakeRegistry]:
    reg = FakeRegistry()
    await reg.start()
    try:
        yield reg
    finally:
        await reg.close()


@pytest.fixture
def domain(registry: FakeRegistry) -> str:
    assert registry.server is not None
    return f"127.0.0.1:{registry.server.port}"
