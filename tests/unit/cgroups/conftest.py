from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runtime.cgroups import V1Manager, V2Manager
from tests.unit.cgroups.fakefs import FakeCgroupFS


@pytest.fixture
def v1fs(tmp_path: Path) -> FakeCgroupFS:
    return FakeCgroupFS(tmp_path / "cg", "v1")


@pytest.fixture
def v2fs(tmp_path: Path) -> FakeCgroupFS:
    return FakeCgroupFS(tmp_path / "cg", "v2")


@pytest.fixture
def v1(v1fs: FakeCgroupFS) -> V1Manager:
    return V1Manager(v1fs.root, "composer", v1fs)


@pytest.fixture
def v2(v2fs: FakeCgroupFS) -> V2Manager:
    return V2Manager(v2fs.root, "composer", v2fs)


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start real processes (our own children, no root needed); all killed at teardown."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*argv: str) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(argv or ("sleep", "60"))
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.kill()
        p.wait()
