from __future__ import annotations

import hashlib
import io
import subprocess

import pytest

from runtime.errors import Conflict, InvalidArgument, NotFound
from runtime.images.config import ImageConfig
from runtime.images.store import ImageStore
from runtime.paths import Paths
from runtime.storage.errors import StorageError
from tests.unit.images.archives import Entry, layer_tar


def _image(store: ImageStore, text: bytes, tags: list[str], cmd: str = "sh"):
    layer = store.layers.add_tar(io.BytesIO(layer_tar([Entry("f", data=text)])))
    return store.put(ImageConfig(cmd=(cmd,)), [layer], tags=tags)


def test_put_get_id_is_sha_of_config(store: ImageStore) -> None:
    img = _image(store, b"x", ["app:1"])
    raw = store.config_bytes(img)
    assert img.id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert img.tags == ("docker.io/library/app:1",)
    assert img.info().tags == ("app:1",)
    for ref in ("app:1", "docker.io/library/app:1", img.id, img.id[7:19], img.short_id):
        assert store.get(ref).id == img.id
    assert store.get("app:1").config.cmd == ("sh",)
    assert img.size == 1


def test_not_found_names_image_and_fix(store: ImageStore) -> None:
    with pytest.raises(NotFound) as e:
        store.get("busybox")
    assert str(e.value) == ("image busybox:latest not found: build it, or load it with "
                            "`composer image load FILE`")
    with pytest.raises(InvalidArgument):
        store.get("Bad Ref")


def test_tags_persist_across_instances(paths: Paths, store: ImageStore) -> None:
    img = _image(store, b"x", ["app:1"])
    store.tag("app:1", "localhost:5000/app:prod")
    other = ImageStore(paths)
    assert other.get("localhost:5000/app:prod").id == img.id
    assert set(other.get(img.id).tags) == {"docker.io/library/app:1", "localhost:5000/app:prod"}


def test_tag_moves_between_images(store: ImageStore) -> None:
    a = _image(store, b"a", ["app:latest"])
    b = _image(store, b"b", ["app:latest"], cmd="other")
    assert a.id != b.id
    assert store.get("app").id == b.id
    assert store.get(a.id).tags == ()  # dangling, still there


def test_remove_untags_then_deletes_and_gcs_layers(store: ImageStore) -> None:
    img = _image(store, b"x", ["app:1", "app:2"])
    assert store.remove("app:1") == ["untagged: app:1"]
    assert store.get(img.id).tags == ("docker.io/library/app:2",)
    out = store.remove("app:2")
    assert out[0] == "untagged: app:2" and f"deleted: {img.id}" in out
    assert store.list() == [] and store.layers.list() == []


def test_remove_by_id_with_several_tags_needs_force(store: ImageStore) -> None:
    img = _image(store, b"x", ["app:1", "app:2"])
    with pytest.raises(Conflict, match="has 2 tags"):
        store.remove(img.id)
    out = store.remove(img.short_id, force=True)
    assert sorted(out[:2]) == ["untagged: app:1", "untagged: app:2"] and store.list() == []


def test_shared_layer_survives_until_last_image(store: ImageStore) -> None:
    layer = store.layers.add_tar(io.BytesIO(layer_tar([Entry("f", data=b"shared")])))
    a = store.put(ImageConfig(cmd=("a",)), [layer], tags=["a"])
    store.put(ImageConfig(cmd=("b",)), [layer], tags=["b"])
    store.remove("a")
    assert store.layers.exists(layer.diff_id)
    store.remove("b")
    assert not store.layers.exists(layer.diff_id)
    with pytest.raises(NotFound):
        store.get(a.id)


def test_remove_in_use_is_conflict(store: ImageStore) -> None:
    img = _image(store, b"x", ["app"])
    with pytest.raises(Conflict, match="used by container.*web-1"):
        store.remove("app", in_use=lambda iid: ["web-1"] if iid == img.id else [])
    assert store.get("app").id == img.id


def test_put_needs_layers(store: ImageStore) -> None:
    with pytest.raises(StorageError, match="not in the layer store"):
        store.put(ImageConfig(), ["sha256:" + "0" * 64])


def test_lowerdirs_top_first(store: ImageStore) -> None:
    l1 = store.layers.add_tar(io.BytesIO(layer_tar([Entry("one")])))
    l2 = store.layers.add_tar(io.BytesIO(layer_tar([Entry("two")])))
    img = store.put(ImageConfig(), [l1, l2], tags=["two-layers"])
    assert img.layers == (l1.diff_id, l2.diff_id)
    assert store.lowerdirs("two-layers") == [l2.path, l1.path]


def test_ambiguous_prefix(store: ImageStore) -> None:
    ids = [_image(store, bytes([i]), [], cmd=str(i)).id for i in range(17)]
    firsts = [i[7] for i in ids]  # 17 ids, 16 hex digits: two share a first digit
    dup = next(c for c in firsts if firsts.count(c) > 1)
    with pytest.raises(Conflict, match="ambiguous"):
        store.get(dup)


def test_ensure_busybox(store: ImageStore) -> None:
    img = store.ensure_busybox()
    assert img.info().tags == ("busybox:latest",)
    assert store.ensure_busybox().id == img.id  # no second image
    (lower,) = store.lowerdirs(img)
    out = subprocess.run([f"{lower}/bin/busybox", "echo", "ok"], capture_output=True, text=True)
    assert out.stdout == "ok\n"
    assert img.config.env_dict()["PATH"].endswith("/bin")
