from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.storage import rootfs
from runtime.storage.errors import StorageError


def _lowers(tmp_path: Path, n: int) -> list[str]:
    out = []
    for i in range(n):
        d = tmp_path / "layers" / (f"{i:02d}" * 32) / "diff"
        d.mkdir(parents=True)
        out.append(str(d))
    return out


def test_prepare_layout(tmp_path: Path) -> None:
    lowers = _lowers(tmp_path, 2)
    lay = rootfs.prepare(tmp_path / "c1", lowers)
    for d in (lay.upperdir, lay.workdir, lay.mergeddir):
        assert Path(d).is_dir() and Path(d).parent == tmp_path / "c1" / "rootfs"
    assert lay.lowerdirs == tuple(lowers)
    opts, cwd = lay.mount_options()
    assert cwd is None
    assert opts == f"lowerdir={lowers[0]}:{lowers[1]},upperdir={lay.upperdir},workdir={lay.workdir}"
    assert [os.readlink(Path(lay.root, s)) for s in lay.short_lowerdirs] == lowers
    assert rootfs.prepare(tmp_path / "c1", lowers) == lay  # again: fine


def test_long_lowerdir_list_uses_short_links(tmp_path: Path) -> None:
    lowers = _lowers(tmp_path, 60)  # ~60 * 90 bytes > one page
    lay = rootfs.prepare(tmp_path / "c1", lowers)
    opts, cwd = lay.mount_options()
    assert cwd == lay.root and len(opts) < 1000
    assert opts.startswith("lowerdir=l/0:l/1:") and opts.endswith(",upperdir=upper,workdir=work")
    assert os.path.realpath(Path(cwd, "l/59")) == lowers[59]


def test_no_layers_gets_an_empty_lower(tmp_path: Path) -> None:
    lay = rootfs.prepare(tmp_path / "c1", [])
    assert len(lay.lowerdirs) == 1 and Path(lay.lowerdirs[0]).is_dir()


def test_missing_layer_and_too_many(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="missing"):
        rootfs.prepare(tmp_path / "c1", [str(tmp_path / "nope")])
    with pytest.raises(StorageError, match="at most 500"):
        rootfs.prepare(tmp_path / "c2", [str(tmp_path)] * 501)


def test_cleanup_idempotent(tmp_path: Path) -> None:
    lay = rootfs.prepare(tmp_path / "c1", _lowers(tmp_path, 1))
    Path(lay.upperdir, "written").write_text("x")
    os.chmod(Path(lay.workdir), 0)  # overlay leaves work/work at 0o000
    rootfs.cleanup(tmp_path / "c1")
    rootfs.cleanup(tmp_path / "c1")
    assert not Path(lay.root).exists() and (tmp_path / "c1").is_dir()
    assert Path(lay.lowerdirs[0]).is_dir()  # never touches the layers
    rootfs.cleanup(tmp_path / "never-made")


def test_mountinfo_unescape() -> None:
    assert rootfs._unescape(r"/a\040b\011c") == "/a b\tc"
    assert rootfs._unescape("/var/lib/composer/x") == "/var/lib/composer/x"  # the fast path
    assert rootfs._unescape("/a\\b") == "/a\\b"  # a backslash that escapes nothing stays
