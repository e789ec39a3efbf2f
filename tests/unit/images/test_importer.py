from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from runtime.errors import InvalidArgument, NotFound
from runtime.images.importer import export_docker_archive, import_rootfs, load
from runtime.images.store import ImageStore
from runtime.paths import Paths
from runtime.storage import merged, whiteout
from tests.unit.images.archives import (
    Entry,
    docker_archive,
    layer_tar,
    oci_layout,
    sha,
    two_layer_image,
)


def _merged_view(store: ImageStore, ref: str) -> dict[str, list[str]]:
    lowers = store.lowerdirs(ref)
    out = {}
    for d in ("etc", "data", "www"):
        found = merged.resolve(lowers, d)
        assert found is not None
        rel, stack = found
        out[d] = sorted(merged.listdir(stack, rel))
    return out


EXPECTED_VIEW = {"etc": ["keep"], "data": ["new.txt"], "www": ["index.html"]}


def _check_whiteouts(store: ImageStore, ref: str) -> None:
    top = store.lowerdirs(ref)[0]
    assert whiteout.is_whiteout(os.path.join(top, "etc/old"))
    assert whiteout.is_opaque(os.path.join(top, "data"))
    assert not os.path.exists(os.path.join(top, "etc/.wh.old"))
    assert not os.path.exists(os.path.join(top, "data/.wh..wh..opq"))
    assert _merged_view(store, ref) == EXPECTED_VIEW


def test_load_docker_archive(tmp_path: Path, store: ImageStore) -> None:
    layers, cfg = two_layer_image()
    iid = docker_archive(tmp_path / "img.tar", layers, cfg, ["demo/app:1"])
    (img,) = load(store, tmp_path / "img.tar")
    assert img.id == iid
    assert img.info().tags == ("demo/app:1",)
    assert img.layers == tuple(sha(layer) for layer in layers)
    assert img.config.cmd == ("sh",)
    _check_whiteouts(store, "demo/app:1")


def test_load_docker25_archive_and_check_config_digest(tmp_path: Path, store: ImageStore) -> None:
    layers, cfg = two_layer_image()
    iid = docker_archive(tmp_path / "img.tar", layers, cfg, ["new:1"], blobs=True)
    (img,) = load(store, tmp_path / "img.tar")
    assert img.id == iid
    _check_whiteouts(store, "new:1")
    # a config whose bytes do not match its name is refused
    with tarfile.open(tmp_path / "img.tar") as src, tarfile.open(tmp_path / "bad.tar", "w") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read()  # type: ignore[union-attr]
            if m.name == f"blobs/sha256/{iid[7:]}":
                data = data.replace(b'"sh"', b'"xx"')
            dst.addfile(m, io.BytesIO(data))
    with pytest.raises(InvalidArgument, match="does not match its digest"):
        load(ImageStore(Paths(tmp_path / "s2", tmp_path / "r2")), tmp_path / "bad.tar")


def test_load_oci_layout_dir_and_tar(tmp_path: Path, store: ImageStore) -> None:
    layers, cfg = two_layer_image()
    iid = oci_layout(tmp_path / "oci", layers, cfg, "localhost:5000/demo:2")
    (img,) = load(store, tmp_path / "oci")
    assert img.id == iid and img.info().tags == ("localhost:5000/demo:2",)
    assert img.repo_digests and img.repo_digests[0].startswith("localhost:5000/demo@sha256:")
    assert store.get(img.repo_digests[0]).id == iid
    # gzip blobs: the stored digest is the compressed one, diff_id the tar's
    top = store.layers.get(img.layers[-1])
    assert top.compression == "gzip" and top.digest != top.diff_id
    _check_whiteouts(store, img.id)
    # the same layout as a tar, into a fresh store, with an extra tag
    with tarfile.open(tmp_path / "oci.tar", "w") as tf:
        tf.add(tmp_path / "oci", arcname=".")
    other = ImageStore(Paths(tmp_path / "s2", tmp_path / "r2"))
    (img2,) = load(other, tmp_path / "oci.tar", tags=["extra:tag"])
    assert img2.id == iid and "docker.io/library/extra:tag" in img2.tags


def test_oci_layout_picks_host_platform_only(tmp_path: Path, store: ImageStore) -> None:
    layers, cfg = two_layer_image()
    oci_layout(tmp_path / "oci", layers, cfg, None)
    imgs = load(store, tmp_path / "oci")  # the mips64 manifest (a bogus config) is ignored
    assert len(imgs) == 1 and imgs[0].tags == ()


def test_corrupt_blob_is_refused(tmp_path: Path, store: ImageStore) -> None:
    layers, cfg = two_layer_image()
    oci_layout(tmp_path / "oci", layers, cfg, "x:1", gzip_layers=False)
    blob = tmp_path / "oci/blobs/sha256" / sha(layers[1])[7:]
    data = bytearray(blob.read_bytes())
    data[600] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(InvalidArgument, match="mismatch"):
        load(store, tmp_path / "oci")
    assert not store.exists("x:1")
    assert not any(p.name.startswith(".tmp") for p in store.layers.root.iterdir())


def test_docker_archive_wrong_diff_id_is_refused(tmp_path: Path, store: ImageStore) -> None:
    layers, cfg = two_layer_image()
    docker_archive(tmp_path / "img.tar", [layers[0], layers[1]], cfg, ["a:1"])
    # swap the layer contents: names stay, bytes no longer match the config's diff_ids
    with tarfile.open(tmp_path / "img.tar") as src, tarfile.open(tmp_path / "bad.tar", "w") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read()  # type: ignore[union-attr]
            if m.name.endswith("layer.tar"):
                data = layers[1] if data == layers[0] else layers[0]
                m.size = len(data)
            dst.addfile(m, io.BytesIO(data))
    with pytest.raises(InvalidArgument, match="diff_id mismatch"):
        load(store, tmp_path / "bad.tar")


def test_not_an_archive(tmp_path: Path, store: ImageStore) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(InvalidArgument, match="composer image import"):
        load(store, tmp_path / "d")
    with pytest.raises(NotFound):
        load(store, tmp_path / "missing.tar")
    (tmp_path / "junk").write_bytes(b"junk" * 100)
    with pytest.raises(InvalidArgument, match="not a tar"):
        load(store, tmp_path / "junk")


def test_manifest_path_escape_refused(tmp_path: Path, store: ImageStore) -> None:
    d = tmp_path / "arch"
    d.mkdir()
    (d / "manifest.json").write_text(json.dumps([{"Config": "../../etc/passwd", "Layers": []}]))
    with pytest.raises(InvalidArgument, match="climbs out"):
        load(store, d)


def test_export_then_import_round_trip(tmp_path: Path, store: ImageStore) -> None:
    layers, cfg = two_layer_image()
    docker_archive(tmp_path / "img.tar", layers, cfg, ["demo/app:1"])
    (img,) = load(store, tmp_path / "img.tar")
    export_docker_archive(store, "demo/app:1", tmp_path / "out.tar")
    with tarfile.open(tmp_path / "out.tar") as tf:
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] == ["demo/app:1"]
    other = ImageStore(Paths(tmp_path / "s2", tmp_path / "r2"))
    (back,) = load(other, tmp_path / "out.tar")
    assert (back.id, back.tags, back.layers, back.config) == (img.id, img.tags, img.layers, img.config)
    _check_whiteouts(other, back.id)


def test_import_rootfs_gzip(tmp_path: Path, store: ImageStore) -> None:
    tar = layer_tar([Entry("bin", "dir", mode=0o755), Entry("bin/tool", data=b"#!/bin/sh\n", mode=0o755)])
    (tmp_path / "root.tar.gz").write_bytes(gzip.compress(tar))
    img = import_rootfs(store, tmp_path / "root.tar.gz", tags=["imported:v1"])
    assert img.layers == (sha(tar),) and img.config.cmd is None
    assert img.config.history[0]["created_by"] == "composer image import"
    (lower,) = store.lowerdirs("imported:v1")
    assert (Path(lower) / "bin/tool").read_bytes() == b"#!/bin/sh\n"
    assert os.stat(Path(lower) / "bin/tool").st_mode & 0o777 == 0o755


def test_a_device_or_fifo_is_refused_at_once(tmp_path: Path, store: ImageStore) -> None:
    """`image load /dev/zero` read forever in a daemon thread (issue 14)."""
    import time

    os.mkfifo(tmp_path / "fifo")
    for path in ("/dev/zero", str(tmp_path / "fifo")):
        started = time.monotonic()
        with pytest.raises(InvalidArgument, match="not a regular file"):
            load(store, path)
        with pytest.raises(InvalidArgument, match="not a regular file"):
            import_rootfs(store, path)
        assert time.monotonic() - started < 1
    # a layout directory whose blob is a device: refused too
    layers, cfg = two_layer_image()
    oci_layout(tmp_path / "oci", layers, cfg, "demo/app:1")
    blobs = sorted((tmp_path / "oci/blobs/sha256").iterdir(), key=lambda p: p.stat().st_size)
    blob = blobs[-1]  # the largest: a layer
    blob.unlink()
    blob.symlink_to("/dev/zero")
    with pytest.raises(InvalidArgument, match="not a regular file"):
        load(store, tmp_path / "oci")


def test_what_is_read_is_capped(tmp_path: Path, store: ImageStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A small gzip that expands past the cap (a bomb) stops with one line naming the knob."""
    layers, cfg = two_layer_image()
    docker_archive(tmp_path / "img.tar", layers, cfg, ["demo/app:1"])
    (tmp_path / "img.tar.gz").write_bytes(gzip.compress((tmp_path / "img.tar").read_bytes()))
    monkeypatch.setenv("COMPOSER_MAX_IMAGE_ARCHIVE_BYTES", "4096")
    with pytest.raises(InvalidArgument, match="more than 4096 bytes once decompressed.*"
                                              "COMPOSER_MAX_IMAGE_ARCHIVE_BYTES"):
        load(store, tmp_path / "img.tar.gz")
    bomb = gzip.compress(b"\0" * (1 << 20))
    (tmp_path / "bomb.tar.gz").write_bytes(bomb)
    with pytest.raises(InvalidArgument, match="more than 4096 bytes"):
        import_rootfs(store, tmp_path / "bomb.tar.gz")
    monkeypatch.delenv("COMPOSER_MAX_IMAGE_ARCHIVE_BYTES")
    (img,) = load(store, tmp_path / "img.tar.gz")  # within the default cap
    assert img.info().tags == ("demo/app:1",)
