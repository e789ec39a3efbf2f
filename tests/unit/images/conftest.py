from __future__ import annotations

from pathlib import Path

import pytest

from runtime.images.store import ImageStore
from runtime.paths import Paths


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths(root=tmp_path / "state", run=tmp_path / "run")


@pytest.fixture
def store(paths: Paths) -> ImageStore:
    return ImageStore(paths)
