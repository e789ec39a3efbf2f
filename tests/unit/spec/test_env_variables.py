"""COMPOSE_ENV_FILES, COMPOSE_DISABLE_ENV_FILE and COMPOSE_FILE read from `.env`, as the
docker compose CLI reads them."""
from __future__ import annotations

from pathlib import Path

import pytest

from composer.errors import SpecError
from composer.spec import LoadOptions, load_stack

STACK = "services:\n  web: {image: 'img:${TAG:-none}'}\n"


def load(folder: Path, environ: dict[str, str]) -> str:
    stack = load_stack(LoadOptions(environ=environ, working_dir=str(folder)))
    return str(stack.services["web"].image)


def test_compose_env_files_replace_dotenv_and_disable_ignores_it(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(STACK)
    (tmp_path / ".env").write_text("TAG=dotenv\n")
    (tmp_path / "a.env").write_text("TAG=a\n")
    (tmp_path / "b.env").write_text("TAG=b\n")
    assert load(tmp_path, {}) == "img:dotenv"
    assert load(tmp_path, {"COMPOSE_ENV_FILES": "a.env, b.env"}) == "img:b"  # later wins
    assert load(tmp_path, {"COMPOSE_ENV_FILES": "a.env", "TAG": "shell"}) == "img:shell"
    assert load(tmp_path, {"COMPOSE_DISABLE_ENV_FILE": "true"}) == "img:none"
    assert load(tmp_path, {"COMPOSE_DISABLE_ENV_FILE": "0"}) == "img:dotenv"
    with pytest.raises(SpecError, match="COMPOSE_ENV_FILES"):
        load(tmp_path, {"COMPOSE_ENV_FILES": "missing.env"})


def test_compose_file_may_come_from_dotenv(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(STACK)
    (tmp_path / "other.yaml").write_text("services:\n  web: {image: other}\n")
    (tmp_path / "over.yaml").write_text("services:\n  web: {image: over}\n")
    (tmp_path / ".env").write_text("COMPOSE_FILE=other.yaml\n")
    assert load(tmp_path, {}) == "other"
    (tmp_path / ".env").write_text("COMPOSE_FILE=other.yaml;over.yaml\nCOMPOSE_PATH_SEPARATOR=;\n")
    assert load(tmp_path, {}) == "over"
    assert load(tmp_path, {"COMPOSE_FILE": "compose.yaml"}) == "img:none"  # the shell wins
    assert load(tmp_path, {"COMPOSE_DISABLE_ENV_FILE": "1"}) == "img:none"
