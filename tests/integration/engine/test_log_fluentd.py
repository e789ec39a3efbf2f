"""The fluentd logging driver on the real engine: the shim sends each output line to a
Forward endpoint (here a TCP server of the test that decodes the msgpack it gets), `logs`
still reads the local cache, and a container whose endpoint is not there does not start
unless fluentd-async is set (as Docker)."""
from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from runtime.engine import Engine
from runtime.errors import EngineError
from runtime.types import ContainerSpec, LogConfig
from tests.unit.test_fluentd import unpack_all


async def _endpoint() -> tuple[asyncio.base_events.Server, int, list[bytes], asyncio.Event]:
    chunks: list[bytes] = []
    closed = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            chunks.append(data)
        writer.close()
        closed.set()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], chunks, closed


async def test_fluentd_gets_every_line_and_logs_still_work(engine: Engine) -> None:
    server, port, chunks, closed = await _endpoint()
    try:
        logging = LogConfig("fluentd", fluentd_address=f"tcp://127.0.0.1:{port}",
                            tag="docker.{{.Name}}.{{.ID}}", fluentd_sub_second=True)
        await engine.create_container(ContainerSpec(
            name="fl1", image="busybox", logging=logging,
            command=("sh", "-c", "echo out-line; echo err-line >&2; printf 'no-newline'")))
        await engine.start_container("fl1")
        assert await engine.wait_container("fl1") == 0
        await asyncio.wait_for(closed.wait(), 10)  # the shim closes when the output ends
    finally:
        server.close()
        await server.wait_closed()
    info = await engine.inspect_container("fl1")
    messages = unpack_all(b"".join(chunks))
    by_log = {m[2]["log"]: m for m in messages}
    assert set(by_log) == {"out-line", "err-line", "no-newline"}, messages
    tag, when, record = by_log["out-line"]
    assert tag == f"docker.fl1.{info.id[:12]}"
    assert isinstance(when, tuple) and when[0] > 1_700_000_000 and 0 <= when[1] < 10**9  # EventTime
    assert record == {"container_id": info.id, "container_name": "/fl1", "source": "stdout",
                      "log": "out-line"}
    assert by_log["err-line"][2]["source"] == "stderr"
    assert by_log["no-newline"][2]["partial_message"] == "true"
    cached = [(e.stream, e.data) async for e in engine.logs("fl1")]  # dual logging: the cache
    assert ("stdout", "out-line\n") in cached and ("stderr", "err-line\n") in cached


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_no_endpoint_no_start_unless_async(engine: Engine) -> None:
    port = _free_port()  # nothing listens there
    await engine.create_container(ContainerSpec(
        name="fl2", image="busybox", command=("echo", "hi"),
        logging=LogConfig("fluentd", fluentd_address=f"tcp://127.0.0.1:{port}")))
    with pytest.raises(EngineError, match="failed to initialize logging driver: fluentd: cannot "
                                          f"connect to tcp://127.0.0.1:{port}"):
        await engine.start_container("fl2")
    await engine.create_container(ContainerSpec(
        name="fl3", image="busybox", command=("echo", "kept"),
        logging=LogConfig("fluentd", fluentd_address=f"tcp://127.0.0.1:{port}", fluentd_async=True)))
    await engine.start_container("fl3")
    assert await engine.wait_container("fl3") == 0
    logs: list[Any] = [e.data async for e in engine.logs("fl3")]
    assert logs == ["kept\n"]  # the line could not be sent; the cache has it
