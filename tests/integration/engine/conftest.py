from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator

import pytest

from runtime.engine import Engine
from runtime.paths import Paths
from tests.leaks import Scope, take
from tests.sweep import claim


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    base, parent = claim("cmpeng", "it")
    scope = Scope.for_base(base, parent)
    before = take(scope)
    eng = await Engine.open(Paths(base / "root", base / "run"), cgroup_parent=parent)
    eng.images.ensure_busybox()
    try:
        yield eng
    finally:
        scope.learn()
        try:
            for c in await eng.list_containers(all=True):  # the test's own clean-up, by the API
                await eng.remove_container(c.id, force=True, volumes=True)
            for n in await eng.list_networks():
                await eng.networks.remove(n.name)
            await eng.close()
            leaks = take(scope).leaks_since(before)  # before any forced clean-up
        finally:  # also when the clean-up itself failed: no cgroup parent or dir is left
            with contextlib.suppress(Exception):
                eng.cgroups.remove_parent()
            shutil.rmtree(base, ignore_errors=True)
        assert not leaks, f"left behind: {leaks}"
