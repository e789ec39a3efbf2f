"""Shared test setup.

Tests under tests/integration, tests/e2e, tests/reliability and tests/security need root and a real kernel:
they are marked `root` here (a marker, never a skip). Unit-only runs use `-m "not root"`;
CI runs everything as root.
"""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT_DIRS = ("integration", "e2e", "reliability", "security")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        if any(d in parts for d in ROOT_DIRS):
            item.add_marker(pytest.mark.root)


@pytest.fixture
def busybox_rootfs(tmp_path: Path) -> Path:
    """A fresh busybox root filesystem in a temp dir."""
    from runtime.images.busybox import populate_rootfs

    return populate_rootfs(tmp_path / "rootfs")
