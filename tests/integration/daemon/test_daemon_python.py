"""How the CLI runs composerd's interpreter: without docstrings (-OO, issue 15: its resident
memory), its bytecode in composer's own cache rather than beside the sources, and serving
as usual from it (the e2e tier runs every composerd it starts this way)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import runtime.daemon.app
from runtime.client import DAEMON_PYCACHE, DAEMON_PYTHON_FLAGS, connect_or_start
from runtime.types import ContainerSpec
from tests.integration.daemon.conftest import Env


async def test_composerd_runs_optimized_with_its_bytecode_apart(denv: Env) -> None:
    async with await connect_or_start(denv.paths) as client:
        pid = denv.note_pid_file()
        info = await client.create_container(ContainerSpec("py-web-1", "busybox:latest"))
        await client.start_container(info.id)
        assert (await client.inspect_container(info.id)).state == "running"
        await client.remove_container(info.id, force=True)
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    assert argv[:4] == [sys.executable, *DAEMON_PYTHON_FLAGS]
    source = Path(runtime.daemon.app.__file__).resolve()
    tag = sys.implementation.cache_tag
    cached = Path(DAEMON_PYCACHE + str(source.parent)) / f"{source.stem}.{tag}.opt-2.pyc"
    assert cached.is_file()
    assert not (source.parent / "__pycache__" / cached.name).exists()
    assert os.path.getmtime(cached) >= os.path.getmtime(source)
