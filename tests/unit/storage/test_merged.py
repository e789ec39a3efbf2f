from __future__ import annotations

import os
from pathlib import Path

from runtime.storage import merged


def _tree(root: Path, spec: dict[str, str | None]) -> str:
    for rel, content in spec.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            p.mkdir(exist_ok=True)
        elif content.startswith("->"):
            os.symlink(content[2:], p)
        else:
            p.write_text(content)
    return str(root)


def test_file_over_dir_and_dir_over_file(tmp_path: Path) -> None:
    low = _tree(tmp_path / "low", {"x/a": "1", "y": "file"})
    up = _tree(tmp_path / "up", {"x": "now a file", "y/b": "2"})
    assert merged.resolve([up, low], "x") == ("x", [up])
    rel, stack = merged.resolve([up, low], "y")  # type: ignore[misc]
    assert stack == [up] and list(merged.listdir(stack, rel)) == ["b"]
    assert merged.resolve([up, low], "x/a") is None


def test_dirs_merge_and_symlinks_resolve_in_image(tmp_path: Path) -> None:
    low = _tree(tmp_path / "low", {"d/a": "1", "abs": "->/d", "rel": "->d/../d", "loop": "->loop"})
    up = _tree(tmp_path / "up", {"d/b": "2"})
    rel, stack = merged.resolve([up, low], "/abs")  # type: ignore[misc]
    assert rel == "d" and sorted(merged.listdir(stack, rel)) == ["a", "b"]
    assert merged.resolve([up, low], "rel")[0] == "d"  # type: ignore[index]
    assert merged.resolve([up, low], "../../d")[0] == "d"  # type: ignore[index]
    try:
        merged.resolve([up, low], "loop/x")
    except ValueError as e:
        assert "too many levels" in str(e)
    else:
        raise AssertionError("a symlink loop must be an error")
