from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runtime.engine import Engine
from runtime.paths import Paths
from tests.leaks import snapshot


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    base = Path(tempfile.mkdtemp(prefix="cmpeng"))
    before = snapshot(scope=str(base))
    parent = f"composer-it-{os.getpid()}-{base.name[-6:]}"
    eng = await Engine.open(Paths(base / "root", base / "run"), cgroup_parent=parent)
    eng.images.ensure_busybox()
    try:
        yield eng
    finally:
        for c in await eng.list_containers(all=True):
            await eng.remove_container(c.id, force=True, volumes=True)
        for n in await eng.list_networks():
            await eng.networks.remove(n.name)
        await eng.close()
        eng.cgroups.remove_parent()
        shutil.rmtree(base, ignore_errors=True)
        leaks = snapshot(scope=str(base)).leaks_since(before)
        assert not leaks, f"left behind: {leaks}"
