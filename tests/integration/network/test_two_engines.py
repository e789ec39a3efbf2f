"""Two engines on two state roots (two composerds, two test runs) creating networks on one
host at the same time, each in its own process as two composerds are: each gets its own
bridge and subnet, even for the same network name, removing one never removes the other's
bridge, and an explicit subnet already on the other's bridge is a clear conflict, not a DNS
server failing with "address already in use"."""
from __future__ import annotations

import asyncio
import ipaddress
import json
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from runtime.network.firewall import delete_table, table_name
from runtime.network.hostfw import remove_docker_user_rules
from runtime.network.links import delete_link, link_exists

REPO = Path(__file__).resolve().parents[3]

# one engine's network layer: reads commands from stdin, answers one JSON line each
ENGINE = r"""
import asyncio, json, sys
from pathlib import Path
from runtime.network import NetworkManager
from runtime.paths import Paths
from runtime.types import NetworkSpec

async def main():
    m = NetworkManager(Paths(Path(sys.argv[1]) / "root", Path(sys.argv[1]) / "run"), upstreams=[])
    await m.start()
    loop = asyncio.get_running_loop()
    print(json.dumps({"ready": True}), flush=True)
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        verb, name, subnet = json.loads(line)
        try:
            if verb == "create":
                info = await m.create(NetworkSpec(name, subnet=subnet))
                out = {"bridge": info.bridge, "subnet": info.subnet, "gateway": info.gateway}
            else:
                await m.remove(name, force=True)
                out = {}
        except Exception as e:
            out = {"error": type(e).__name__, "message": str(e)}
        print(json.dumps(out), flush=True)
    for name in list(m.store.load().networks):
        await m.remove(name, force=True)
    await m.close()

asyncio.run(main())
"""


class Engine:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", ENGINE, str(self.base), cwd=REPO, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, env={"PYTHONPATH": str(REPO), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        assert await self._answer() == {"ready": True}

    async def _answer(self) -> dict[str, str]:
        assert self.proc is not None and self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 60)
        assert line, "the engine process died"
        return json.loads(line)  # type: ignore[no-any-return]

    async def ask(self, verb: str, name: str, subnet: str | None = None) -> dict[str, str]:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write((json.dumps([verb, name, subnet]) + "\n").encode())
        await self.proc.stdin.drain()
        return await self._answer()

    async def stop(self) -> None:
        """End the process (it removes its networks), then remove whatever it left."""
        if self.proc is not None:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 60)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        state = self.base / "root" / "networks" / "network-state.json"
        if state.exists():
            for rec in json.loads(state.read_text()).get("networks", {}).values():
                await delete_link(rec["bridge"])
        table = table_name(self.base / "root")
        await delete_table(table)
        await remove_docker_user_rules(table)


@pytest.fixture
async def engines(tmp_path: Path) -> AsyncIterator[tuple[Engine, Engine]]:
    a, b = Engine(tmp_path / "a"), Engine(tmp_path / "b")
    try:
        await asyncio.gather(a.start(), b.start())
        yield a, b
    finally:
        await asyncio.gather(a.stop(), b.stop())


async def test_same_name_at_the_same_time_gets_two_bridges_and_subnets(
        engines: tuple[Engine, Engine], netname: Callable[[str], str]) -> None:
    one, two = engines
    name = netname("same")
    for _ in range(2):  # twice: the second round finds the first round's names free again
        a, b = await asyncio.gather(one.ask("create", name), two.ask("create", name))
        assert "error" not in a and "error" not in b, (a, b)
        assert a["bridge"] != b["bridge"]
        assert a["subnet"] != b["subnet"] and a["gateway"] != b["gateway"]
        assert await link_exists(a["bridge"]) and await link_exists(b["bridge"])
        assert await two.ask("remove", name) == {}  # its own bridge, never the other's
        assert await link_exists(a["bridge"]) and not await link_exists(b["bridge"])
        assert await one.ask("remove", name) == {}
        assert not await link_exists(a["bridge"])


async def test_an_explicit_subnet_on_the_other_engines_bridge_is_a_conflict(
        engines: tuple[Engine, Engine], netname: Callable[[str], str]) -> None:
    one, two = engines
    first = await one.ask("create", netname("mine"))
    refused = await two.ask("create", netname("theirs"), first["subnet"])
    assert refused["error"] == "Conflict"
    assert "which is in use on this host" in refused["message"]
    # at the same time, both explicit: one wins, the other is told
    subnet = "10.201.250.0/24"
    x1, x2 = await asyncio.gather(one.ask("create", netname("x1"), subnet),
                                  two.ask("create", netname("x2"), subnet))
    assert sorted(r.get("error", "ok") for r in (x1, x2)) == ["Conflict", "ok"], (x1, x2)


async def test_a_gone_bridge_keeps_its_subnet_and_is_made_again_only_if_still_free(
        engines: tuple[Engine, Engine], netname: Callable[[str], str]) -> None:
    one, two = engines
    name = netname("gone")
    mine = await one.ask("create", name)
    await delete_link(mine["bridge"])  # a reboot of links, a hand's `ip link del`
    # its DNS still holds the gateway: the other engine must not take that subnet (this was
    # "cannot serve dns on 10.200.x.1:53/udp: Address already in use")
    theirs = await two.ask("create", netname("took"))
    assert "error" not in theirs and theirs["subnet"] != mine["subnet"], (mine, theirs)
    refused = await two.ask("create", netname("took2"), mine["subnet"])
    assert refused["error"] == "Conflict", refused
    assert "error" not in await one.ask("create", name)  # `up` again: the bridge is made again
    assert await link_exists(mine["bridge"])
    # gone again, and now an interface of the host has an address in its subnet
    await delete_link(mine["bridge"])
    dummy = f"cmpt{secrets.token_hex(5)}"
    other = str(ipaddress.IPv4Address(mine["gateway"]) + 1)
    try:
        subprocess.run(["ip", "link", "add", dummy, "type", "bridge"], check=True)
        subprocess.run(["ip", "addr", "add", f"{other}/24", "dev", dummy], check=True)
        again = await one.ask("create", name)
        assert again["error"] == "Conflict", again
        assert "its bridge is gone and its subnet" in again["message"]
        assert not await link_exists(mine["bridge"])
    finally:
        await delete_link(dummy)
