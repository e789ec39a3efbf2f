"""Attach through the shim's socket: replayed and live output, stdin, EOF, a tty's size,
two clients at once, and a clear refusal for a container that does not run."""
from __future__ import annotations

import asyncio

import pytest

from runtime.attach import AttachStream
from runtime.engine import Engine
from runtime.errors import Conflict
from runtime.types import ContainerSpec

ECHO = ("sh", "-c", 'echo ready; while read l; do echo "got $l"; echo "err $l" >&2; done; '
        "echo bye")


async def read_until(stream: AttachStream, marker: bytes, timeout: float = 10) -> dict[str, bytes]:
    seen = {"stdout": b"", "stderr": b""}

    async def go() -> None:
        while marker not in seen["stdout"] + seen["stderr"]:
            item = await stream.read()
            assert item is not None, f"the stream ended before {marker!r}: {seen}"
            seen[item[0]] += item[1]

    await asyncio.wait_for(go(), timeout)
    return seen


async def test_attach_replays_streams_and_feeds_stdin_until_eof(engine: Engine) -> None:
    await engine.create_container(ContainerSpec(name="echo", image="busybox", command=ECHO,
                                                stdin_open=True))
    await engine.start_container("echo")
    stream = await engine.attach_container("echo", logs=True)
    seen = await read_until(stream, b"ready\n")  # printed before we attached: the backlog
    assert seen["stdout"] == b"ready\n"
    await stream.write(b"hello\n")
    seen = await read_until(stream, b"err hello\n")
    assert b"got hello\n" in seen["stdout"] and seen["stderr"] == b"err hello\n"
    await stream.close_stdin()  # the container's `read` sees EOF
    seen = await read_until(stream, b"bye\n")
    assert await asyncio.wait_for(stream.read(), 10) is None  # its end is the container's end
    await stream.close()
    assert await engine.wait_container("echo") == 0
    logs = "".join([line.data async for line in engine.logs("echo")])
    assert logs.count("got hello") == 1 and "bye" in logs  # the log has it all as well


async def test_two_clients_see_the_same_live_output(engine: Engine) -> None:
    await engine.create_container(ContainerSpec(name="two", image="busybox", command=ECHO,
                                                stdin_open=True))
    await engine.start_container("two")
    a = await engine.attach_container("two")
    b = await engine.attach_container("two")
    await asyncio.sleep(0.1)  # both HELLOs are in
    await a.write(b"x\n")
    for s in (a, b):
        assert b"got x\n" in (await read_until(s, b"got x\n"))["stdout"]
    await b.close()  # one client leaving changes nothing for the other
    await a.write(b"y\n")
    assert b"got y\n" in (await read_until(a, b"got y\n"))["stdout"]
    await a.close()
    await engine.stop_container("two", timeout=1)


async def test_attach_to_a_tty_gets_its_size_and_echo(engine: Engine) -> None:
    await engine.create_container(ContainerSpec(name="tty", image="busybox", command=("sh",),
                                                tty=True, stdin_open=True))
    await engine.start_container("tty")
    stream = await engine.attach_container("tty")
    await stream.resize(33, 101)
    await stream.write(b"stty size; echo tty-$((6*7))\n")
    seen = await read_until(stream, b"tty-42\r\n")
    assert b"33 101\r\n" in seen["stdout"] and seen["stderr"] == b""  # a tty has one stream
    if b"# " not in seen["stdout"].split(b"tty-42\r\n", 1)[1]:
        # the next prompt: ash is reading a line again (a ^D typed while it was between
        # commands was sometimes lost, with per-container shims as with the monitor)
        await read_until(stream, b"# ")
    await stream.close_stdin()  # ^D: the shell exits
    while await asyncio.wait_for(stream.read(), 10) is not None:
        pass  # the echoed ^D and "exit": then the end
    assert await asyncio.wait_for(engine.wait_container("tty"), 10) == 0
    await stream.close()


async def test_attach_to_a_container_that_does_not_run_is_refused(engine: Engine) -> None:
    await engine.create_container(ContainerSpec(name="idle", image="busybox", command=("true",)))
    with pytest.raises(Conflict, match="idle is not running"):
        await engine.attach_container("idle")
    await engine.start_container("idle")
    await engine.wait_container("idle")
    with pytest.raises(Conflict, match="not running"):
        await engine.attach_container("idle")


async def test_output_of_a_container_that_exits_at_once_is_never_lost(engine: Engine) -> None:
    # The shim closes as the container exits, while our end-of-stdin may still be on its
    # way: the write fails or the close resets the connection. The output the shim sent
    # before must still arrive (asyncio streams dropped it about one time in ten).
    for i in range(60):
        name = f"quick{i}"
        await engine.create_container(ContainerSpec(
            name=name, image="busybox", command=("sh", "-c", 'read x; echo "read $x"; exit 3'),
            stdin_open=True, network_mode="none"))
        await engine.start_container(name)
        stream = await engine.attach_container(name, logs=True)
        await stream.write(b"abc\n")
        await stream.close_stdin()
        got = b""
        while (item := await asyncio.wait_for(stream.read(), 10)) is not None:
            got += item[1]
        await stream.close()
        assert got == b"read abc\n", f"run {i}: {got!r}"
        assert await engine.wait_container(name) == 3
        await engine.remove_container(name, force=True)


async def _frames_until_exit(stream: AttachStream, timeout: float = 20) -> tuple[bytes, bytes, int]:
    out, err = b"", b""

    async def go() -> None:
        nonlocal out, err
        while (item := await stream.read()) is not None:
            if item[0] == "stdout":
                out += item[1]
            else:
                err += item[1]

    await asyncio.wait_for(go(), timeout)
    assert stream.exit_code is not None
    return out, err, stream.exit_code


async def test_follow_attaches_before_the_start_and_across_restarts(engine: Engine) -> None:
    """A one-shot that prints 200 KiB and exits at once: all of it, then its code; after
    restart_container the same stream carries the next run."""
    cmd = ("sh", "-c", "seq 1 30000; echo to-stderr >&2; exit 3")
    await engine.create_container(ContainerSpec(name="shot", image="busybox", command=cmd))
    stream = await engine.attach_container("shot", follow=True)  # created, not running
    await engine.start_container("shot")
    out, err, code = await _frames_until_exit(stream)
    assert out == "".join(f"{i}\n" for i in range(1, 30001)).encode()  # > 64 KiB, all of it
    assert (err, code, stream.restarting) == (b"to-stderr\n", 3, False)
    await engine.start_container("shot")  # started again: the same follower sees it
    out, _, code = await _frames_until_exit(stream)
    assert out.endswith(b"30000\n") and code == 3
    await stream.close()
    await engine.remove_container("shot", force=True)


async def test_follow_joins_a_running_container_live_and_sees_restarts(engine: Engine) -> None:
    cmd = ("sh", "-c", "echo boot; while true; do echo tick; sleep 0.1; done")
    await engine.create_container(ContainerSpec(name="tick", image="busybox", command=cmd,
                                                stop_grace_period=1))
    await engine.start_container("tick")
    await asyncio.sleep(0.5)
    stream = await engine.attach_container("tick", follow=True)
    seen = await read_until(stream, b"tick\n")
    assert b"boot" not in seen["stdout"]  # live only: what it wrote before is not replayed
    restart = asyncio.ensure_future(engine.restart_container("tick", timeout=1))
    while await asyncio.wait_for(stream.read(), 20) is not None:
        pass  # the rest of the first run, up to its EXIT
    assert stream.restarting is True  # restart_container: another run follows
    assert (await engine.inspect_container("tick")).state in ("restarting", "running")
    await restart
    assert b"boot\n" in (await read_until(stream, b"boot\n"))["stdout"]  # the next run
    await engine.remove_container("tick", force=True)
    while await asyncio.wait_for(stream.read(), 20) is not None:
        pass  # what it wrote before it was killed, up to the EXIT
    assert stream.restarting is False
    assert await asyncio.wait_for(stream.read(), 20) is None  # removed: the stream's end
    await stream.close()


async def test_exec_session_streams_stdin_output_and_code(engine: Engine) -> None:
    await engine.create_container(ContainerSpec(name="ex", image="busybox",
                                                command=("sleep", "600")))
    await engine.start_container("ex")
    s = await engine.exec_attach("ex", ["sh", "-c", "wc -c; echo err >&2; exit 5"])
    data = bytes(range(256)) * 8192  # 2 MiB, more than any pipe holds
    await s.write(data)
    await s.close_stdin()
    out, err, code = await _frames_until_exit(s)
    assert (out.strip(), err, code) == (str(len(data)).encode(), b"err\n", 5)
    await s.close()
    s = await engine.exec_attach("ex", ["nosuch"])
    out, err, code = await _frames_until_exit(s)
    assert code == 127 and b"nosuch" in err
    await s.close()
    s = await engine.exec_attach("ex", ["sleep", "600"])
    await s.close()  # the caller left: the command does not outlive the session
    top = await engine.top("ex")
    assert [r["CMD"] for r in top].count("sleep 600") == 1, top  # only the container's own
    await engine.remove_container("ex", force=True)
