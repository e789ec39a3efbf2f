from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from runtime.storage import whiteout
from runtime.storage.errors import InvalidArgument, NotFound, UnsafeArchive
from runtime.storage.layers import LayerStore
from tests.unit.images.archives import Entry, layer_tar, sha


@pytest.fixture
def layers(tmp_path: Path) -> LayerStore:
    return LayerStore(tmp_path / "layers")


def _no_tmp(layers: LayerStore) -> bool:
    return not [p for p in layers.root.iterdir() if p.name.startswith(".tmp")]


# -- safety -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "entries",
    [
        [Entry("../escape", data=b"x")],
        [Entry("a/../../escape", data=b"x")],
        [Entry("ok", data=b"x"), Entry("link", "hardlink", link="../../etc/passwd")],
        [Entry("evil", "symlink", link="/"), Entry("evil/escape", data=b"x")],
        [Entry("evil", "symlink", link="../../.."), Entry("evil/escape", data=b"x")],
        [Entry("d", "dir"), Entry("d/up", "symlink", link=".."), Entry("d/up/up2", "symlink", link=".."),
         Entry("d/up/up2/escape", data=b"x")],
        [Entry("a", "dir"), Entry("a/x", data=b"1"), Entry("a", "symlink", link="/tmp"),
         Entry("a/escape", data=b"x")],
    ],
    ids=["dotdot", "nested-dotdot", "hardlink-dotdot", "symlink-abs", "symlink-rel", "symlink-chain",
         "dir-replaced-by-symlink"],
)
def test_unsafe_tar_is_refused(tmp_path: Path, layers: LayerStore, entries: list[Entry]) -> None:
    with pytest.raises(UnsafeArchive):
        layers.add_tar(io.BytesIO(layer_tar(entries)))
    assert not (tmp_path / "escape").exists() and not Path("/escape").exists()
    assert layers.list() == [] and _no_tmp(layers)


def test_absolute_names_stay_inside(layers: LayerStore) -> None:
    layer = layers.add_tar(io.BytesIO(layer_tar([Entry("/etc/abs", data=b"in"),
                                                 Entry("/etc/hl", "hardlink", link="/etc/abs")])))
    assert Path(layer.path, "etc/abs").read_bytes() == b"in"
    assert os.stat(Path(layer.path, "etc/hl")).st_ino == os.stat(Path(layer.path, "etc/abs")).st_ino


def test_symlink_is_kept_not_followed(layers: LayerStore) -> None:
    layer = layers.add_tar(io.BytesIO(layer_tar([Entry("etc", "symlink", link="/etc")])))
    assert os.readlink(Path(layer.path, "etc")) == "/etc"


# -- fidelity -----------------------------------------------------------------------------------
def test_metadata_preserved(layers: LayerStore) -> None:
    tar = layer_tar([
        Entry("dir", "dir", mode=0o750, mtime=1_500_000_000),
        Entry("dir/exe", data=b"#!", mode=0o4755, mtime=1_400_000_000),
        Entry("dir/ro", "dir", mode=0o555, mtime=1_300_000_000),
        Entry("dir/ro/f", data=b"x", mode=0o600),
        Entry("dir/again", "hardlink", link="dir/exe"),
        Entry("sym", "symlink", link="dir/exe"),
    ])
    layer = layers.add_tar(io.BytesIO(tar))
    p = Path(layer.path)
    st = os.stat(p / "dir")
    assert stat.S_IMODE(st.st_mode) == 0o750 and st.st_mtime == 1_500_000_000
    st = os.stat(p / "dir/exe")
    assert stat.S_IMODE(st.st_mode) == 0o4755 and st.st_mtime == 1_400_000_000 and st.st_nlink == 2
    assert stat.S_IMODE(os.stat(p / "dir/ro").st_mode) == 0o555
    assert os.stat(p / "dir/ro").st_mtime == 1_300_000_000
    assert os.readlink(p / "sym") == "dir/exe"
    assert layer.size == 3 and layer.diff_id == sha(tar) == layer.digest


def test_later_entry_replaces_earlier(layers: LayerStore) -> None:
    tar = layer_tar([Entry("x", "dir"), Entry("x/f", data=b"1"), Entry("x", data=b"file now"),
                     Entry("y", data=b"old"), Entry("y", data=b"new")])
    p = Path(layers.add_tar(io.BytesIO(tar)).path)
    assert (p / "x").read_bytes() == b"file now" and (p / "y").read_bytes() == b"new"


def test_dedupe_and_compression(tmp_path: Path, layers: LayerStore) -> None:
    tar = layer_tar([Entry("a", data=b"same")])
    one = layers.add_tar(io.BytesIO(tar))
    two = layers.add_tar(io.BytesIO(tar))
    (tmp_path / "l.tar.gz").write_bytes(gzip.compress(tar))
    three = layers.add_tar(tmp_path / "l.tar.gz")
    assert one == two and three.diff_id == one.diff_id
    assert len(layers.list()) == 1 and _no_tmp(layers)
    assert layers.export_tar(one.diff_id).read_bytes() == tar


def test_expected_digests(layers: LayerStore) -> None:
    tar = layer_tar([Entry("a", data=b"x")])
    with pytest.raises(InvalidArgument, match="diff_id mismatch"):
        layers.add_tar(io.BytesIO(tar), expected_diff_id="sha256:" + "0" * 64)
    with pytest.raises(InvalidArgument, match="blob digest mismatch"):
        layers.add_tar(io.BytesIO(tar), expected_digest="sha256:" + "0" * 64)
    assert layers.list() == [] and _no_tmp(layers)
    assert layers.add_tar(io.BytesIO(tar), expected_diff_id=sha(tar)).diff_id == sha(tar)


def test_truncated_and_garbage(layers: LayerStore) -> None:
    tar = layer_tar([Entry("a", data=b"x" * 5000)])
    with pytest.raises(InvalidArgument):
        layers.add_tar(io.BytesIO(gzip.compress(tar)[:-30]))
    with pytest.raises(InvalidArgument):
        layers.add_tar(io.BytesIO(tar[:1000]))
    assert layers.list() == [] and _no_tmp(layers)


def test_get_remove(layers: LayerStore) -> None:
    layer = layers.add_tar(io.BytesIO(layer_tar([Entry("a")])))
    assert layers.get(layer.diff_id) == layer and layers.exists(layer.diff_id)
    layers.remove(layer.diff_id)
    layers.remove(layer.diff_id)  # idempotent
    assert not layers.exists(layer.diff_id) and not Path(layer.path).exists()
    with pytest.raises(NotFound, match=f"layer {layer.diff_id} not found"):
        layers.get(layer.diff_id)
    with pytest.raises(InvalidArgument):
        layers.get("sha256:../../etc")


def test_stale_tmp_of_dead_process_is_cleaned(tmp_path: Path) -> None:
    root = tmp_path / "layers"
    (root / ".tmp-999999999-abc/diff").mkdir(parents=True)
    (root / f".tmp-{os.getpid()}-mine").mkdir()
    LayerStore(root)
    assert not (root / ".tmp-999999999-abc").exists() and (root / f".tmp-{os.getpid()}-mine").exists()


# -- whiteouts (the unprivileged spelling: user.overlay.* when not root) ----------------------------
def test_whiteouts_become_overlay_form_and_back(tmp_path: Path, layers: LayerStore) -> None:
    tar = layer_tar([Entry("etc", "dir", mode=0o755), Entry("etc/.wh.gone"),
                     Entry("data", "dir", mode=0o755), Entry("data/.wh..wh..opq"),
                     Entry("data/new", data=b"n"), Entry(".wh..wh.plnk", "dir")])
    layer = layers.add_tar(io.BytesIO(tar))
    p = Path(layer.path)
    assert whiteout.is_whiteout(p / "etc/gone") and whiteout.is_opaque(p / "data")
    assert sorted(os.listdir(p)) == ["data", "etc"]  # aufs metadata dropped
    # a dir with overlay whiteouts (a build's upper dir) packs back to the OCI spelling
    again = layers.add_dir(layer.path)
    with tarfile.open(layers.export_tar(again.diff_id)) as tf:
        names = tf.getnames()
    assert "etc/.wh.gone" in names and "data/.wh..wh..opq" in names and "data/new" in names
    assert "etc/gone" not in names
    assert again.diff_id == layers.add_dir(layer.path).diff_id  # packing is deterministic


def test_add_dir_keeps_hardlinks_and_modes(tmp_path: Path, layers: LayerStore) -> None:
    src = tmp_path / "src"
    (src / "bin").mkdir(parents=True)
    (src / "bin/a").write_bytes(b"aaa")
    os.link(src / "bin/a", src / "bin/b")
    os.chmod(src / "bin/a", 0o700)
    os.symlink("a", src / "bin/c")
    layer = layers.add_dir(src)
    p = Path(layer.path)
    assert os.stat(p / "bin/a").st_ino == os.stat(p / "bin/b").st_ino
    assert stat.S_IMODE(os.stat(p / "bin/a").st_mode) == 0o700
    assert os.readlink(p / "bin/c") == "a"
    with pytest.raises(NotFound):
        layers.add_dir(tmp_path / "nope")


def test_xattrs_round_trip(tmp_path: Path, layers: LayerStore) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x")
    os.setxattr(src / "f", "user.composer.test", b"\x00\xffbinary")
    layer = layers.add_dir(src)
    assert os.getxattr(Path(layer.path, "f"), "user.composer.test") == b"\x00\xffbinary"
    with tarfile.open(layers.export_tar(layer.diff_id)) as tf:
        assert "SCHILY.xattr.user.composer.test" in tf.getmember("f").pax_headers


def test_overlay_xattrs_in_a_tar_are_ignored(layers: LayerStore) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        ti = tarfile.TarInfo("d")
        ti.type = tarfile.DIRTYPE
        ti.pax_headers = {"SCHILY.xattr.trusted.overlay.opaque": "y",
                          "SCHILY.xattr.user.overlay.opaque": "y"}
        tf.addfile(ti)
    layer = layers.add_tar(io.BytesIO(buf.getvalue()))
    assert not whiteout.is_opaque(Path(layer.path, "d"))
