"""The Engine API's contract: what composer's layers rely on from any EngineAPI.

One set of checks runs against both engines the project has: the unit tests' fake
(tests/unit/daemon/fake_engine.py, `tests/unit/daemon/test_engine_contract.py`, always) and
the real one (runtime.engine.Engine, `tests/integration/engine/test_engine_contract.py`, as
root). A behaviour the orchestration relies on is written here once; when the two engines
disagree, the real one (and Docker, which users compare us with) is the reference and the
fake is fixed.

Each check takes a fresh engine with the busybox image and leaves what it made removed.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from runtime.api import EngineAPI
from runtime.errors import Conflict, NotFound
from runtime.types import ContainerSpec, Mount, NetworkAttachment, NetworkSpec, VolumeSpec

Check = Callable[[EngineAPI], Awaitable[None]]
CHECKS: dict[str, Check] = {}

NET = "cmpcontract"  # the real engine names its bridge after the network's subnet, not this


def check(fn: Check) -> Check:
    CHECKS[fn.__name__] = fn
    return fn


def sleeper(name: str, **kw: object) -> ContainerSpec:
    """A container that runs until it is stopped (tini forwards the stop signal)."""
    return ContainerSpec(name, "busybox:latest", command=("sleep", "600"), init=True,
                         stop_grace_period=5.0, network_mode="none", **kw)  # type: ignore[arg-type]


def names(infos: list[object]) -> set[str]:
    return {i.name for i in infos}  # type: ignore[attr-defined]


@check
async def a_container_lives_and_goes(api: EngineAPI) -> None:
    info = await api.create_container(sleeper("life-1"))
    assert info.state == "created"
    with pytest.raises(Conflict):
        await api.create_container(sleeper("life-1"))  # one name, one container
    assert (await api.inspect_container("life-1")).id == info.id
    assert (await api.inspect_container(info.id)).name == "life-1"
    assert "life-1" not in names(await api.list_containers())
    assert "life-1" in names(await api.list_containers(all=True))
    assert (await api.start_container(info.id)).state == "running"
    assert "life-1" in names(await api.list_containers())
    stopped = await api.stop_container(info.id, timeout=5)
    assert stopped.state == "exited"
    # what `up --exit-code-from` and `wait` report: the code of a process the stop signal ended
    code = await api.wait_container(info.id)
    assert code == stopped.exit_code == (await api.inspect_container(info.id)).exit_code == 143
    assert "life-1" not in names(await api.list_containers())
    await api.remove_container(info.id)
    with pytest.raises(NotFound):
        await api.inspect_container(info.id)
    assert "life-1" not in names(await api.list_containers(all=True))


@check
async def unknown_references_are_not_found(api: EngineAPI) -> None:
    for call in (api.inspect_container, api.start_container, api.stop_container,
                 api.remove_container, api.pause_container, api.wait_container):
        with pytest.raises(NotFound):
            await call("nosuch")  # type: ignore[operator]
    with pytest.raises(NotFound):
        await api.remove_network("nosuch")
    with pytest.raises(NotFound):
        await api.remove_volume("nosuch")
    with pytest.raises(NotFound):
        await api.inspect_image("nosuch:latest")
    await api.remove_volume("nosuch", force=True)  # force: a missing volume is no error


@check
async def a_running_container_is_removed_only_by_force(api: EngineAPI) -> None:
    info = await api.create_container(sleeper("force-1"))
    await api.start_container(info.id)
    with pytest.raises(Conflict):
        await api.remove_container(info.id)
    assert (await api.inspect_container(info.id)).state == "running"
    await api.remove_container(info.id, force=True)
    assert "force-1" not in names(await api.list_containers(all=True))


@check
async def a_paused_container_counts_as_running(api: EngineAPI) -> None:
    info = await api.create_container(sleeper("pause-1"))
    with pytest.raises(Conflict):
        await api.pause_container(info.id)  # not running
    await api.start_container(info.id)
    with pytest.raises(Conflict):
        await api.unpause_container(info.id)  # not paused
    await api.pause_container(info.id)
    listed = {c.name: c.state for c in await api.list_containers()}
    assert listed.get("pause-1") == "paused"  # `ps` shows it, as `docker ps` does
    await api.unpause_container(info.id)
    assert (await api.inspect_container(info.id)).state == "running"
    with pytest.raises(Conflict):
        await api.unpause_container(info.id)  # running again: not paused
    await api.kill_container(info.id, "SIGKILL")
    assert await asyncio.wait_for(api.wait_container(info.id), 30) == 137
    with pytest.raises(Conflict):
        await api.kill_container(info.id)  # not running any more
    await api.remove_container(info.id)


@check
async def creating_a_network_again_returns_it(api: EngineAPI) -> None:
    """`up` creates its networks every time: an existing one is returned as it is."""
    first = await api.create_network(NetworkSpec(NET, labels={"k": "v"}))
    again = await api.create_network(NetworkSpec(NET, labels={"k": "v"}))
    assert (again.name, again.subnet) == (first.name, first.subnet)
    assert [n.name for n in await api.list_networks({"k": "v"})] == [NET]
    await api.remove_network(NET)
    assert NET not in {n.name for n in await api.list_networks()}
    with pytest.raises(NotFound):
        await api.remove_network(NET)


@check
async def a_network_in_use_is_not_removed(api: EngineAPI) -> None:
    await api.create_network(NetworkSpec(NET))
    spec = ContainerSpec("net-1", "busybox:latest", command=("sleep", "600"), init=True,
                         stop_grace_period=5.0, networks=(NetworkAttachment(NET),))
    info = await api.create_container(spec)
    await api.start_container(info.id)
    with pytest.raises(Conflict):
        await api.remove_network(NET)
    await api.stop_container(info.id, timeout=5)
    await api.remove_network(NET)  # a stopped container does not hold it (as `down` does)
    await api.remove_container(info.id)


@check
async def a_volume_is_created_once_and_kept_while_used(api: EngineAPI) -> None:
    first = await api.create_volume(VolumeSpec("cmpcontract-data", labels={"k": "v"}))
    again = await api.create_volume(VolumeSpec("cmpcontract-data", labels={"k": "v"}))
    assert again.mountpoint == first.mountpoint
    assert [v.name for v in await api.list_volumes({"k": "v"})] == ["cmpcontract-data"]
    info = await api.create_container(
        sleeper("vol-1", mounts=(Mount("volume", "/data", "cmpcontract-data"),)))
    for force in (False, True):  # in use: refused, even with force (as Docker)
        with pytest.raises(Conflict):
            await api.remove_volume("cmpcontract-data", force=force)
    await api.remove_container(info.id)
    await api.remove_volume("cmpcontract-data")
    assert "cmpcontract-data" not in {v.name for v in await api.list_volumes()}
