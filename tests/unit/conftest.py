"""Every unit test gets a state root and run dir of its own: the CLI's quick paths look for
a composerd at COMPOSER_RUN's socket and keep their stack cache there, and a composerd
serving the host's default /run/composer (a developer's, another suite's) must neither
answer a unit test nor be written to by one."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _private_composer_dirs(tmp_path_factory: pytest.TempPathFactory,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    base: Path = tmp_path_factory.mktemp("composer-dirs")
    monkeypatch.setenv("COMPOSER_RUN", str(base / "run"))
    monkeypatch.setenv("COMPOSER_ROOT", str(base / "root"))
