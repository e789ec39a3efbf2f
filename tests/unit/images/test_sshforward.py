"""runtime.images.sshforward: the relay a RUN --mount=type=ssh sees carries bytes both ways,
has the mount's mode and owner, and once stopped is gone with every connection it relayed."""
from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

from runtime.images.sshforward import AgentRelay


async def test_relay_carries_bytes_and_stop_cuts_everything(tmp_path: Path) -> None:
    async def agent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(100):
            writer.write(b"echo:" + data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_unix_server(agent, str(tmp_path / "agent.sock"))
    relay = AgentRelay(tmp_path / "relay.sock", str(tmp_path / "agent.sock"),
                       mode=0o660, uid=os.getuid(), gid=os.getgid())
    try:
        await relay.start()
        st = os.stat(relay.path)
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660
        reader, writer = await asyncio.open_unix_connection(str(relay.path))
        writer.write(b"ping")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(100), 5) == b"echo:ping"
        await relay.close()
        assert await asyncio.wait_for(reader.read(100), 5) == b""  # the connection was cut
        assert not relay.path.exists()
        writer.close()
    finally:
        relay.stop()
        server.close()
        await server.wait_closed()


async def test_a_gone_agent_closes_the_client(tmp_path: Path) -> None:
    relay = AgentRelay(tmp_path / "relay.sock", str(tmp_path / "missing.sock"), mode=0o600,
                       uid=os.getuid(), gid=os.getgid())
    await relay.start()
    try:
        reader, writer = await asyncio.open_unix_connection(str(relay.path))
        assert await asyncio.wait_for(reader.read(100), 5) == b""
        writer.close()
    finally:
        await relay.close()
