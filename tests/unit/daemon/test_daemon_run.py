"""The daemon's life in-process: socket and run-dir modes, pid file, stale socket, single
instance, clean shutdown that closes the engine."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
from pathlib import Path

import pytest

from runtime.api import EngineAPI
from runtime.client import Client
from runtime.daemon import DaemonError, load_engine_factory, run
from runtime.paths import Paths
from runtime.types import ContainerSpec
from tests.unit.daemon.fake_engine import FakeEngine


class Started:
    """run() in a task, with the engine it built and a way to stop it."""

    def __init__(self, paths: Paths, socket_path: Path | None = None) -> None:
        self.paths = paths
        self.stop = asyncio.Event()
        self.ready = asyncio.Event()
        self.engine: FakeEngine | None = None

        async def factory(p: Paths) -> EngineAPI:
            self.engine = FakeEngine()
            return self.engine

        self.task = asyncio.ensure_future(
            run(paths, factory, socket_path=socket_path, stop=self.stop, on_ready=self.ready.set)
        )

    async def __aenter__(self) -> Started:
        waiter = asyncio.ensure_future(self.ready.wait())
        done, _ = await asyncio.wait(
            {waiter, self.task}, timeout=5, return_when=asyncio.FIRST_COMPLETED
        )
        if self.task in done:
            waiter.cancel()
            self.task.result()  # raise what run() raised
        assert waiter in done
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 5)


def paths_in(d: Path) -> Paths:
    return Paths(root=d / "root", run=d / "run")


async def test_modes_pid_file_and_clean_stop(short_tmp: Path) -> None:
    paths = paths_in(short_tmp)
    async with Started(paths) as d:
        sock = paths.socket
        assert stat.S_ISSOCK(sock.stat().st_mode)
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        assert stat.S_IMODE(paths.run.stat().st_mode) == 0o700
        assert (paths.run / "composerd.pid").read_text() == f"{os.getpid()}\n"
        async with Client(sock) as c:
            assert await c.ping()
    assert not paths.socket.exists()
    assert not (paths.run / "composerd.pid").exists()
    assert d.engine is not None and d.engine.closed


async def test_existing_run_dir_is_tightened_to_0700(short_tmp: Path) -> None:
    paths = paths_in(short_tmp)
    paths.run.mkdir(mode=0o755)
    os.chmod(paths.run, 0o755)
    async with Started(paths):
        assert stat.S_IMODE(paths.run.stat().st_mode) == 0o700


async def test_stale_socket_is_removed(short_tmp: Path) -> None:
    paths = paths_in(short_tmp)
    paths.run.mkdir(mode=0o700)
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(paths.socket))
    s.close()  # the file stays, nobody listens: a crashed daemon's leftover
    assert paths.socket.exists()
    async with Started(paths):
        async with Client(paths.socket) as c:
            assert await c.ping()


async def test_refuses_a_path_that_is_not_a_socket(short_tmp: Path) -> None:
    paths = paths_in(short_tmp)
    paths.run.mkdir(mode=0o700)
    paths.socket.write_text("precious")
    with pytest.raises(DaemonError, match="composer.sock exists and is not a socket"):
        async with Started(paths):
            pass
    assert paths.socket.read_text() == "precious"


async def test_second_daemon_on_the_same_run_dir_refuses(short_tmp: Path) -> None:
    paths = paths_in(short_tmp)
    async with Started(paths):
        with pytest.raises(
            DaemonError, match=rf"composerd is already running \(pid {os.getpid()}\)"
        ):
            async with Started(paths):
                pass
        async with Client(paths.socket) as c:  # the first one is unharmed
            assert await c.ping()


async def test_refuses_when_something_answers_on_the_socket(short_tmp: Path) -> None:
    first = paths_in(short_tmp / "a")
    second = paths_in(short_tmp / "b")
    async with Started(first):
        with pytest.raises(DaemonError, match="another composerd answers on"):
            async with Started(second, socket_path=first.socket):
                pass
        async with Client(first.socket) as c:
            assert await c.ping()


async def test_engine_failure_leaves_nothing(short_tmp: Path) -> None:
    paths = paths_in(short_tmp)

    async def broken(p: Paths) -> EngineAPI:
        raise OSError("cannot open the state root")

    with pytest.raises(OSError, match="cannot open the state root"):
        await run(paths, broken, stop=asyncio.Event())
    assert not paths.socket.exists()
    assert not (paths.run / "composerd.pid").exists()
    async with Started(paths):  # the run-dir lock was released
        pass


async def test_engine_factory_from_env(monkeypatch: pytest.MonkeyPatch, short_tmp: Path) -> None:
    monkeypatch.setenv("COMPOSERD_ENGINE", "tests.unit.daemon.fake_engine:FakeEngine.open")
    engine = await load_engine_factory()(paths_in(short_tmp))
    assert isinstance(engine, FakeEngine) and engine.supervisor is not None
    await engine.close()
    monkeypatch.delenv("COMPOSERD_ENGINE")
    with pytest.raises((ImportError, AttributeError)):
        load_engine_factory("runtime.nope:Engine.open")


async def test_shutdown_waits_for_state_changes_whose_client_left(short_tmp: Path) -> None:
    paths = paths_in(short_tmp)
    seen_at_close: list[int] = []
    async with Started(paths) as d:
        assert d.engine is not None
        engine = d.engine
        real_close = engine.close

        async def close() -> None:
            seen_at_close.append(len(engine.containers))
            await real_close()

        engine.close = close  # type: ignore[method-assign]
        engine.create_delay = 0.3
        async with Client(paths.socket) as c:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(
                    c.create_container(ContainerSpec("web-1", "busybox:latest")), 0.05
                )
    assert seen_at_close == [1]  # the create finished before the engine closed
