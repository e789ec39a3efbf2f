"""Build layer tars, `docker save` archives and OCI layouts in tests, with tarfile and json."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

from runtime.images.config import ImageConfig, host_arch


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str = "file"  # file | dir | symlink | hardlink
    data: bytes = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime: int = 1_600_000_000
    link: str = ""


def layer_tar(entries: list[Entry]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            ti = tarfile.TarInfo(e.name)
            ti.mode, ti.uid, ti.gid, ti.mtime = e.mode, e.uid, e.gid, e.mtime
            if e.kind == "dir":
                ti.type = tarfile.DIRTYPE
                tf.addfile(ti)
            elif e.kind == "symlink":
                ti.type, ti.linkname = tarfile.SYMTYPE, e.link
                tf.addfile(ti)
            elif e.kind == "hardlink":
                ti.type, ti.linkname = tarfile.LNKTYPE, e.link
                tf.addfile(ti)
            else:
                ti.size = len(e.data)
                tf.addfile(ti, io.BytesIO(e.data))
    return buf.getvalue()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# Two layers: the upper deletes /etc/old (whiteout) and makes /data opaque (only new.txt).
LOWER = [
    Entry("etc", "dir", mode=0o755),
    Entry("etc/old", data=b"old\n"),
    Entry("etc/keep", data=b"keep\n"),
    Entry("data", "dir", mode=0o755),
    Entry("data/a.txt", data=b"a\n"),
    Entry("data/sub", "dir", mode=0o755),
    Entry("data/sub/b.txt", data=b"b\n"),
    Entry("www", "dir", mode=0o750, uid=33, gid=33),
    Entry("www/index.html", data=b"<h1>hi</h1>\n", mode=0o640, uid=33, gid=33),
]
UPPER = [
    Entry("etc", "dir", mode=0o755),
    Entry("etc/.wh.old"),
    Entry("data", "dir", mode=0o755),
    Entry("data/.wh..wh..opq"),
    Entry("data/new.txt", data=b"new\n"),
]


def two_layer_image() -> tuple[list[bytes], ImageConfig]:
    cfg = ImageConfig(env=("PATH=/bin",), cmd=("sh",), architecture=host_arch(), created="2024-01-02T03:04:05Z")
    return [layer_tar(LOWER), layer_tar(UPPER)], cfg


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    tf.addfile(ti, io.BytesIO(data))


def docker_archive(path: Path, layers: list[bytes], cfg: ImageConfig, tags: list[str],
                   blobs: bool = False) -> str:
    """Write a `docker save` archive (legacy, or Docker 25+ blobs/ names); returns the image id."""
    diff_ids = [sha(layer) for layer in layers]
    config = cfg.to_json(diff_ids)
    with tarfile.open(path, "w") as tf:
        names = []
        for layer in layers:
            name = f"blobs/sha256/{sha(layer)[7:]}" if blobs else f"{sha(layer)[7:]}/layer.tar"
            _add(tf, name, layer)
            names.append(name)
        cname = f"blobs/sha256/{sha(config)[7:]}" if blobs else f"{sha(config)[7:]}.json"
        _add(tf, cname, config)
        _add(tf, "manifest.json", json.dumps([{"Config": cname, "RepoTags": tags, "Layers": names}]).encode())
    return sha(config)


def oci_layout(root: Path, layers: list[bytes], cfg: ImageConfig, name: str | None,
               gzip_layers: bool = True, platform: bool = True) -> str:
    """Write an OCI image layout directory (gzip layers, an index with a foreign platform too)."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> str:
        d = sha(data)
        (blobs / d[7:]).write_bytes(data)
        return d

    diff_ids = [sha(layer) for layer in layers]
    config = cfg.to_json(diff_ids)
    layer_descs = []
    for layer in layers:
        blob = gzip.compress(layer, mtime=0) if gzip_layers else layer
        mt = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if gzip_layers else "")
        layer_descs.append({"mediaType": mt, "digest": put(blob), "size": len(blob)})
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(config),
                   "size": len(config)},
        "layers": layer_descs,
    }).encode()
    mdigest = put(manifest)
    foreign = json.dumps({"schemaVersion": 2, "config": {"digest": "sha256:" + "0" * 64}, "layers": []}).encode()
    descs = [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdigest,
              "size": len(manifest)}]
    if platform:
        descs[0]["platform"] = {"os": "linux", "architecture": host_arch()}
        descs.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": put(foreign),
                      "size": len(foreign), "platform": {"os": "linux", "architecture": "mips64"}})
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": descs}
    if name:
        index["manifests"][0]["annotations"] = {"org.opencontainers.image.ref.name": name}
    (root / "index.json").write_text(json.dumps(index))
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    return sha(config)
