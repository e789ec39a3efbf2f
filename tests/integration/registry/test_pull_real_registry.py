"""pull() against a real registry: Debian's `docker-registry` (distribution 2.x) on loopback,
filled by `skopeo copy` from OCI layouts built here from the host's busybox.

The registry runs from a temp config (filesystem storage in tmp, no auth) on a free port and
is stopped by pid at the end; nothing else is started. Needs: apt-get install docker-registry
skopeo.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from runtime.images.busybox import populate_rootfs
from runtime.images.config import host_arch
from runtime.images.registry import ALREADY_EXISTS, DOWNLOADED, UP_TO_DATE, PullProgress, pull
from runtime.images.registry_errors import ManifestUnknown
from runtime.images.store import ImageStore
from runtime.paths import Paths
from runtime.storage.tarpack import pack_dir

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OTHER_ARCH = "s390x" if host_arch() != "s390x" else "ppc64le"


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Built:
    layout: Path
    diff_ids: list[str]
    layer_digests: list[str]
    config: bytes  # the host-arch config's exact bytes


class _Layout:
    """Writes blobs into an OCI image layout directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True)
        (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
        self.refs: list[dict[str, object]] = []

    def blob(self, data: bytes, media_type: str) -> dict[str, object]:
        d = _sha(data)
        (self.root / "blobs" / "sha256" / d.split(":")[1]).write_bytes(data)
        return {"mediaType": media_type, "digest": d, "size": len(data)}

    def ref(self, desc: dict[str, object], name: str) -> None:
        self.refs.append(desc | {"annotations": {"org.opencontainers.image.ref.name": name}})
        (self.root / "index.json").write_text(json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.refs}))


def _config(diff_ids: list[str], arch: str) -> bytes:
    return json.dumps({
        "architecture": arch, "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin:/sbin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "busybox from the host"}, {"created_by": "hello"}],
    }, sort_keys=True).encode()


def build_layout(tmp: Path) -> Built:
    rootfs = populate_rootfs(tmp / "rootfs")
    buf = io.BytesIO()
    pack_dir(str(rootfs), buf)
    tars = [buf.getvalue()]
    small = io.BytesIO()
    with tarfile.open(fileobj=small, mode="w", format=tarfile.PAX_FORMAT) as tf:
        data = b"hello from the registry test\n"
        ti = tarfile.TarInfo("etc/hello")
        ti.size, ti.mode = len(data), 0o644
        tf.addfile(ti, io.BytesIO(data))
    tars.append(small.getvalue())
    lay = _Layout(tmp / "layout")
    layers = [lay.blob(gzip.compress(t, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip")
              for t in tars]
    diff_ids = [_sha(t) for t in tars]
    manifests = {}
    for arch in (host_arch(), OTHER_ARCH):
        cfg = _config(diff_ids, arch)
        man = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
               "config": lay.blob(cfg, "application/vnd.oci.image.config.v1+json"),
               "layers": layers}
        manifests[arch] = lay.blob(json.dumps(man).encode(), OCI_MANIFEST)
    lay.ref(manifests[host_arch()], "1")
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        manifests[OTHER_ARCH] | {"platform": {"os": "linux", "architecture": OTHER_ARCH}},
        manifests[host_arch()] | {"platform": {"os": "linux", "architecture": host_arch()}},
    ]}
    lay.ref(lay.blob(json.dumps(index).encode(), OCI_INDEX), "multi")
    return Built(lay.root, diff_ids, [str(x["digest"]) for x in layers], _config(diff_ids, host_arch()))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _manifest_digest(domain: str, repo: str, ref: str, accept: str) -> str:
    req = urllib.request.Request(f"http://{domain}/v2/{repo}/manifests/{ref}",
                                 headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=5) as r:
        return _sha(r.read())


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Built]]:
    tmp = tmp_path_factory.mktemp("registry")
    built = build_layout(tmp)
    port = _free_port()
    domain = f"127.0.0.1:{port}"
    cfg = tmp / "config.yml"
    cfg.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {tmp / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: {domain}\n"
    )
    log = open(tmp / "registry.log", "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(["docker-registry", "serve", str(cfg)], stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://{domain}/v2/", timeout=1):
                    break
            except (urllib.error.URLError, ConnectionError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("docker-registry did not start: "
                                       + (tmp / "registry.log").read_text()) from None
                time.sleep(0.1)
        for src, dest, extra in (("1", "test/busybox:1", []), ("multi", "test/multi:1", ["--all"])):
            subprocess.run(["skopeo", "copy", "--quiet", *extra, "--dest-tls-verify=false",
                            f"oci:{built.layout}:{src}", f"docker://{domain}/{dest}"],
                           check=True, capture_output=True, timeout=120)
        yield domain, built
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(Paths(root=tmp_path / "state", run=tmp_path / "run"))


async def test_pull_from_real_registry(registry: tuple[str, Built], store: ImageStore) -> None:
    domain, built = registry
    events: list[PullProgress] = []

    img = await pull(store, f"{domain}/test/busybox:1", progress=events.append)

    digest = _manifest_digest(domain, "test/busybox", "1", OCI_MANIFEST)
    assert img.id == _sha(built.config)
    assert store.config_bytes(img) == built.config
    assert img.layers == tuple(built.diff_ids)
    assert img.tags == (f"{domain}/test/busybox:1",)
    assert img.repo_digests == (f"{domain}/test/busybox@{digest}",)
    assert [store.layers.get(d).digest for d in img.layers] == built.layer_digests
    lower = store.lowerdirs(img)  # top first
    assert (Path(lower[0]) / "etc/hello").read_bytes() == b"hello from the registry test\n"
    assert os.access(Path(lower[1]) / "bin/busybox", os.X_OK)
    assert events[-1].status == DOWNLOADED and events[-1].digest == digest
    assert not list((store.paths.root / "downloads").iterdir())

    events.clear()
    again = await pull(store, f"{domain}/test/busybox:1", progress=events.append)
    assert again.id == img.id
    layer_events = [e.status for e in events if e.id]
    assert layer_events == [ALREADY_EXISTS, ALREADY_EXISTS]
    assert events[-1].status == UP_TO_DATE

    by_digest = await pull(store, f"{domain}/test/busybox@{digest}")
    assert by_digest.id == img.id


async def test_pull_by_digest_into_a_fresh_store(registry: tuple[str, Built], store: ImageStore) -> None:
    domain, built = registry
    digest = _manifest_digest(domain, "test/busybox", "1", OCI_MANIFEST)

    img = await pull(store, f"{domain}/test/busybox@{digest}")

    assert img.tags == ()
    assert img.repo_digests == (f"{domain}/test/busybox@{digest}",)
    assert img.layers == tuple(built.diff_ids)


async def test_manifest_list_from_real_registry(registry: tuple[str, Built], store: ImageStore) -> None:
    domain, built = registry
    list_digest = _manifest_digest(domain, "test/multi", "1", OCI_INDEX)

    img = await pull(store, f"{domain}/test/multi:1")

    assert img.config.architecture == host_arch()
    assert img.id == _sha(built.config)
    assert img.repo_digests == (f"{domain}/test/multi@{list_digest}",)


async def test_unknown_tag_from_real_registry(registry: tuple[str, Built], store: ImageStore) -> None:
    domain, _ = registry
    with pytest.raises(ManifestUnknown) as e:
        await pull(store, f"{domain}/test/busybox:missing")
    assert str(e.value).startswith(f"image {domain}/test/busybox:missing not found")
    assert "MANIFEST_UNKNOWN" in str(e.value)
    with pytest.raises(ManifestUnknown):
        await pull(store, f"{domain}/test/nothing-here:1")
    assert store.list() == []


def test_pull_in_a_process_that_imported_as_composerd(registry: tuple[str, Built], tmp_path: Path) -> None:
    """composerd imports aiohttp's server without its package `__init__`
    (runtime.daemon.weblib) and the registry client only on the first pull: that pull, in a
    process that imported exactly as composerd does, gets the whole aiohttp and works."""
    domain, built = registry
    code = (
        "import asyncio, sys, runtime.daemon.cli, runtime.engine\n"
        "import aiohttp\n"
        "before = 'ClientSession' in vars(aiohttp) or 'runtime.images.registry' in sys.modules\n"
        "from runtime.images.registry import pull\n"
        "from runtime.images.store import ImageStore\n"
        "from pathlib import Path\n"
        "from runtime.paths import Paths\n"
        f"store = ImageStore(Paths(root=Path({str(tmp_path / 'state')!r}), run=Path({str(tmp_path / 'run')!r})))\n"
        f"img = asyncio.run(pull(store, {domain + '/test/busybox:1'!r}))\n"
        "print(before, img.id)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", _sha(built.config)]
