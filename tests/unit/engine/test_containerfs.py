"""runtime.containerfs on plain directories as a container's root: paths and symlinks never
lead out of the root, Docker's tar names, extraction rules, and what a hostile tar can't do."""
from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from runtime import containerfs as cfs
from runtime.errors import Conflict, InvalidArgument, NotFound
from runtime.storage.errors import UnsafeArchive


@pytest.fixture
def root(tmp_path: Path) -> cfs.Root:
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (r / "data" / "sub").mkdir(parents=True)
    (r / "data" / "a.txt").write_text("a")
    (r / "data" / "sub" / "b.txt").write_text("b")
    os.symlink("/etc", r / "abs")  # absolute: must stay in the root
    os.symlink("../../../../../../etc", r / "data" / "up")  # climbs: clamped at the root
    (tmp_path / "outside").write_text("host secret")
    return cfs.host_root(str(r))


def names(data: bytes) -> list[str]:
    return [m.name for m in tarfile.open(fileobj=io.BytesIO(data))]


def tar_of(root: cfs.Root, path: str, **kw: object) -> bytes:
    out = io.BytesIO()
    cfs.write_tar(root, path, out, **kw)  # type: ignore[arg-type]
    return out.getvalue()


def test_paths_and_symlinks_resolve_inside_the_root(root: cfs.Root) -> None:
    assert root.stat("/abs").link_target == "/etc"
    assert root.stat("/abs/passwd").size == len("root:x:0:0::/root:/bin/sh\n")
    assert root.stat("/data/up/passwd").name == "passwd"  # ../../.. stops at the root
    assert root.stat("/etc/../../../etc/passwd").name == "passwd"
    with pytest.raises(NotFound, match="no such file or directory: /outside"):
        root.stat("/../outside")
    with pytest.raises(InvalidArgument, match="not a directory"):
        root.stat("/etc/passwd/")


def test_docker_tar_names(root: cfs.Root) -> None:
    assert names(tar_of(root, "/data")) == ["data", "data/a.txt", "data/sub", "data/sub/b.txt",
                                            "data/up"]
    assert sorted(names(tar_of(root, "/data/."))) == [".", "./a.txt", "./sub", "./sub/b.txt",
                                                     "./up"]
    assert names(tar_of(root, "/data", top="renamed"))[0] == "renamed"
    link = tarfile.open(fileobj=io.BytesIO(tar_of(root, "/abs"))).getmembers()
    assert [(m.name, m.issym(), m.linkname) for m in link] == [("abs", True, "/etc")]
    followed = names(tar_of(root, "/abs", follow_link=True))  # -L: the target, named as asked
    assert followed == ["abs", "abs/passwd"]
    bare = names(tar_of(root, "/", bare=True))  # export: no top entry
    assert "etc/passwd" in bare and "data/sub/b.txt" in bare


def extract(root: cfs.Root, dest: str, members: list[tuple[str, bytes | None, str]],
            **kw: object) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data, link in members:
            ti = tarfile.TarInfo(name)
            if link:
                ti.type, ti.linkname = tarfile.SYMTYPE, link
                tf.addfile(ti)
            elif data is None:
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
                tf.addfile(ti)
            else:
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
    buf.seek(0)
    cfs.extract_tar(root, dest, buf, lambda u, g: None, **kw)  # type: ignore[arg-type]


def test_extract_merges_directories_and_replaces_files(root: cfs.Root, tmp_path: Path) -> None:
    extract(root, "/data", [("sub", None, ""), ("sub/new", b"n", ""), ("a.txt", b"A", "")])
    r = tmp_path / "root" / "data"
    assert (r / "a.txt").read_text() == "A" and (r / "sub" / "b.txt").read_text() == "b"
    assert (r / "sub" / "new").read_text() == "n"


def test_extract_refuses_a_directory_over_a_file_and_the_reverse(root: cfs.Root) -> None:
    with pytest.raises(Conflict, match="cannot overwrite directory /data/sub"):
        extract(root, "/data", [("sub", b"x", "")])
    with pytest.raises(Conflict, match="cannot overwrite non-directory /data/a.txt"):
        extract(root, "/data", [("a.txt", None, "")])


def test_a_hostile_tar_stays_inside_the_root(root: cfs.Root, tmp_path: Path) -> None:
    # a symlink to a host path, then a file written through it: lands at that path in the root
    (tmp_path / "root" / str(tmp_path).lstrip("/")).mkdir(parents=True)
    extract(root, "/data", [("evil", None, str(tmp_path)), ("evil/outside", b"pwned", "")])
    assert (tmp_path / "outside").read_text() == "host secret"
    assert (tmp_path / "root" / str(tmp_path).lstrip("/") / "outside").read_text() == "pwned"
    with pytest.raises(UnsafeArchive):
        extract(root, "/data", [("../../escape", b"x", "")])
    assert not (tmp_path / "escape").exists()
    with pytest.raises(NotFound):  # through a dangling link: an error, never the host
        extract(root, "/data", [("dangling", None, "/nowhere"), ("dangling/x", b"x", "")])
    assert not Path("/nowhere").exists()


def test_extract_replaces_a_symlink_and_leaves_no_temporary_file(root: cfs.Root,
                                                                  tmp_path: Path) -> None:
    r = tmp_path / "root" / "data"
    os.symlink("/etc/passwd", r / "link")
    before = (r / "a.txt").stat().st_ino
    extract(root, "/data", [("link", b"replaced", ""), ("a.txt", b"new", "")],
            no_overwrite_dir_non_dir=False)
    assert not (r / "link").is_symlink() and (r / "link").read_text() == "replaced"
    assert (tmp_path / "root" / "etc" / "passwd").read_text().startswith("root:x")  # untouched
    assert (r / "a.txt").read_text() == "new" and (r / "a.txt").stat().st_ino != before  # renamed
    assert sorted(os.listdir(r)) == ["a.txt", "link", "sub", "up"]  # no .a.txt.composer-*


def test_remove_paths_goes_through_links_never_out_and_reports_failures(
        root: cfs.Root, tmp_path: Path) -> None:
    r = tmp_path / "root"
    removed, errors = cfs.remove_paths(root, [
        "/abs/passwd",  # /abs -> /etc: the root's /etc/passwd, not the host's
        "/data/sub",  # a directory with what it holds
        "/data/up",  # a symlink: the link goes, not what it points to
        "/data/missing", "/nodir/x",  # gone already: no error
        "/", "/data/."])  # never the root or a directory's content
    assert removed == 3 and len(errors) == 2, errors
    assert not (r / "etc" / "passwd").exists() and Path("/etc/passwd").exists()
    assert not (r / "data" / "sub").exists() and not (r / "data" / "up").is_symlink()
    assert (r / "etc").is_dir() and (tmp_path / "outside").read_text() == "host secret"


def test_extract_into_a_missing_directory_is_not_found(root: cfs.Root) -> None:
    with pytest.raises(NotFound, match="/nodir"):
        extract(root, "/nodir", [("x", b"x", "")])


def test_rebase_renames_the_first_component() -> None:
    assert cfs.rebase("d", "new")("d/a/b") == "new/a/b"
    assert cfs.rebase("d", "new")("d") == "new"
    assert cfs.rebase(".", "new")("a") == "new/a" and cfs.rebase(".", "new")("") == "new"
    assert cfs.rebase("d", "new")("other") == "other"


def test_ids_map_through_a_user_namespace() -> None:
    from runtime.process.userns import IdMap

    r = cfs.Root(-1, (IdMap(0, 100000, 65536),), (IdMap(0, 200000, 65536),))
    assert r.host_ids(0, 0) == (100000, 200000) and r.host_ids(33, 33) == (100033, 200033)
    assert r.container_ids(100033, 200033) == (33, 33)
    assert r.container_ids(5, 5) == (65534, 65534)  # not mapped: nobody, as the kernel shows it


def test_a_file_that_shrinks_while_read_keeps_the_tar_well_formed(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"abc")
    fd = os.open(f, os.O_RDONLY)
    try:
        reader = cfs._Exact(fd, 6)
        assert reader.read(10) + reader.read(10) == b"abc\0\0\0"
    finally:
        os.close(fd)
