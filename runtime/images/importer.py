"""Getting images in and out without a registry.

  import_rootfs(store, FILE, tags)        a rootfs tarball: one layer, default config
                                          (`composer image import FILE --tag NAME`)
  load(store, PATH, tags)                 a `docker save` archive (manifest.json) or an OCI
                                          image layout (oci-layout, index.json, blobs/), as a
                                          tar or a directory (`composer image load FILE`)
  export_docker_archive(store, refs, FILE) `docker save` format (manifest.json + config + layer
                                          tars + repositories)

Every blob is checked: a config's sha256 against its name/descriptor, each layer against its
descriptor digest and against the config's diff_ids. Whiteouts and opaque dirs are converted
by the layer store.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import posixpath
import re
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from runtime.errors import InvalidArgument, NotFound
from runtime.images.config import ImageConfig, host_arch
from runtime.images.reference import Reference
from runtime.images.store import Image, ImageStore
from runtime.storage.fsutil import remove_tree
from runtime.storage.tarextract import clean_name

INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
MANIFEST_TYPES = {
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
}
_HEX_NAME = re.compile(r"(?:^|/)([0-9a-f]{64})(?:\.json)?$")
_MAX_JSON = 64 << 20


class _Source:
    """Files of an archive given as a tar (any compression tarfile knows) or a directory."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.tar: tarfile.TarFile | None = None
        self.members: dict[str, tarfile.TarInfo] = {}
        if self.path.is_dir():
            return
        try:
            self.tar = tarfile.open(self.path, "r:*")
        except FileNotFoundError:
            raise NotFound(f"cannot load {path}: no such file") from None
        except tarfile.TarError as e:
            raise InvalidArgument(f"cannot load {path}: not a tar archive ({e})") from e
        for m in self.tar.getmembers():
            self.members[posixpath.normpath(m.name).lstrip("/")] = m

    def close(self) -> None:
        if self.tar is not None:
            self.tar.close()

    def exists(self, name: str) -> bool:
        rel = clean_name(name, "archive path")
        if self.tar is not None:
            return rel in self.members
        return (self.path / rel).is_file()

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        rel = clean_name(name, "archive path")
        if self.tar is None:
            try:
                f: IO[bytes] = open(self.path / rel, "rb")
            except FileNotFoundError:
                raise InvalidArgument(f"{self.path}: {name} is missing from the archive") from None
            with f:
                yield f
            return
        m = self.members.get(rel)
        fobj = self.tar.extractfile(m) if m is not None else None
        if fobj is None:
            raise InvalidArgument(f"{self.path}: {name} is missing from the archive")
        with fobj:
            yield fobj

    def read(self, name: str) -> bytes:
        with self.open(name) as f:
            data = f.read(_MAX_JSON + 1)
        if len(data) > _MAX_JSON:
            raise InvalidArgument(f"{self.path}: {name} is too large for a json document")
        return data

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.read(name))
        except ValueError as e:
            raise InvalidArgument(f"{self.path}: {name} is not valid json ({e})") from e


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _check_named(name: str, data: bytes, what: str) -> None:
    m = _HEX_NAME.search(name)
    if m and _sha(data) != "sha256:" + m.group(1):
        raise InvalidArgument(f"{what} {name} does not match its digest: the archive is corrupt")


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- rootfs tarball ---------------------------------------------------------------------------
def import_rootfs(
    store: ImageStore,
    src: str | os.PathLike[str] | IO[bytes],
    tags: Iterable[str] = (),
    config: ImageConfig | None = None,
) -> Image:
    """`docker import`: a (compressed) tar of a root filesystem becomes a one-layer image."""
    layer = store.layers.add_tar(src)
    now = _now()
    cfg = config or ImageConfig()
    cfg = cfg.with_changes(
        created=cfg.created or now,
        history=cfg.history or ({"created": now, "created_by": "composer image import"},),
    )
    return store.put(cfg, [layer], tags=tags)


# -- docker save / OCI layout ------------------------------------------------------------------
def load(store: ImageStore, path: str | os.PathLike[str], tags: Iterable[str] = ()) -> list[Image]:
    """Load every image of a docker-save archive or an OCI layout (tar or directory).

    `tags` are added to the image(s) loaded (typically one). Returns the images.
    """
    src = _Source(path)
    try:
        if src.exists("manifest.json"):
            images = _load_docker(store, src)
        elif src.exists("index.json") and src.exists("oci-layout"):
            images = _load_oci(store, src)
        else:
            raise InvalidArgument(
                f"{path} is neither a `docker save` archive (manifest.json) nor an OCI image "
                "layout (oci-layout, index.json): for a rootfs tarball use `composer image import`"
            )
    finally:
        src.close()
    extra = list(tags)
    if extra:
        images = [store.put_raw(store.config_bytes(img), tags=extra) for img in images]
    return images


def _load_docker(store: ImageStore, src: _Source) -> list[Image]:
    manifest = src.json("manifest.json")
    if not isinstance(manifest, list):
        raise InvalidArgument(f"{src.path}: manifest.json is not a list of images")
    images = []
    for entry in manifest:
        config_name = entry.get("Config")
        layer_names = entry.get("Layers") or []
        if not config_name:
            raise InvalidArgument(f"{src.path}: manifest.json entry without Config")
        config_bytes = src.read(config_name)
        _check_named(config_name, config_bytes, "image config")
        _, diff_ids = ImageConfig.from_json(config_bytes)
        if len(diff_ids) != len(layer_names):
            raise InvalidArgument(
                f"{src.path}: image {config_name} lists {len(layer_names)} layers but its config "
                f"has {len(diff_ids)} diff_ids: the archive is corrupt"
            )
        for name, diff_id in zip(layer_names, diff_ids, strict=True):
            m = _HEX_NAME.search(name)
            blob_digest = "sha256:" + m.group(1) if m and "blobs/sha256/" in name else None
            if store.layers.exists(diff_id):
                continue
            with src.open(name) as f:
                store.layers.add_tar(f, expected_diff_id=diff_id, expected_digest=blob_digest)
        images.append(store.put_raw(config_bytes, tags=entry.get("RepoTags") or (), manifest=entry))
    return images


def _blob(src: _Source, digest: str) -> bytes:
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or not re.fullmatch(r"[0-9a-f]{64}", hexpart):
        raise InvalidArgument(f"{src.path}: unsupported digest {digest!r} (only sha256)")
    data = src.read(f"blobs/sha256/{hexpart}")
    if _sha(data) != digest:
        raise InvalidArgument(f"{src.path}: blob {digest} does not match its digest: the layout is corrupt")
    return data


def _platform_ok(desc: dict[str, Any]) -> bool:
    p = desc.get("platform")
    if not p:
        return True
    return bool(p.get("os") == "linux" and p.get("architecture") == host_arch())


def _manifests(src: _Source, index: dict[str, Any], depth: int = 0) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(descriptor, manifest) for every image manifest for this host's platform."""
    if depth > 4:
        raise InvalidArgument(f"{src.path}: image indexes nested too deep")
    out = []
    for desc in index.get("manifests") or []:
        if not _platform_ok(desc):
            continue
        doc = json.loads(_blob(src, desc["digest"]))
        mt = desc.get("mediaType") or doc.get("mediaType")
        if mt in INDEX_TYPES or ("manifests" in doc and "layers" not in doc):
            for inner, man in _manifests(src, doc, depth + 1):
                out.append((inner | {"annotations": desc.get("annotations") or inner.get("annotations")}, man))
        else:
            out.append((desc, doc))
    return out


def _oci_name(desc: dict[str, Any]) -> str | None:
    ann = desc.get("annotations") or {}
    for key in ("io.containerd.image.name", "org.opencontainers.image.ref.name"):
        name = ann.get(key)
        if name and ("/" in name or ":" in name):
            with contextlib.suppress(InvalidArgument):
                return str(Reference.parse(name))
    return None


def _load_oci(store: ImageStore, src: _Source) -> list[Image]:
    layout = src.json("oci-layout")
    if layout.get("imageLayoutVersion") != "1.0.0":
        raise InvalidArgument(f"{src.path}: unsupported oci-layout version {layout.get('imageLayoutVersion')!r}")
    found = _manifests(src, src.json("index.json"))
    if not found:
        raise NotFound(f"{src.path}: no image for linux/{host_arch()} in this OCI layout")
    images = []
    for desc, man in found:
        config_bytes = _blob(src, man["config"]["digest"])
        _, diff_ids = ImageConfig.from_json(config_bytes)
        layers = man.get("layers") or []
        if len(layers) != len(diff_ids):
            raise InvalidArgument(f"{src.path}: manifest {desc['digest']} and its config disagree "
                                  "on the number of layers: the layout is corrupt")
        for ldesc, diff_id in zip(layers, diff_ids, strict=True):
            if store.layers.exists(diff_id):
                continue
            hexpart = ldesc["digest"].split(":", 1)[1]
            with src.open(f"blobs/sha256/{clean_name(hexpart)}") as f:
                store.layers.add_tar(f, expected_diff_id=diff_id, expected_digest=ldesc["digest"])
        name = _oci_name(desc)
        tags = [name] if name else []
        digests = [f"{Reference.parse(name).name}@{desc['digest']}"] if name else []
        images.append(store.put_raw(config_bytes, tags=tags, manifest=man, repo_digests=digests))
    return images


# -- export -----------------------------------------------------------------------------------
def export_docker_archive(
    store: ImageStore, refs: str | Image | Iterable[str | Image], path: str | os.PathLike[str]
) -> None:
    """Write images as a `docker save` archive (legacy layout, loadable by `docker load`)."""
    if isinstance(refs, (str, Image)):
        refs = [refs]
    imgs = [r if isinstance(r, Image) else store.get(r) for r in refs]
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tf:
            manifest: list[dict[str, Any]] = []
            repos: dict[str, dict[str, str]] = {}
            written: set[str] = set()
            for img in imgs:
                hexid = img.id.split(":", 1)[1]
                config_name = f"{hexid}.json"
                if config_name not in written:
                    _add_bytes(tf, config_name, store.config_bytes(img))
                    written.add(config_name)
                layer_names = []
                for diff_id in img.layers:
                    name = f"{diff_id.split(':', 1)[1]}/layer.tar"
                    if name not in written:
                        tf.add(str(store.layers.export_tar(diff_id)), arcname=name, recursive=False)
                        written.add(name)
                    layer_names.append(name)
                tags = list(img.familiar_tags)
                manifest.append({"Config": config_name, "RepoTags": tags or None, "Layers": layer_names})
                for t in tags:
                    r = Reference.parse(t)
                    if layer_names and r.tag:
                        repos.setdefault(r.familiar_name, {})[r.tag] = layer_names[-1].split("/")[0]
            _add_bytes(tf, "manifest.json", json.dumps(manifest).encode())
            _add_bytes(tf, "repositories", json.dumps(repos).encode())
        os.replace(tmp, path)
    finally:
        remove_tree(Path(tmp))


def _add_bytes(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = 0o644
    tf.addfile(ti, io.BytesIO(data))
