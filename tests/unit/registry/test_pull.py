"""pull() against the in-process registry: manifests, config, layers, tags, repo digests."""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from runtime.images.registry import (
    ALREADY_EXISTS,
    DOWNLOADED,
    PULL_COMPLETE,
    UP_TO_DATE,
    PullProgress,
    pull,
)
from runtime.images.registry_errors import (
    DigestMismatch,
    ManifestUnknown,
    NoMatchingPlatform,
    RegistryUnreachable,
    UnsupportedMediaType,
)
from runtime.images.store import ImageStore
from tests.unit.registry.fake_registry import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    FakeRegistry,
    make_layer,
    sha,
)


def _two_layers() -> list:
    return [make_layer({"bin/hello": b"hello\n", "etc/os-release": b"ID=fake\n"}),
            make_layer({"etc/motd": b"welcome\n"})]


async def test_pull_by_tag_stores_layers_config_tag_and_repo_digest(
        registry: FakeRegistry, domain: str, store: ImageStore) -> None:
    layers = _two_layers()
    mdigest = registry.push_image("test/app", "1", layers)
    events: list[PullProgress] = []

    img = await pull(store, f"{domain}/test/app:1", progress=events.append)

    assert img.layers == tuple(ly.diff_id for ly in layers)
    assert img.tags == (f"{domain}/test/app:1",)
    assert img.repo_digests == (f"{domain}/test/app@{mdigest}",)
    assert img.config.cmd == ("sh",)
    config_digest = json.loads(registry.manifests[("test/app", "1")][0])["config"]["digest"]
    assert img.id == config_digest
    assert store.get(f"{domain}/test/app@{mdigest}").id == img.id
    assert img.manifest is not None and img.manifest["mediaType"] == DOCKER_MANIFEST
    for ly in layers:
        stored = store.layers.get(ly.diff_id)
        assert stored.digest == ly.digest and stored.compression == "gzip"
    assert (Path(store.layers.get(layers[1].diff_id).path) / "etc/motd").read_bytes() == b"welcome\n"
    # progress: per-layer bytes up to the blob size, then completion, then the image
    for ly in layers:
        mine = [e for e in events if e.digest == ly.digest]
        assert mine[-1].status == PULL_COMPLETE
        assert max(e.current for e in mine) == len(ly.blob)
        assert all(e.total == len(ly.blob) for e in mine)
    assert events[-1].status == DOWNLOADED and events[-1].digest == mdigest
    # every manifest request accepted all four media types
    accepts = [h["Accept"] for p, h in registry.requests if "/manifests/" in p]
    assert accepts and all(a.count("application/") == 4 for a in accepts)
    # nothing left in the download dir
    assert not [p for p in (store.paths.root / "downloads").iterdir()]


async def test_second_pull_is_a_noop(registry: FakeRegistry, domain: str, store: ImageStore) -> None:
    registry.push_image("test/app", "1", _two_layers())
    first = await pull(store, f"{domain}/test/app:1")
    before = len(registry.blob_gets())
    events: list[PullProgress] = []

    again = await pull(store, f"{domain}/test/app:1", progress=events.append)

    assert again.id == first.id
    assert len(registry.blob_gets()) == before  # no config, no layer downloaded
    assert [e.status for e in events if e.id] == [ALREADY_EXISTS, ALREADY_EXISTS]
    assert events[-1].status == UP_TO_DATE


async def test_layers_already_stored_are_skipped(
        registry: FakeRegistry, domain: str, store: ImageStore) -> None:
    base, top1, top2 = make_layer({"base": b"b"}), make_layer({"one": b"1"}), make_layer({"two": b"2"})
    registry.push_image("test/one", "latest", [base, top1])
    registry.push_image("test/two", "latest", [base, top2])
    await pull(store, f"{domain}/test/one")

    img = await pull(store, f"{domain}/test/two")

    fetched = [p for p, _ in registry.blob_gets()]
    assert not any(base.digest in p for p in fetched if "/test/two/" in p)
    assert any(top2.digest in p for p in fetched)
    assert img.layers == (base.diff_id, top2.diff_id)
    assert img.tags == (f"{domain}/test/two:latest",)


async def test_pull_by_digest_records_no_tag(
        registry: FakeRegistry, domain: str, store: ImageStore) -> None:
    mdigest = registry.push_image("test/app", "1", _two_layers())

    img = await pull(store, f"{domain}/test/app@{mdigest}")

    assert img.tags == ()
    assert img.repo_digests == (f"{domain}/test/app@{mdigest}",)
    assert any(p.endswith(f"/manifests/{mdigest}") for p, _ in registry.requests)


async def test_manifest_list_picks_host_platform(
        registry: FakeRegistry, domain: str, store: ImageStore) -> None:
    other = "s390x" if os.uname().machine != "s390x" else "ppc64le"
    mine = registry.push_image("test/multi", None, [make_layer({"me": b"host"})])
    theirs = registry.push_image("test/multi", None, [make_layer({"me": b"other"})], arch=other)
    from runtime.images.registry import host_platform

    arch, variant = host_platform()
    plat = {"os": "linux", "architecture": arch} | ({"variant": variant} if variant else {})
    list_digest = registry.push_index("test/multi", "1", [
        ({"os": "linux", "architecture": other}, theirs), (plat, mine)])

    img = await pull(store, f"{domain}/test/multi:1")

    assert img.repo_digests == (f"{domain}/test/multi@{list_digest}",)  # the list's digest
    assert (Path(store.layers.get(img.layers[0]).path) / "me").read_bytes() == b"host"
    assert not any(theirs in p for p, _ in registry.requests)


async def test_oci_index_and_oci_manifest(registry: FakeRegistry, domain: str, store: ImageStore) -> None:
    from runtime.images.registry import host_platform

    m = registry.push_image("test/oci", None, _two_layers(), oci=True)
    registry.push_index("test/oci", "v1",
                        [({"os": "linux", "architecture": host_platform()[0]}, m)], oci=True)
    assert registry.manifests[("test/oci", "v1")][1] == OCI_INDEX

    img = await pull(store, f"{domain}/test/oci:v1")

    assert len(img.layers) == 2
    assert img.manifest is not None and img.manifest["config"]["mediaType"].startswith("application/vnd.oci")


async def test_no_manifest_for_this_platform(
        registry: FakeRegistry, domain: str, store: ImageStore) -> None:
    m = registry.push_image("test/multi", None, [make_layer({"x": b"x"})], arch="mips64le")
    registry.push_index("test/multi", "1", [({"os": "linux", "architecture": "mips64le"}, m)])

    with pytest.raises(NoMatchingPlatform) as e:
        await pull(store, f"{domain}/test/multi:1")

    msg = str(e.value)
    assert "no manifest for linux/" in msg and "test/multi:1" in msg and "linux/mips64le" in msg


async def test_single_manifest_for_another_arch_is_refused(
        registry: FakeRegistry, domain: str, store: ImageStore) -> None:
    registry.push_image("test/arm", "1", [make_layer({"x": b"x"})], arch="mips64le")
    with pytest.raises(NoMatchingPlatform, match="built for linux/mips64le"):
        await pull(store, f"{domain}/test/arm:1")
    assert not registry.blob_gets()[1:]  # only the config was fetched, no layer


async def test_unknown_tag_is_a_clear_error(
        registry: FakeRegistry, domain: str, store: ImageStore) -> None:
    registry.push_image("test/app", "1", _two_layers())
    with pytest.raises(ManifestUnknown) as e:
        await pull(store, f"{domain}/test/app:nope")
    msg = str(e.value)
    assert msg.startswith(f"image {domain}/test/app:nope not found")
    assert "'nope'" in msg and "manifest unknown" in msg.lower() and "check the name and tag" in msg
    assert isinstance(e.value, LookupError)


async def test_unreachable_registry(store: ImageStore) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RegistryUnreachable) as e:
        await pull(store, f"127.0.0.1:{port}/test/app:1")
    msg = str(e.value)
    assert f"127.0.0.1:{port}/test/app:1" in msg and "unreachable" in msg and "refused" in msg


async def test_schema1_and_artifacts_are_unsupported(
        registry: FakeRegistry, domain: str, store: ImageStore) -> None:
    registry.put_manifest("test/old", "1", json.dumps({"schemaVersion": 1, "name": "test/old"}).encode(),
                          "application/vnd.docker.distribution.manifest.v1+prettyjws")
    with pytest.raises(UnsupportedMediaType, match="schema 1"):
        await pull(store, f"{domain}/test/old:1")

    registry.push_image("test/chart", "1", [make_layer({"x": b"x"})],
                        config_media_type="application/vnd.cncf.helm.config.v1+json")
    with pytest.raises(UnsupportedMediaType, match="not a container image"):
        await pull(store, f"{domain}/test/chart:1")


async def test_zstd_layer(registry: FakeRegistry, domain: str, store: ImageStore) -> None:
    ly = make_layer({"z": b"zstd content\n" * 100}, compression="zstd")
    registry.push_image("test/zstd", "1", [ly], oci=True)

    img = await pull(store, f"{domain}/test/zstd:1")

    assert store.layers.get(img.layers[0]).compression == "zstd"


async def test_manifest_digest_is_verified(registry: FakeRegistry, domain: str, store: ImageStore) -> None:
    registry.push_image("test/app", "1", _two_layers())
    registry.wrong_content_digest = True
    with pytest.raises(DigestMismatch, match="manifest 1 has digest"):
        await pull(store, f"{domain}/test/app:1")


async def test_layer_downloads_are_parallel_and_bounded(
        registry: FakeRegistry, domain: str, store: ImageStore) -> None:
    layers = [make_layer({f"f{i}": os.urandom(2048)}) for i in range(5)]
    registry.push_image("test/wide", "1", layers)
    registry.blob_delay = 0.1

    img = await pull(store, f"{domain}/test/wide:1", max_parallel=2)

    assert len(img.layers) == 5
    assert registry.max_active_blob_gets == 2

    registry.max_active_blob_gets = 0
    store2 = ImageStore(store.paths.__class__(root=store.paths.root / "b", run=store.paths.run))
    await pull(store2, f"{domain}/test/wide:1", max_parallel=1)
    assert registry.max_active_blob_gets == 1


async def test_diff_id_mismatch_is_refused(registry: FakeRegistry, domain: str, store: ImageStore) -> None:
    ly = make_layer({"a": b"a"})
    registry.push_image("test/bad", "1", [ly], diff_ids=[sha(b"something else")])
    with pytest.raises(DigestMismatch, match="does not match its image config"):
        await pull(store, f"{domain}/test/bad:1")
    assert store.list() == [] and store.layers.list() == []


def test_choose_manifest_prefers_the_host_variant(monkeypatch: pytest.MonkeyPatch) -> None:
    from runtime.images import importer, registry

    monkeypatch.setattr(registry, "host_platform", lambda: ("arm", "v7"))
    monkeypatch.setattr(importer, "host_arch", lambda: "arm")
    index = {"manifests": [
        {"digest": "amd", "platform": {"os": "linux", "architecture": "amd64"}},
        {"digest": "v6", "platform": {"os": "linux", "architecture": "arm", "variant": "v6"}},
        {"digest": "plain", "platform": {"os": "linux", "architecture": "arm"}},
        {"digest": "v7", "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
        {"digest": "win", "platform": {"os": "windows", "architecture": "arm"}},
    ]}
    assert registry.choose_manifest(index, "x")["digest"] == "v7"
    index["manifests"].pop(3)
    assert registry.choose_manifest(index, "x")["digest"] == "plain"
    index["manifests"].pop(2)
    assert registry.choose_manifest(index, "x")["digest"] == "v6"
    index["manifests"].pop(1)
    with pytest.raises(NoMatchingPlatform, match=r"linux/arm/v7 .*\(it has linux/amd64, windows/arm\)"):
        registry.choose_manifest(index, "x")
