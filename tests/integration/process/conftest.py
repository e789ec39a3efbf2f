"""A monitor per test and a factory of overlay-rootfs containers that cleans up."""
from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runtime.process.config import LaunchConfig
from runtime.process.launcher import ExitStatus, Launched, Launcher, proc_start_time


@dataclass
class Env:
    launcher: Launcher
    tmp: Path
    rootfs: Path
    launched: list[Launched]
    n: int = 0

    def config(self, argv: tuple[str, ...] | list[str], **kw: Any) -> LaunchConfig:
        self.n += 1
        d = self.tmp / f"c{self.n}"
        for sub in ("upper", "work", "merged", "state"):
            (d / sub).mkdir(parents=True)
        base: dict[str, Any] = dict(
            id=f"c{self.n}", argv=tuple(argv), state_dir=str(d / "state"),
            mergeddir=str(d / "merged"), lowerdirs=(str(self.rootfs),),
            upperdir=str(d / "upper"), workdir=str(d / "work"))
        base.update(kw)
        return LaunchConfig(**base)

    async def launch(self, cfg: LaunchConfig, prepare: Any = None) -> Launched:
        launched = await self.launcher.launch(cfg, prepare)
        self.launched.append(launched)
        return launched

    async def run(self, argv: list[str] | tuple[str, ...],
                  **kw: Any) -> tuple[ExitStatus, str, str]:
        cfg = self.config(argv, **kw)
        launched = await self.launch(cfg)
        status = await self.launcher.wait(launched)
        return status, *self.output(cfg)

    @staticmethod
    def output(cfg: LaunchConfig) -> tuple[str, str]:
        import json
        out, err = [], []
        with contextlib.suppress(FileNotFoundError), open(cfg.log_file) as f:
            for line in f:
                row = json.loads(line)
                (out if row["stream"] == "stdout" else err).append(row["log"])
        return "".join(out), "".join(err)


def sh(script: str) -> list[str]:
    return ["sh", "-c", script]


@pytest.fixture
async def env(tmp_path: Path, busybox_rootfs: Path) -> AsyncIterator[Env]:
    launcher = Launcher(str(tmp_path / "monitor.sock"))
    await launcher.start_server()
    e = Env(launcher, tmp_path, busybox_rootfs, [])
    try:
        yield e
    finally:
        for launched in e.launched:
            Launcher.kill(launched, signal.SIGKILL)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(launcher.wait(launched), 10)
        pid = launcher.server_pid
        await launcher.close()
        if pid is not None:  # nothing left to hold: the monitor has left
            assert not os.path.exists(f"/proc/{pid}") or proc_start_time(pid) is None, \
                "the monitor outlived its last container and engine"
        mounts = Path("/proc/self/mounts").read_text()
        assert str(tmp_path) not in mounts, "a container mount leaked to the host"
        shutil.rmtree(tmp_path, ignore_errors=True)


MountCheck = Callable[[str], bool]


def host_has_mount(path: str) -> bool:
    return any(path in line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines())


def proc_alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")
