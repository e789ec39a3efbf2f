"""Shared test setup.

Tests under tests/integration, tests/e2e, tests/reliability and tests/security need root and a real kernel:
they are marked `root` here (a marker, never a skip). Unit-only runs use `-m "not root"`;
CI runs everything as root.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT_DIRS = ("integration", "e2e", "reliability", "security")


CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


def pytest_sessionstart(session: pytest.Session) -> None:
    """A root run first cleans what killed runs left (tests/sweep.py): their leftovers would
    hold subnets and names, and a leak check must not inherit them."""
    if os.geteuid() != 0:
        return
    from tests.sweep import sweep

    for line in sweep():
        print(f"tests/conftest.py: swept the leftovers of a killed test run: {line}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        if any(d in parts for d in ROOT_DIRS):
            item.add_marker(pytest.mark.root)
        # a warning is an error (an unclosed file or pipe, a never-awaited coroutine, a
        # deprecation), in every tier; a test's own filterwarnings mark still applies first
        item.add_marker(pytest.mark.filterwarnings("error"), append=False)
    # the corpus is data of other projects beside the checkout (CI has it): without it, its
    # tests are deselected by their marker and the run says so, instead of failing a checkout
    if not CORPUS.is_dir() and not os.environ.get("COMPOSER_CORPUS"):
        gone = [i for i in items if i.get_closest_marker("corpus")]
        if gone:
            config.hook.pytest_deselected(items=gone)
            items[:] = [i for i in items if not i.get_closest_marker("corpus")]
            print(f"\ntests/conftest.py: {CORPUS} is absent: {len(gone)} corpus tests not run")
    # zsh (CI installs it: scripts/install-deps.sh with COMPOSER_TEST_PEERS=1): without it the
    # tests that load a script in a real zsh are deselected by their marker, with a notice
    if shutil.which("zsh") is None:
        gone = [i for i in items if i.get_closest_marker("zsh")]
        if gone:
            config.hook.pytest_deselected(items=gone)
            items[:] = [i for i in items if not i.get_closest_marker("zsh")]
            print(f"\ntests/conftest.py: no zsh on PATH: {len(gone)} zsh tests not run")


@pytest.fixture
def busybox_rootfs(tmp_path: Path) -> Path:
    """A fresh busybox root filesystem in a temp dir."""
    from runtime.images.busybox import populate_rootfs

    return populate_rootfs(tmp_path / "rootfs")
