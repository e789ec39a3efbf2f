"""Helpers: write stack files into a temp project folder and load them."""
from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from composer.spec import LoadOptions, Stack, load_stack

Loader = Callable[..., Stack]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "My Project"
    folder.mkdir()
    return folder


@pytest.fixture
def write(project: Path) -> Callable[[str, str], Path]:
    def _write(name: str, text: str) -> Path:
        path = project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    return _write


@pytest.fixture
def load(project: Path, write: Callable[[str, str], Path]) -> Loader:
    """load(yaml_text, environ={}, **LoadOptions fields) -> Stack; text goes to compose.yaml."""

    def _load(text: str | None = None, environ: Mapping[str, str] | None = None, **opts: Any) -> Stack:
        if text is not None:
            write("compose.yaml", text)
        return load_stack(LoadOptions(environ=dict(environ or {}), working_dir=str(project), **opts))

    return _load
