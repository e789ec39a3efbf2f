"""The monitor's stdio pump with pipes and a real attach socket (no namespaces, no root):
log + live output to every client, backlog replay, stdin with back-pressure and EOF, a
client that breaks the protocol, and the detach-key scanner of the CLI."""
from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from composer.cli.attach_cmd import _Detacher, parse_detach_keys
from composer.errors import ComposerError
from runtime.attach import AttachClient, split_frames
from runtime.process.logs import JsonLogWriter
from runtime.process.stdio import BACKLOG, HEADER, MAX_FRAME, SOCKET, Poll, StdioPump, frame, listen


class Box:
    """A fake container: we hold the other ends of its stdout/stderr/stdin pipes."""

    def __init__(self, state: Path) -> None:
        self.state = state
        out_r, self.out_w = os.pipe()
        err_r, self.err_w = os.pipe()
        self.in_r, in_w = os.pipe()
        self.log = state / "container.log"
        self.writer = JsonLogWriter(str(self.log))
        self.poll = Poll()
        self.pump = StdioPump({out_r: "stdout", err_r: "stderr"}, self.writer, self.poll,
                              stdin_fd=in_w, listener=listen(str(state)))
        self.thread = threading.Thread(target=self.poll.run_until,
                                       args=(lambda: self.pump.closed,), daemon=True)
        self.thread.start()

    def print(self, data: bytes, fd: int | None = None) -> None:
        os.write(self.out_w if fd is None else fd, data)

    def exit(self) -> None:
        for fd in (self.out_w, self.err_w):
            os.close(fd)
        self.thread.join(10)
        assert not self.thread.is_alive()
        self.writer.close()
        os.close(self.in_r)


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    b = Box(tmp_path)
    yield b
    if b.thread.is_alive():
        b.exit()


async def read_stream(stream: AttachClient, n: int) -> list[tuple[str, bytes]]:
    return [await asyncio.wait_for(stream.read(), 5) for _ in range(n)]  # type: ignore[misc]


async def test_output_goes_to_the_log_and_to_attached_clients(box: Box) -> None:
    assert (box.state / SOCKET).stat().st_mode & 0o777 == 0o600  # root's only, like composerd's
    box.print(b"early\n")
    await asyncio.sleep(0.1)
    replay = await AttachClient.open(str(box.state), logs=True)
    live = await AttachClient.open(str(box.state))
    await asyncio.sleep(0.1)
    box.print(b"late\n")
    box.print(b"oops\n", box.err_w)
    got = await read_stream(replay, 3)
    assert got[0] == ("stdout", b"early\n")  # what it printed before we came
    assert sorted(got[1:]) == [("stderr", b"oops\n"), ("stdout", b"late\n")]
    assert sorted(await read_stream(live, 2)) == [("stderr", b"oops\n"), ("stdout", b"late\n")]
    box.exit()
    assert await asyncio.wait_for(replay.read(), 5) is None  # the end of output ends the stream
    assert await asyncio.wait_for(live.read(), 5) is None
    await replay.close()
    await live.close()
    lines = [json.loads(x) for x in box.log.read_text().splitlines()]
    assert [(x["stream"], x["log"]) for x in lines] == [
        ("stdout", "early\n"), ("stdout", "late\n"), ("stderr", "oops\n")]


async def test_the_backlog_keeps_only_the_recent_output(box: Box) -> None:
    chunk = b"x" * 1000 + b"\n"
    for _ in range(3 * BACKLOG // len(chunk)):
        box.print(chunk)
    box.print(b"last\n")
    await asyncio.sleep(0.2)
    stream = await AttachClient.open(str(box.state), logs=True)
    box.exit()
    got = b""
    while (item := await asyncio.wait_for(stream.read(), 5)) is not None:
        got += item[1]
    await stream.close()
    assert got.endswith(b"last\n")
    assert len(got) == BACKLOG  # exactly the last 64 KiB of the 192 KiB it printed


async def test_stdin_is_buffered_in_order_and_closed_on_request(box: Box) -> None:
    stream = await AttachClient.open(str(box.state))
    data = os.urandom(300 * 1024)  # more than a pipe holds: the pump must not block on it
    await stream.write(data)
    await stream.close_stdin()
    box.print(b"still alive\n")  # output keeps flowing while stdin waits for its reader
    assert await read_stream(stream, 1) == [("stdout", b"still alive\n")]
    got = b""
    while chunk := await asyncio.get_running_loop().run_in_executor(
            None, os.read, box.in_r, 65536):
        got += chunk
    assert got == data  # everything, in order, then EOF
    await stream.close()


async def test_a_client_that_breaks_the_protocol_is_dropped(box: Box) -> None:
    dfd = os.open(box.state, os.O_PATH)
    reader, writer = await asyncio.open_unix_connection(f"/proc/self/fd/{dfd}/{SOCKET}")
    os.close(dfd)
    writer.write(HEADER.pack(0, MAX_FRAME + 1))  # a frame larger than allowed
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed on it
    writer.close()
    good = await AttachClient.open(str(box.state))  # the others are not affected
    await asyncio.sleep(0.1)
    box.print(b"fine\n")
    assert await read_stream(good, 1) == [("stdout", b"fine\n")]
    await good.close()


def test_split_frames_keeps_partial_frames_and_refuses_oversize() -> None:
    buf = bytearray(frame(1, b"ab") + frame(2, b"") + frame(1, b"cdef")[:5])
    assert split_frames(buf) == [(1, b"ab"), (2, b"")]
    assert len(buf) == 5
    with pytest.raises(ValueError, match="larger"):
        split_frames(bytearray(HEADER.pack(1, MAX_FRAME + 1)))


def test_detach_keys() -> None:
    assert parse_detach_keys("ctrl-p,ctrl-q") == b"\x10\x11"
    assert parse_detach_keys("ctrl-@,ctrl-[,ctrl-_,a") == b"\x00\x1b\x1fa"
    with pytest.raises(ComposerError, match="--detach-keys"):
        parse_detach_keys("ctrl-pp")
    d = _Detacher(b"\x10\x11")
    assert d.feed(b"abc\x10") == (b"abc", False)  # a possible start is held back
    assert d.feed(b"x") == (b"\x10x", False)  # and released when it was not the sequence
    assert d.feed(b"ls\x10") == (b"ls", False)
    assert d.feed(b"\x11rest") == (b"", True)
    assert _Detacher(b"").feed(b"\x10\x11") == (b"\x10\x11", False)  # no keys: no detach


async def test_a_big_stdin_is_held_back_not_dropped(box: Box) -> None:
    """Past MAX_PENDING waiting, the monitor stops reading the client: its writes block and the
    container gets every byte (it used to keep only the last 4 MiB)."""
    stream = await AttachClient.open(str(box.state), ready=True)  # READY came back
    data = os.urandom(12 * 1024 * 1024)
    got = bytearray()

    def drain() -> None:
        while chunk := os.read(box.in_r, 1 << 20):
            got.extend(chunk)
            if len(got) < 4 * 1024 * 1024:
                import time
                time.sleep(0.001)  # a slow reader at first: the client must wait

    reader = asyncio.get_running_loop().run_in_executor(None, drain)
    await stream.write(data)
    await stream.close_stdin()
    await asyncio.wait_for(reader, 30)
    assert bytes(got) == data
    await stream.close()
