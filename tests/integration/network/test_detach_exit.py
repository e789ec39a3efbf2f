"""detach after the container's exit: its host veths go with its network namespace (the
kernel deletes each pair in the namespace's clean-up, faster than an RTM_DELLINK of ours at
that moment), and what another process keeps alive is still deleted, after the wait."""
from __future__ import annotations

import subprocess
import time

from runtime.network import links
from runtime.network.manager import VETH_GONE_WAIT
from runtime.network.names import veth_name
from runtime.types import NetworkAttachment, NetworkSpec


async def test_the_veths_of_an_ended_netns_go_with_it(manager, spawn_ns, netname) -> None:
    nets = [await manager.create(NetworkSpec(netname(f"dx{i}"))) for i in range(2)]
    c = spawn_ns()
    await manager.attach("c1", c.pid, [NetworkAttachment(n.name) for n in nets], ["x"])
    hosts = [veth_name("c1", n.name) for n in nets]
    assert all(links.host_index(h) is not None for h in hosts)
    c.proc.kill()
    c.proc.wait()  # the netns's last process is gone: the kernel cleans it up
    await manager.detach("c1", netns_ended=True)
    assert all(links.host_index(h) is None for h in hosts)
    st = manager.store.load()
    assert "c1" not in st.containers and not any(n.leases for n in st.networks.values())


async def test_a_netns_still_held_has_its_veth_deleted_after_the_wait(manager, spawn_ns, netname) -> None:
    net = await manager.create(NetworkSpec(netname("dh")))
    c = spawn_ns()  # alive: its netns (and the veth) stays, as with a container joining it
    await manager.attach("c1", c.pid, [NetworkAttachment(net.name)], ["x"])
    host = veth_name("c1", net.name)
    t0 = time.monotonic()
    await manager.detach("c1", netns_ended=True)
    assert time.monotonic() - t0 >= VETH_GONE_WAIT
    assert links.host_index(host) is None
    assert "c1" not in manager.store.load().containers


async def test_wait_gone_returns_what_is_left(spawn_ns) -> None:
    assert await links.wait_gone(["cmpnosuch0"], 1.0) == []
    c = spawn_ns()
    name = f"cmpwg{c.pid % 100000}"
    subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", "eth0",
                    "netns", str(c.pid)], check=True)
    try:
        t0 = time.monotonic()
        assert await links.wait_gone([name], 0.05) == [name]
        assert 0.05 <= time.monotonic() - t0 < 1.0
        c.proc.kill()
        c.proc.wait()
        assert await links.wait_gone([name], 5.0) == []
    finally:
        subprocess.run(["ip", "link", "del", name], capture_output=True)
