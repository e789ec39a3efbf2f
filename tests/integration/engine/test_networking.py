"""Network modes through the engine: bridge (names, aliases, ports), host, none, container:."""
from __future__ import annotations

import asyncio
import os
import urllib.request

from runtime.engine import Engine
from runtime.types import ContainerSpec, NetworkAttachment, NetworkSpec, PortBinding
from tests.ports import free_block

HTTPD = ("sh", "-c", "mkdir -p /w && echo hello-$HOSTNAME > /w/index.html && exec httpd -f -p 80 -h /w")


def once_serving(url: str) -> str:
    """Shell that waits (5 s at most) until `url` answers: a started container has exec'd its
    init, not yet opened its port (tini, then sh, then httpd; slow on a loaded host)."""
    return (f"i=0; until wget -q -O /dev/null {url}; do i=$((i+1)); "
            "[ $i -ge 100 ] && break; sleep 0.05; done; ")


async def output(engine: Engine, name: str) -> str:
    await engine.wait_container(name)
    return "".join([line.data async for line in engine.logs(name)])


async def test_bridge_names_aliases_isolation_and_published_port(engine: Engine) -> None:
    await engine.create_network(NetworkSpec(name="it_front"))
    await engine.create_network(NetworkSpec(name="it_other"))
    await engine.create_container(ContainerSpec(
        name="it-web-1", image="busybox", command=HTTPD, hostname="web", init=True,
        networks=(NetworkAttachment("it_front", aliases=("web", "www")),),
        ports=(PortBinding(80, host_ip="127.0.0.1", host_port=0),)))
    web = await engine.start_container("it-web-1")
    assert web.ports and web.ports[0].host_port > 0
    await engine.create_container(ContainerSpec(
        name="it-cli-1", image="busybox",
        command=("sh", "-c", once_serving("http://web/") + "wget -qO- http://web/ && wget -qO- http://www/ && "
                 "wget -qO- http://it-web-1/ && nslookup www | grep -c Address"),
        networks=(NetworkAttachment("it_front", aliases=("cli",)),)))
    await engine.start_container("it-cli-1")
    out = await output(engine, "it-cli-1")
    assert out.count("hello-web") == 3, out
    # a container on another network neither resolves nor reaches it
    await engine.create_container(ContainerSpec(
        name="it-far-1", image="busybox",
        command=("sh", "-c", f"nslookup web >/dev/null 2>&1 && echo resolved; "
                 f"wget -T 2 -qO- http://{web.addresses['it_front']}/ || echo unreachable"),
        networks=(NetworkAttachment("it_other"),)))
    await engine.start_container("it-far-1")
    out = await output(engine, "it-far-1")
    assert "resolved" not in out and "unreachable" in out, out
    # the host reaches the published port on 127.0.0.1
    url = f"http://127.0.0.1:{web.ports[0].host_port}/"
    body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
    assert body == b"hello-web\n"
    infos = {n.name: n for n in await engine.list_networks()}
    assert infos["it_front"].subnet != infos["it_other"].subnet
    for c in ("it-web-1", "it-cli-1", "it-far-1"):
        await engine.remove_container(c, force=True)
    for n in ("it_front", "it_other"):
        await engine.remove_network(n)
    assert not [n for n in os.listdir("/sys/class/net") if n in (infos["it_front"].bridge,)]


async def test_none_mode_has_only_loopback(engine: Engine) -> None:
    await engine.create_container(ContainerSpec(
        name="lonely", image="busybox", network_mode="none",
        command=("sh", "-c", "ls /sys/class/net; ip -o -4 addr; cat /sys/class/net/lo/flags")))
    await engine.start_container("lonely")
    out = await output(engine, "lonely")
    assert out.split("\n")[0].strip() == "lo"
    assert "127.0.0.1" in out
    assert out.split()[-1] == "0x9"  # IFF_UP | IFF_LOOPBACK: up (by the container's init)


async def test_host_mode_sees_the_hosts_interfaces(engine: Engine) -> None:
    await engine.create_container(ContainerSpec(
        name="hosty", image="busybox", network_mode="host", command=("ls", "/sys/class/net")))
    await engine.start_container("hosty")
    out = await output(engine, "hosty")
    assert set(out.split()) >= set(os.listdir("/sys/class/net")) - {"lo"} | {"lo"}


async def test_container_mode_shares_ip_and_localhost(engine: Engine) -> None:
    await engine.create_network(NetworkSpec(name="it_pair"))
    await engine.create_container(ContainerSpec(
        name="it-main-1", image="busybox", command=HTTPD, hostname="main", init=True,
        networks=(NetworkAttachment("it_pair"),)))
    main = await engine.start_container("it-main-1")
    await engine.create_container(ContainerSpec(
        name="it-side-1", image="busybox", network_mode="container:it-main-1",
        command=("sh", "-c", once_serving("http://127.0.0.1/")
                 + "wget -qO- http://127.0.0.1/; ip -o -4 addr show eth0")))
    await engine.start_container("it-side-1")
    out = await output(engine, "it-side-1")
    assert "hello-main" in out
    assert main.addresses["it_pair"] in out
    await engine.remove_container("it-side-1", force=True)
    await engine.remove_container("it-main-1", force=True)
    await engine.remove_network("it_pair")


async def test_host_port_range_publishes_the_first_free_port(engine: Engine) -> None:
    """"LO-HI:80" (as Docker): LO is taken here, so the first container gets LO+1, the next LO+2,
    and inspect/list (what `composer ps` and `composer port` print) report those ports."""
    import socket

    lo = free_block(4)
    busy = socket.socket()
    busy.bind(("0.0.0.0", lo))
    busy.listen(1)
    try:
        await engine.create_network(NetworkSpec(name="it_rng"))
        for n in (1, 2):
            await engine.create_container(ContainerSpec(
                name=f"it-rng-{n}", image="busybox", command=HTTPD, hostname=f"rng{n}", init=True,
                networks=(NetworkAttachment("it_rng"),),
                ports=(PortBinding(80, host_port=lo, host_port_end=lo + 3),)))
        first = await engine.start_container("it-rng-1")
        second = await engine.start_container("it-rng-2")
        assert first.ports == (PortBinding(80, host_port=lo + 1),)
        assert second.ports == (PortBinding(80, host_port=lo + 2),)
        assert (await engine.inspect_container("it-rng-1")).ports == first.ports
        listed = {c.name: c.ports for c in await engine.list_containers()}
        assert listed["it-rng-2"] == second.ports
        for port, host in ((lo + 1, "rng1"), (lo + 2, "rng2")):
            url, body = f"http://127.0.0.1:{port}/", b""
            for _ in range(50):  # httpd may still be starting
                try:
                    body = await asyncio.to_thread(lambda u=url: urllib.request.urlopen(u, timeout=5).read())
                    break
                except OSError:
                    await asyncio.sleep(0.1)
            assert body == f"hello-{host}\n".encode()
        # stopped, it gives its port back; started again, it takes the first free one again
        await engine.stop_container("it-rng-1", 1)
        again = await engine.start_container("it-rng-1")
        assert again.ports == (PortBinding(80, host_port=lo + 1),)
        for n in (1, 2):
            await engine.remove_container(f"it-rng-{n}", force=True)
        await engine.remove_network("it_rng")
    finally:
        busy.close()
