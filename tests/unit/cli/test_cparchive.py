"""Docker's `cp` placement rules (moby pkg/archive/copy.go), as pure functions."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from composer.cli.cparchive import (
    Dest,
    Source,
    container_arg,
    host_dest,
    host_source,
    place,
    split_dir_entry,
)
from composer.errors import ComposerError


@pytest.mark.parametrize("path,expected", [
    ("/a/b", ("/a", "b")), ("/a/b/", ("/a", "b")), ("/a/b/.", ("/a/b", ".")),
    ("a/b", ("a", "b")), ("b", (".", "b")), (".", (".", ".")), ("/", ("/", "")),
])
def test_split_dir_entry(path: str, expected: tuple[str, str]) -> None:
    assert split_dir_entry(path) == expected


def test_file_into_an_existing_directory_keeps_its_name() -> None:
    assert place(Source("/h/a.txt", False, "a.txt"), Dest("/tmp", True, True)) == ("/tmp", "a.txt")


def test_file_onto_a_file_or_a_new_name_is_renamed() -> None:
    assert place(Source("/h/a.txt", False, "a.txt"), Dest("/tmp/b", True, False)) == ("/tmp", "b")
    assert place(Source("/h/a.txt", False, "a.txt"), Dest("/tmp/new", False, False)) == ("/tmp", "new")


def test_directory_to_a_new_path_takes_that_name_and_into_a_directory_keeps_its_own() -> None:
    assert place(Source("/h/d", True, "d"), Dest("/srv/new", False, False)) == ("/srv", "new")
    assert place(Source("/h/d", True, "d"), Dest("/srv", True, True)) == ("/srv", "d")


def test_trailing_dot_copies_the_content() -> None:
    assert place(Source("/h/d/.", True, "."), Dest("/srv", True, True)) == ("/srv", ".")
    assert place(Source("/h/d/.", True, "."), Dest("/srv/new", False, False)) == ("/srv", "new")


def test_refusals_name_the_path_and_the_fix() -> None:
    with pytest.raises(ComposerError, match="cannot copy a directory onto the file /tmp/f"):
        place(Source("/h/d", True, "d"), Dest("/tmp/f", True, False))
    with pytest.raises(ComposerError, match="no such directory: /nodir/ .*create it first"):
        place(Source("/h/a", False, "a"), Dest("/nodir/", False, False))


def test_service_arguments() -> None:
    assert container_arg("web:/etc/x") == ("web", "/etc/x")
    assert container_arg("web:") == ("web", "/")
    assert container_arg("./web:x") is None and container_arg("/abs:x") is None
    assert container_arg("plain") is None and container_arg("-") is None


def test_host_source_resolves_parents_and_follows_with_L(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f").write_text("x")
    os.symlink("real", tmp_path / "via")
    os.symlink("f", tmp_path / "real" / "ln")
    s = host_source(str(tmp_path / "via" / "f"), False)
    assert s.path == str(tmp_path / "real" / "f") and not s.is_dir and s.name == "f"
    link = host_source(str(tmp_path / "real" / "ln"), False)
    assert link.path.endswith("/ln") and link.name == "ln"
    followed = host_source(str(tmp_path / "real" / "ln"), True)
    assert followed.path == str(tmp_path / "real" / "f") and followed.name == "ln"
    content = host_source(str(tmp_path / "real") + "/.", False)
    assert content.is_dir and content.name == "."
    with pytest.raises(ComposerError, match="no such file or directory"):
        host_source(str(tmp_path / "nope"), False)
    with pytest.raises(ComposerError, match="not a directory"):
        host_source(str(tmp_path / "real" / "f") + "/", False)


def test_host_dest_follows_a_symlink_and_needs_the_parent(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    os.symlink("d", tmp_path / "ln")
    assert host_dest(str(tmp_path / "ln")) == Dest(str(tmp_path / "d"), True, True)
    assert host_dest(str(tmp_path / "new")) == Dest(str(tmp_path / "new"), False, False)
    with pytest.raises(ComposerError, match="no such directory"):
        host_dest(str(tmp_path / "missing" / "x"))
