"""Blob downloads: resume after a broken connection, partial files, digest verification."""
from __future__ import annotations

import os

import pytest

from runtime.images import registry_client
from runtime.images.registry import pull
from runtime.images.registry_errors import DigestMismatch, RegistryError
from runtime.images.store import ImageStore
from tests.unit.registry.fake_registry import FakeRegistry, LayerBlob, make_layer

BIG = 1 << 20


def _big_layer() -> LayerBlob:
    return make_layer({"blob.bin": os.urandom(BIG)})  # random: gzip cannot shrink it


def _ranges(reg: FakeRegistry, digest: str) -> list[str]:
    return [h.get("Range", "") for p, h in reg.blob_gets() if p.endswith(digest)]


async def test_mid_download_disconnect_resumes_with_range(
        registry: FakeRegistry, domain: str, store: ImageStore) -> None:
    ly = _big_layer()
    registry.push_image("test/big", "1", [ly])
    registry.disconnect_after[ly.digest] = [300_000, 700_000]  # two cuts, then whole

    img = await pull(store, f"{domain}/test/big:1")

    ranges = _ranges(registry, ly.digest)
    assert ranges[0] == "" and len(ranges) == 3
    first, second = (int(r.removeprefix("bytes=").rstrip("-")) for r in ranges[1:])
    assert 0 < first <= 300_000 and first < second <= first + 700_000
    assert img.layers == (ly.diff_id,)
    assert store.layers.get(ly.diff_id).digest == ly.digest


async def test_partial_from_an_earlier_run_is_continued(
        registry: FakeRegistry, domain: str, store: ImageStore) -> None:
    ly = _big_layer()
    registry.push_image("test/big", "1", [ly])
    downloads = store.paths.root / "downloads"
    downloads.mkdir(parents=True)
    (downloads / f"{ly.digest}.partial").write_bytes(ly.blob[:123_456])

    await pull(store, f"{domain}/test/big:1")

    assert _ranges(registry, ly.digest) == ["bytes=123456-"]
    assert not (downloads / f"{ly.digest}.partial").exists()


async def test_failed_pull_keeps_the_partial_and_the_next_pull_resumes(
        registry: FakeRegistry, domain: str, store: ImageStore,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_client, "ATTEMPTS", 2)
    ly = _big_layer()
    registry.push_image("test/big", "1", [ly])
    registry.disconnect_after[ly.digest] = [200_000, 200_000]
    partial = store.paths.root / "downloads" / f"{ly.digest}.partial"

    with pytest.raises(RegistryError, match="resumes where it stopped"):
        await pull(store, f"{domain}/test/big:1")
    kept = partial.stat().st_size
    assert 0 < kept < len(ly.blob)
    assert store.list() == []

    await pull(store, f"{domain}/test/big:1")
    assert _ranges(registry, ly.digest)[-1] == f"bytes={kept}-"
    assert store.layers.exists(ly.diff_id) and not partial.exists()


async def test_corrupted_blob_is_refused_and_discarded(
        registry: FakeRegistry, domain: str, store: ImageStore) -> None:
    ly = _big_layer()
    registry.push_image("test/big", "1", [ly])
    registry.corrupt.add(ly.digest)

    with pytest.raises(DigestMismatch) as e:
        await pull(store, f"{domain}/test/big:1")

    msg = str(e.value)
    assert f"cannot pull {domain}/test/big:1" in msg and ly.digest in msg and "corrupt" in msg
    assert not (store.paths.root / "downloads" / f"{ly.digest}.partial").exists()
    assert store.list() == [] and store.layers.list() == []


async def test_corrupted_config_is_refused(registry: FakeRegistry, domain: str, store: ImageStore) -> None:
    import json

    registry.push_image("test/app", "1", [make_layer({"a": b"a"})])
    cdigest = json.loads(registry.manifests[("test/app", "1")][0])["config"]["digest"]
    registry.corrupt.add(cdigest)
    with pytest.raises(DigestMismatch, match=cdigest):
        await pull(store, f"{domain}/test/app:1")


async def test_bad_partial_is_discarded_and_fetched_again(
        registry: FakeRegistry, domain: str, store: ImageStore) -> None:
    ly = _big_layer()
    registry.push_image("test/big", "1", [ly])
    downloads = store.paths.root / "downloads"
    downloads.mkdir(parents=True)
    (downloads / f"{ly.digest}.partial").write_bytes(b"\0" * 5000)  # not the blob's bytes

    await pull(store, f"{domain}/test/big:1")

    assert _ranges(registry, ly.digest) == ["bytes=5000-", ""]  # resumed, mismatched, restarted
    assert store.layers.get(ly.diff_id).digest == ly.digest


async def test_registry_ignoring_range_restarts_cleanly(
        registry: FakeRegistry, domain: str, store: ImageStore) -> None:
    ly = _big_layer()
    registry.push_image("test/big", "1", [ly])
    registry.ignore_range = True
    registry.disconnect_after[ly.digest] = [400_000]

    await pull(store, f"{domain}/test/big:1")

    assert store.layers.get(ly.diff_id).digest == ly.digest
    assert len(_ranges(registry, ly.digest)) == 2


async def test_missing_blob_names_the_fix(registry: FakeRegistry, domain: str, store: ImageStore) -> None:
    ly = make_layer({"a": b"a"})
    registry.push_image("test/app", "1", [ly])
    del registry.blobs[ly.digest]
    with pytest.raises(RegistryError, match="missing on .*push it again"):
        await pull(store, f"{domain}/test/app:1")


async def test_concurrent_pulls_of_one_image_download_each_blob_once(
        registry: FakeRegistry, domain: str, store: ImageStore) -> None:
    import asyncio

    layers = [_big_layer(), make_layer({"small": b"s"})]
    registry.push_image("test/big", "1", layers)
    registry.blob_delay = 0.05

    a, b = await asyncio.gather(pull(store, f"{domain}/test/big:1"), pull(store, f"{domain}/test/big:1"))

    assert a.id == b.id
    for ly in layers:
        assert len(_ranges(registry, ly.digest)) == 1
    assert not list((store.paths.root / "downloads").iterdir())  # no partials, no lock files
