from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from runtime.storage.errors import Conflict, InvalidArgument, NotFound
from runtime.storage.layers import LayerStore
from runtime.storage.volumes import ANONYMOUS_LABEL, VolumeStore
from tests.unit.images.archives import LOWER, UPPER, Entry, layer_tar


@pytest.fixture
def vols(tmp_path: Path) -> VolumeStore:
    return VolumeStore(tmp_path / "volumes")


def test_create_is_idempotent(vols: VolumeStore) -> None:
    a = vols.create("db", {"com.docker.compose.project": "p"})
    b = vols.create("db", {"other": "ignored"})
    assert a == b and Path(a.mountpoint).is_dir()
    assert a.mountpoint == str(vols.root / "db" / "_data")
    info = a.info()
    assert info.name == "db" and info.spec.labels == {"com.docker.compose.project": "p"}
    assert info.created_at > 0


def test_anonymous(vols: VolumeStore) -> None:
    v = vols.create()
    assert len(v.name) == 64 and v.anonymous and ANONYMOUS_LABEL in v.labels


@pytest.mark.parametrize("name", ["../etc", "a/b", "..", ".hidden", "", "x" * 300, "a\nb"])
def test_bad_names_rejected(vols: VolumeStore, name: str) -> None:
    with pytest.raises(InvalidArgument):
        vols.create(name)
    with pytest.raises(InvalidArgument):
        vols.get(name)
    assert not (vols.root.parent / "etc").exists()


def test_list_with_label_filter(vols: VolumeStore) -> None:
    vols.create("a", {"proj": "one", "tier": "db"})
    vols.create("b", {"proj": "two"})
    vols.create("c")
    assert [v.name for v in vols.list()] == ["a", "b", "c"]
    assert [v.name for v in vols.list({"proj": "one"})] == ["a"]
    assert [v.name for v in vols.list({"proj": None})] == ["a", "b"]
    assert [v.name for v in vols.list({"proj": "one", "tier": "web"})] == []


def test_remove(vols: VolumeStore) -> None:
    v = vols.create("data")
    Path(v.mountpoint, "file").write_text("x")
    with pytest.raises(Conflict, match="in use by container.*web-1"):
        vols.remove("data", in_use=lambda n: ["web-1"])
    with pytest.raises(Conflict):
        vols.remove("data", force=True, in_use=lambda n: ["web-1"])
    assert vols.exists("data")
    vols.remove("data", in_use=lambda n: [])
    assert not vols.exists("data") and not (vols.root / "data").exists()
    with pytest.raises(NotFound, match="volume data not found"):
        vols.remove("data")
    vols.remove("data", force=True)  # missing is fine with force
    assert [p.name for p in vols.root.iterdir()] == []


def _image_layers(tmp_path: Path) -> list[str]:
    layers = LayerStore(tmp_path / "layers")
    lo = layers.add_tar(io.BytesIO(layer_tar(LOWER + [Entry("link", "symlink", link="/data")])))
    up = layers.add_tar(io.BytesIO(layer_tar(UPPER)))
    return [up.path, lo.path]


def test_init_from_image_copies_merged_content(tmp_path: Path, vols: VolumeStore) -> None:
    lowers = _image_layers(tmp_path)
    vols.create("web")
    assert vols.init_from_image("web", lowers, "/www") is True
    mp = Path(vols.get("web").mountpoint)
    assert (mp / "index.html").read_bytes() == b"<h1>hi</h1>\n"
    assert stat.S_IMODE(os.stat(mp / "index.html").st_mode) == 0o640
    assert stat.S_IMODE(os.stat(mp).st_mode) == 0o750  # the image dir's mode goes to the volume
    # opaque dir: only the upper content; through an in-image symlink
    vols.create("data")
    assert vols.init_from_image("data", lowers, "/link/") is True
    assert sorted(os.listdir(vols.get("data").mountpoint)) == ["new.txt"]
    # whiteout: etc/old is gone
    vols.create("etc")
    vols.init_from_image("etc", lowers, "etc")
    assert sorted(os.listdir(vols.get("etc").mountpoint)) == ["keep"]


def test_init_only_when_empty_and_not_nocopy(tmp_path: Path, vols: VolumeStore) -> None:
    lowers = _image_layers(tmp_path)
    v = vols.create("web")
    assert vols.init_from_image("web", lowers, "/www", nocopy=True) is False
    assert os.listdir(v.mountpoint) == []
    Path(v.mountpoint, "mine").write_text("user data")
    assert vols.init_from_image("web", lowers, "/www") is False
    assert os.listdir(v.mountpoint) == ["mine"]
    vols.create("none")
    assert vols.init_from_image("none", lowers, "/does/not/exist") is False
    assert vols.init_from_image("none", lowers, "/etc/keep") is False  # a file, not a dir
    assert os.listdir(vols.get("none").mountpoint) == []
    with pytest.raises(NotFound):
        vols.init_from_image("missing", lowers, "/www")
