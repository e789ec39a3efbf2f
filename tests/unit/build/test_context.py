"""Build context: .dockerignore matching (moby's patternmatcher rules), globs, digests."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.images.build.context import BuildContext, IgnoreMatcher, go_match
from runtime.images.build.errors import BuildError


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        (["*.md"], "README.md", True),
        (["*.md"], "docs/a.md", False),  # * does not cross /
        (["**/*.md"], "docs/a.md", True),
        (["**/*.md"], "a.md", True),
        (["docs"], "docs/deep/a.txt", True),  # a parent dir pattern covers children
        (["/docs/"], "docs/x", True),  # cleaned: leading / and trailing / dropped
        (["docs/**"], "docs/x/y", True),
        (["*/temp*"], "sub/temporary.txt", True),
        (["*/temp*"], "temp.txt", False),
        (["temp?"], "temp1", True),
        (["temp?"], "temp12", False),
        (["[a-c].txt"], "b.txt", True),
        (["[^a-c].txt"], "b.txt", False),
        (["[^a-c].txt"], "d.txt", True),
        (["*.md", "!README.md"], "README.md", False),
        (["*.md", "!README.md"], "CHANGES.md", True),
        (["!README.md", "*.md"], "README.md", True),  # last match wins
        (["node_modules", "!node_modules/keep"], "node_modules/keep", False),
        (["node_modules", "!node_modules/keep"], "node_modules/other", True),
        (["# comment", "", "  *.log  "], "x.log", True),
        (["a\\*b"], "a*b", True),
        (["a\\*b"], "axb", False),
        (["."], "anything", False),
    ],
)
def test_dockerignore_matching(patterns: list[str], path: str, excluded: bool) -> None:
    assert IgnoreMatcher(patterns).excluded(path) is excluded


def test_bad_pattern_is_a_build_error() -> None:
    with pytest.raises(BuildError, match="invalid .dockerignore pattern"):
        IgnoreMatcher(["[abc"])


def test_go_match() -> None:
    assert go_match("*.txt", "a.txt") and not go_match("*.txt", "d/a.txt")
    assert go_match("d/*.txt", "d/a.txt")


def _tree(root: Path) -> None:
    (root / "src/sub").mkdir(parents=True)
    (root / "src/a.py").write_text("a")
    (root / "src/sub/b.py").write_text("b")
    (root / "src/sub/notes.md").write_text("n")
    (root / "README.md").write_text("r")
    (root / "x1.txt").write_text("1")
    (root / "x2.txt").write_text("2")
    (root / "secret").mkdir()
    (root / "secret/key").write_text("k")
    (root / "secret/public.pem").write_text("p")
    (root / ".dockerignore").write_text("secret\n!secret/public.pem\n**/*.md\n")


def test_walk_and_globs_respect_dockerignore(tmp_path: Path) -> None:
    _tree(tmp_path)
    ctx = BuildContext.open(tmp_path)
    walked = [rel for rel, _ in ctx.walk(".")][1:]
    assert "README.md" not in walked and "src/sub/notes.md" not in walked
    assert "secret/key" not in walked and "secret/public.pem" in walked and "secret" in walked
    assert "src/sub/b.py" in walked
    assert ctx.expand_source("x*.txt") == ["x1.txt", "x2.txt"]
    assert ctx.expand_source("src/*.py") == ["src/a.py"]
    assert ctx.expand_source("README.md") == []
    assert ctx.expand_source("../../x1.txt") == ["x1.txt"]  # cannot climb out of the context
    assert ctx.expand_source("/src") == ["src"]


def test_dockerfile_specific_ignore_wins(tmp_path: Path) -> None:
    _tree(tmp_path)
    (tmp_path / "Dockerfile.dockerignore").write_text("x1.txt\n")
    ctx = BuildContext.open(tmp_path, tmp_path / "Dockerfile")
    assert ctx.expand_source("x*.txt") == ["x2.txt"]
    assert ctx.expand_source("README.md") == ["README.md"]


def test_digest_tracks_content_and_mode_not_mtime(tmp_path: Path) -> None:
    _tree(tmp_path)
    ctx = BuildContext.open(tmp_path)
    d1 = ctx.digest(["src"])
    os.utime(tmp_path / "src/a.py", (1, 1))
    assert BuildContext.open(tmp_path).digest(["src"]) == d1
    (tmp_path / "src/a.py").write_text("changed")
    d2 = BuildContext.open(tmp_path).digest(["src"])
    assert d2 != d1
    os.chmod(tmp_path / "src/a.py", 0o600)
    assert BuildContext.open(tmp_path).digest(["src"]) != d2
    (tmp_path / "secret/key").write_text("ignored changes do not matter")
    assert BuildContext.open(tmp_path).digest(["x1.txt"]) == ctx.digest(["x1.txt"])
