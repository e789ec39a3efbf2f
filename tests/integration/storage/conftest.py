from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.images.store import ImageStore
from runtime.paths import Paths
from runtime.storage import rootfs


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Paths]:
    """A state root in a temp dir; afterwards nothing may stay mounted under it."""
    paths = Paths(root=tmp_path / "state", run=tmp_path / "run")
    yield paths
    left = rootfs.mounts_under(str(tmp_path))
    for mp in left:  # clean up even when the test failed, then complain
        rootfs._umount(mp)
    assert left == [], f"mounts left behind: {left}"


@pytest.fixture
def store(state: Paths) -> ImageStore:
    return ImageStore(state)
