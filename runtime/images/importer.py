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

import bz2
import contextlib
import datetime as dt
import gzip
import hashlib
import io
import json
import lzma
import os
import posixpath
import re
import stat
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
# What a load or import may read once decompressed (a gzip bomb, a device): past this it
# stops with an error. Raise it with the environment variable for a bigger image.
MAX_BYTES_ENV = "COMPOSER_MAX_IMAGE_ARCHIVE_BYTES"
DEFAULT_MAX_BYTES = 64 << 30


def max_bytes() -> int:
    text = os.environ.get(MAX_BYTES_ENV, "")
    return int(text) if text.isdigit() else DEFAULT_MAX_BYTES


def _regular_file(path: Path, what: str) -> None:
    """Only a regular file (or, for a layout, a directory) is read: /dev/zero, a FIFO or a
    socket would be read forever."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise NotFound(f"cannot {what} {path}: no such file") from None
    if not stat.S_ISREG(st.st_mode):
        raise InvalidArgument(f"cannot {what} {path}: not a regular file (give a tar archive"
                              + (" or an OCI layout directory)" if what == "load" else ")"))


class _Capped(io.RawIOBase):
    """A seekable view of a (decompressing) stream that fails once `limit` bytes are passed."""

    def __init__(self, raw: IO[bytes] | gzip.GzipFile | bz2.BZ2File | lzma.LZMAFile, limit: int,
                 name: str, base: IO[bytes]) -> None:
        self.raw, self.limit, self.name, self.base = raw, limit, name, base  # base: the file

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.raw.tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.raw.seek(offset, whence)

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        buffer[: len(data)] = data
        if self.raw.tell() > self.limit:
            raise InvalidArgument(f"{self.name} holds more than {self.limit} bytes once decompressed: "
                                  f"refused (set {MAX_BYTES_ENV} to allow more)")
        return len(data)

    def close(self) -> None:
        self.raw.close()  # a decompressor does not close the file it reads
        self.base.close()
        super().close()


def _open_tar(path: Path) -> tuple[tarfile.TarFile, IO[bytes]]:
    """The archive at `path`, decompressed (gzip, bzip2, xz) through a byte cap, and the
    stream under it (tarfile does not close a stream it was given)."""
    f = open(path, "rb")
    magic = f.read(6)
    f.seek(0)
    raw: IO[bytes] | gzip.GzipFile | bz2.BZ2File | lzma.LZMAFile = f
    if magic.startswith(b"\x1f\x8b"):
        raw = gzip.GzipFile(fileobj=f)
    elif magic.startswith(b"BZh"):
        raw = bz2.BZ2File(f)
    elif magic.startswith(b"\xfd7zXZ\x00"):
        raw = lzma.LZMAFile(f)
    stream = io.BufferedReader(_Capped(raw, max_bytes(), str(path), f))
    try:
        return tarfile.open(fileobj=stream, mode="r:"), stream
    except BaseException:
        stream.close()
        f.close()
        raise


class _Source:
    """Files of an archive given as a tar (any compression tarfile knows) or a directory."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.tar: tarfile.TarFile | None = None
        self._stream: IO[bytes] | None = None
        self.members: dict[str, tarfile.TarInfo] = {}
        if self.path.is_dir():
            return
        _regular_file(self.path, "load")
        try:
            self.tar, self._stream = _open_tar(self.path)
        except (tarfile.TarError, OSError, EOFError, lzma.LZMAError) as e:
            raise InvalidArgument(f"cannot load {path}: not a tar archive ({e})") from e
        for m in self.tar.getmembers():
            self.members[posixpath.normpath(m.name).lstrip("/")] = m

    def close(self) -> None:
        if self.tar is not None:
            self.tar.close()
        if self._stream is not None:
            self._stream.close()

    def exists(self, name: str) -> bool:
        rel = clean_name(name, "archive path")
        if self.tar is not None:
            return rel in self.members
        return (self.path / rel).is_file()

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        rel = clean_name(name, "archive path")
        if self.tar is None:
            if (self.path / rel).exists():
                _regular_file(self.path / rel, "load")
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
    if isinstance(src, (str, os.PathLike)):
        _regular_file(Path(src), "import")
    layer = store.layers.add_tar(src, max_bytes=max_bytes())
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
                store.layers.add_tar(f, expected_diff_id=diff_id, expected_digest=blob_digest,
                                     max_bytes=max_bytes())
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
                store.layers.add_tar(f, expected_diff_id=diff_id, expected_digest=ldesc["digest"],
                                     max_bytes=max_bytes())
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
