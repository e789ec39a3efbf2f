"""links.delete_link: a raw RTM_DELLINK from a thread. The kernel deletes the link inside the
send (rtnl lock, synchronize_net: tens of ms for a bridge), which used to stand composerd's
loop still for that long on every network removal, and for each container's host veth."""
from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest

from runtime.network.links import delete_link, host_index
from tests.looplag import worst_lag


@pytest.fixture
def bridge() -> Iterator[str]:
    name = f"cmpdl{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "link", "del", name], capture_output=True)


async def test_a_bridge_goes_without_holding_the_loop(bridge: str) -> None:
    subprocess.run(["ip", "link", "set", bridge, "up"], check=True)
    _, lag, elapsed = await worst_lag(delete_link(bridge))
    assert host_index(bridge) is None
    # the deletion's time passes in the thread: the loop ticks throughout
    assert lag < max(0.02, elapsed / 2), (lag, elapsed)


async def test_a_missing_link_is_no_error(bridge: str) -> None:
    await delete_link(bridge)
    await delete_link(bridge)  # gone already
    await delete_link("cmpnosuch0")
