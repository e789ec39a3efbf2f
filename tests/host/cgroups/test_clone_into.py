"""On a pure cgroup v2 host the container's init is born in its cgroup (clone3 with
CLONE_INTO_CGROUP, as crun does): the engine writes no cgroup.procs for it, and the init is
there before it execs (its cgroup namespace, made after "go", is rooted at that cgroup)."""
from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from runtime.cgroups import DirCgroup
from runtime.engine import Engine
from runtime.paths import Paths
from runtime.types import ContainerSpec
from tests.host.cgroups.test_delegation import ROOT, assert_gone, cgroup_of


async def test_the_init_is_cloned_into_its_cgroup_not_moved(
        monkeypatch: pytest.MonkeyPatch) -> None:
    moved: list[int] = []
    add_pid = DirCgroup.add_pid

    def spy(self: DirCgroup, pid: int) -> None:
        moved.append(pid)
        add_pid(self, pid)

    monkeypatch.setattr(DirCgroup, "add_pid", spy)
    base = Path(tempfile.mkdtemp(prefix="cmphost"))
    parent = f"composer-ht-{uuid.uuid4().hex[:6]}"
    eng = await Engine.open(Paths(base / "root", base / "run"), cgroup_parent=parent)
    try:
        assert eng.launcher.clones_into_cgroup
        eng.images.ensure_busybox()
        info = await eng.create_container(ContainerSpec(
            name="born", image="busybox", network_mode="none",
            command=("sh", "-c", "cat /proc/self/cgroup; exec sleep 600")))
        await eng.start_container(info.id)
        pid = (await eng.inspect_container(info.id)).pid
        assert isinstance(eng.cgroups.open(info.id), DirCgroup)  # the class spied on
        scope = f"/system.slice/{parent}.scope"
        assert cgroup_of(pid) == f"{scope}/{info.id}"
        assert str(pid) in (ROOT / scope.lstrip("/") / info.id / "cgroup.procs").read_text().split()
        assert moved == []  # no cgroup.procs write: clone3 put it there
        for _ in range(100):  # its own view, written before the sleep
            out = "".join([e.data async for e in eng.logs(info.id)])
            if out:
                break
            await asyncio.sleep(0.05)
        assert out.strip() == "0::/"  # its cgroup namespace's root is that cgroup
        await eng.remove_container(info.id, force=True)
        assert not (ROOT / scope.lstrip("/") / info.id).exists()
    finally:
        for c in await eng.list_containers(all=True):
            await eng.remove_container(c.id, force=True)
        await eng.close()
        eng.cgroups.remove_parent()
        shutil.rmtree(base, ignore_errors=True)
    assert_gone(parent)
