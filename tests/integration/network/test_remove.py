"""Removing a network: the bridge and our rules go side by side, the record after both."""
from __future__ import annotations

import asyncio
import subprocess
import threading
import time

import pytest

from runtime.errors import NotFound
from runtime.network import NetworkError, hostlock, sysctl
from runtime.network import manager as manager_mod
from runtime.network.links import link_exists
from runtime.types import NetworkSpec


def rules(table: str) -> str:
    return subprocess.run(["nft", "list", "table", "ip", table], capture_output=True,
                          text=True).stdout


async def test_remove_takes_bridge_rules_and_record(manager, netname) -> None:
    keep = await manager.create(NetworkSpec(netname("keep")))
    net = await manager.create(NetworkSpec(netname("gone")))
    assert net.bridge in rules(manager.table)
    await manager.remove(net.name)
    assert not await link_exists(net.bridge)
    assert net.bridge not in rules(manager.table) and keep.bridge in rules(manager.table)
    assert [n.name for n in manager.list()] == [keep.name]
    with pytest.raises(NotFound):
        await manager.remove(net.name)
    await manager.remove(keep.name)  # the last one: the table goes too
    assert not await link_exists(keep.bridge) and manager.table not in rules(manager.table)


async def test_a_failed_bridge_deletion_keeps_the_record_for_a_retry(
        manager, netname, monkeypatch: pytest.MonkeyPatch) -> None:
    net = await manager.create(NetworkSpec(netname("retry")))
    real = manager_mod.links.delete_link

    async def refused(name: str) -> None:
        raise NetworkError(f"cannot delete link {name}: Device or resource busy")

    monkeypatch.setattr(manager_mod.links, "delete_link", refused)
    with pytest.raises(NetworkError, match="cannot delete link"):
        await manager.remove(net.name)
    assert [n.name for n in manager.list()] == [net.name]  # still known: `down` again retries
    assert await link_exists(net.bridge)
    monkeypatch.setattr(manager_mod.links, "delete_link", real)
    await manager.remove(net.name)
    assert manager.list() == [] and not await link_exists(net.bridge)


async def test_the_last_removal_waits_for_the_host_lock_off_the_loop(manager, netname) -> None:
    """ip_forward's release waits for the host-wide lock (another engine may hold it): in a
    thread, so composerd answers meanwhile."""
    net = await manager.create(NetworkSpec(netname("lock")))
    held, release = threading.Event(), threading.Event()

    def other_engine() -> None:
        with hostlock.held(sysctl.forward_save_path().parent):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=other_engine)
    holder.start()
    try:
        assert held.wait(10)
        removal = asyncio.ensure_future(manager.remove(net.name))
        t0 = time.monotonic()
        for _ in range(30):  # the loop keeps running while the removal waits for the lock
            await asyncio.sleep(0.01)
        assert time.monotonic() - t0 < 5 and not removal.done()
    finally:
        release.set()
        holder.join()
    await removal
    assert manager.list() == [] and not await link_exists(net.bridge)
