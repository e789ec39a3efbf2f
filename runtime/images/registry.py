"""`pull`: an image from an OCI distribution / Docker Registry v2 into the image store.

    ref ──parse──> Reference (Docker defaults: busybox -> docker.io/library/busybox:latest)
        ping /v2/ (auth challenge) ─> manifest by tag or digest (4 media types accepted)
        ─> index / manifest list? pick linux/<host arch>[/variant] ─> image manifest
        ─> config blob (skipped when the image is already stored) ─> diff_ids
        ─> layers missing from the layer store, `max_parallel` at a time, each:
              <tmp>/<digest>.partial (resumed with Range) ─ sha256 == descriptor digest
              ─> LayerStore.add_tar (checks the diff_id, extracts) ─> partial removed
        ─> ImageStore.put_raw(config bytes, tag, manifest, repo digest name@sha256:...)

Every byte is verified: manifests against the digest asked for (or Docker-Content-Digest),
blobs against their descriptor, layers' uncompressed content against the config's diff_ids.
A pull that fails keeps its finished layers and partial downloads: run it again to resume.
"""
from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import os
import platform
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from runtime.errors import InvalidArgument
from runtime.images.config import ImageConfig, host_arch
from runtime.images.importer import INDEX_TYPES, MANIFEST_TYPES, _platform_ok
from runtime.images.reference import Reference
from runtime.images.registry_auth import Credentials, credentials_for
from runtime.images.registry_client import RegistryClient
from runtime.images.registry_errors import (
    DigestMismatch,
    NoMatchingPlatform,
    RegistryError,
    UnsupportedMediaType,
)
from runtime.images.store import Image, ImageStore

CONFIG_TYPES = {
    "application/vnd.docker.container.image.v1+json",
    "application/vnd.oci.image.config.v1+json",
}
LAYER_TYPES = {
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
}
SCHEMA1_TYPES = {
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
}
MAX_CONFIG = 64 << 20
_PROGRESS_STEP = 256 << 10
_VARIANTS = {"aarch64": "v8", "armv8l": "v8", "armv7l": "v7", "armv6l": "v6", "armv5tel": "v5"}

# PullProgress.status values, in the order a layer goes through them
WAITING = "waiting"
DOWNLOADING = "downloading"
EXTRACTING = "extracting"
PULL_COMPLETE = "pull complete"
ALREADY_EXISTS = "already exists"
# whole-image statuses (PullProgress.id == "")
RESOLVING = "resolving"
UP_TO_DATE = "image is up to date"
DOWNLOADED = "downloaded newer image"


@dataclass(frozen=True)
class PullProgress:
    """One step of a pull, for a progress display. `id` is a layer's short digest, '' for the
    image itself; `current`/`total` are bytes of that layer's blob (total None if unknown)."""

    image: str  # familiar reference: busybox:latest
    id: str  # 12 hex of the layer's blob digest, or ""
    status: str
    current: int = 0
    total: int | None = None
    digest: str = ""  # the layer's blob digest, or the image's repo digest when done


Progress = Callable[[PullProgress], None]


def host_platform() -> tuple[str, str | None]:
    """(architecture, variant) as OCI names them: ("amd64", None), ("arm64", "v8"), ..."""
    return host_arch(), _VARIANTS.get(platform.machine())


def choose_manifest(index: dict[str, Any], image: str) -> dict[str, Any]:
    """The descriptor for linux/<host arch> in an index / manifest list (variant preferred)."""
    arch, variant = host_platform()
    manifests = [d for d in index.get("manifests") or [] if isinstance(d, dict)]
    ranked: list[tuple[int, int, dict[str, Any]]] = []
    for i, desc in enumerate(manifests):
        p = desc.get("platform")
        if not p:
            ranked.append((3, i, desc))  # no platform given: only as a last resort
        elif _platform_ok(desc):
            v = p.get("variant")
            ranked.append((0 if v == variant else 1 if not v else 2, i, desc))
    if not ranked:
        seen = sorted({"/".join(x for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x)
                       for d in manifests if isinstance(p := d.get("platform"), dict)})
        plat = f"linux/{arch}" + (f"/{variant}" if variant else "")
        raise NoMatchingPlatform(
            f"no manifest for {plat} in the manifest list of image {image} (it has "
            f"{', '.join(seen) or 'none'}): use an image built for {plat}", subject=image)
    return min(ranked, key=lambda t: (t[0], t[1]))[2]


def _media_type(header_type: str, doc: dict[str, Any]) -> str:
    """The manifest's media type: the document's own field, else Content-Type, else its shape."""
    mt = doc.get("mediaType")
    if isinstance(mt, str) and mt:
        return mt
    if header_type in INDEX_TYPES | MANIFEST_TYPES | SCHEMA1_TYPES:
        return header_type
    if doc.get("schemaVersion") == 1:
        return "application/vnd.docker.distribution.manifest.v1+json"
    if "manifests" in doc:
        return "application/vnd.oci.image.index.v1+json"
    if "config" in doc and "layers" in doc:
        return "application/vnd.oci.image.manifest.v1+json"
    return header_type or "unknown"


def _load_json(body: bytes, what: str, image: str) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except ValueError as e:
        raise RegistryError(f"cannot pull {image}: its {what} is not valid json ({e})",
                            subject=image) from e
    if not isinstance(doc, dict):
        raise RegistryError(f"cannot pull {image}: its {what} is not a json object", subject=image)
    return doc


def _check_manifest(doc: dict[str, Any], media_type: str, image: str) -> None:
    if media_type in SCHEMA1_TYPES:
        raise UnsupportedMediaType(
            f"cannot pull {image}: it uses the deprecated docker schema 1 manifest format; "
            "push it again with a current docker or skopeo", subject=image)
    if media_type not in MANIFEST_TYPES:
        raise UnsupportedMediaType(
            f"cannot pull {image}: unsupported manifest media type {media_type!r}; only docker "
            "schema 2 and OCI image manifests are supported", subject=image)
    cfg = doc.get("config")
    if not isinstance(cfg, dict) or not isinstance(doc.get("layers"), list):
        raise RegistryError(f"cannot pull {image}: its manifest has no config or layers",
                            subject=image)
    cmt = cfg.get("mediaType", "")
    if cmt not in CONFIG_TYPES:
        raise UnsupportedMediaType(
            f"cannot pull {image}: it is not a container image (config media type {cmt!r}, an "
            "OCI artifact?)", subject=image)
    for layer in doc["layers"]:
        lmt = layer.get("mediaType", "") if isinstance(layer, dict) else ""
        if lmt not in LAYER_TYPES:
            raise UnsupportedMediaType(
                f"cannot pull {image}: unsupported layer media type {lmt!r}", subject=image)
        if lmt.endswith("zstd"):
            try:
                import zstandard  # noqa: F401
            except ImportError:
                raise UnsupportedMediaType(
                    f"cannot pull {image}: it has zstd-compressed layers; install the python "
                    "`zstandard` module (pip install zstandard)", subject=image) from None


def _check_platform(config: dict[str, Any], image: str) -> None:
    os_, arch = config.get("os"), config.get("architecture")
    if (os_ and os_ != "linux") or (arch and arch != host_arch()):
        raise NoMatchingPlatform(
            f"image {image} is built for {os_ or '?'}/{arch or '?'}, this host is "
            f"linux/{host_arch()}: use an image built for linux/{host_arch()}", subject=image)


@contextlib.asynccontextmanager
async def _blob_lock(path: Path) -> AsyncIterator[None]:
    """Exclusive use of one partial download (two pulls of the same layer take turns).

    The lock file is removed by its holder; a waiter that locked a removed file retries.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as e:
                    if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                        raise
                    await asyncio.sleep(0.1)
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                try:
                    yield
                finally:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
                return
        finally:
            os.close(fd)


def _first_error(eg: BaseExceptionGroup) -> BaseException:
    """The error to show from a TaskGroup's group: a RegistryError if there is one."""
    flat: list[BaseException] = []

    def walk(e: BaseException) -> None:
        if isinstance(e, BaseExceptionGroup):
            for x in e.exceptions:
                walk(x)
        else:
            flat.append(e)

    walk(eg)
    return next((e for e in flat if isinstance(e, RegistryError)), flat[0])


class _Pull:
    """The state of one pull: the client, where partials go, how progress is reported."""

    def __init__(self, store: ImageStore, ref: Reference, client: RegistryClient, tmp: Path,
                 progress: Progress | None, max_parallel: int) -> None:
        self.store = store
        self.ref = ref
        self.image = ref.familiar()
        self.client = client
        self.tmp = tmp
        self.progress = progress
        self.sem = asyncio.Semaphore(max(1, max_parallel))

    def emit(self, id_: str, status: str, current: int = 0, total: int | None = None,
             digest: str = "") -> None:
        if self.progress is not None:
            self.progress(PullProgress(self.image, id_, status, current, total, digest))

    def partial(self, digest: str) -> Path:
        return self.tmp / f"{digest}.partial"

    async def fetch_config(self, desc: dict[str, Any]) -> bytes:
        digest, size = desc["digest"], desc.get("size")
        if isinstance(size, int) and size > MAX_CONFIG:
            raise RegistryError(f"cannot pull {self.image}: its config is larger than "
                                f"{MAX_CONFIG >> 20} MiB", subject=self.image)
        path = self.partial(digest)
        async with _blob_lock(path.with_suffix(".lock")):
            await self.client.download_blob(digest, size if isinstance(size, int) else None, path)
            data = path.read_bytes()
            path.unlink()
        return data

    async def fetch_layer(self, desc: dict[str, Any], diff_id: str) -> None:
        digest = desc["digest"]
        size = desc.get("size") if isinstance(desc.get("size"), int) else None
        short = digest.split(":", 1)[1][:12]
        path = self.partial(digest)
        last = [-_PROGRESS_STEP]

        def on_bytes(done: int, total: int | None) -> None:
            if done - last[0] >= _PROGRESS_STEP or done == total or done < last[0]:
                last[0] = done
                self.emit(short, DOWNLOADING, done, total, digest)

        self.emit(short, WAITING, 0, size, digest)
        async with _blob_lock(path.with_suffix(".lock")):
            if self.store.layers.exists(diff_id):  # a concurrent pull got it meanwhile
                self.emit(short, ALREADY_EXISTS, 0, size, digest)
                return
            async with self.sem:
                await self.client.download_blob(digest, size, path, on_bytes)
            self.emit(short, EXTRACTING, size or 0, size, digest)
            try:
                await asyncio.to_thread(self.store.layers.add_tar, path,
                                        expected_diff_id=diff_id, expected_digest=digest)
            except InvalidArgument as e:
                path.unlink(missing_ok=True)
                raise DigestMismatch(
                    f"cannot pull {self.image}: layer {digest[:19]} does not match its image "
                    f"config ({e}); the image on the registry is corrupt, push it again",
                    subject=self.image) from e
            path.unlink(missing_ok=True)
        self.emit(short, PULL_COMPLETE, size or 0, size, digest)

    async def run(self) -> Image:
        ref = self.ref
        self.emit("", RESOLVING)
        await self.client.ping()
        body, header_type, top_digest = await self.client.get_manifest(ref.digest or ref.tag or "latest")
        doc = _load_json(body, "manifest", self.image)
        media_type = _media_type(header_type, doc)
        if media_type in INDEX_TYPES:
            desc = choose_manifest(doc, self.image)
            body, header_type, _ = await self.client.get_manifest(desc["digest"])
            doc = _load_json(body, "manifest", self.image)
            media_type = _media_type(header_type or desc.get("mediaType", ""), doc)
        _check_manifest(doc, media_type, self.image)

        layers: list[dict[str, Any]] = doc["layers"]
        config_digest = doc["config"]["digest"]
        stored = self.store.exists(config_digest)
        if stored:
            config_bytes = self.store.config_bytes(config_digest)
        else:
            config_bytes = await self.fetch_config(doc["config"])
        config = _load_json(config_bytes, "image config", self.image)
        _check_platform(config, self.image)
        _, diff_ids = ImageConfig.from_json(config)
        if len(diff_ids) != len(layers):
            raise RegistryError(
                f"cannot pull {self.image}: its manifest lists {len(layers)} layers but its config "
                f"has {len(diff_ids)} diff_ids: the image on the registry is corrupt",
                subject=self.image)

        todo: dict[str, dict[str, Any]] = {}
        for desc, diff_id in zip(layers, diff_ids, strict=True):
            short = desc["digest"].split(":", 1)[1][:12]
            if self.store.layers.exists(diff_id):
                self.emit(short, ALREADY_EXISTS, 0, desc.get("size"), desc["digest"])
            else:
                todo.setdefault(diff_id, desc)
        if todo:
            try:
                async with asyncio.TaskGroup() as tg:
                    for diff_id, desc in todo.items():
                        tg.create_task(self.fetch_layer(desc, diff_id))
            except BaseExceptionGroup as eg:
                raise _first_error(eg) from None

        tags = [str(ref)] if ref.digest is None else []
        img = self.store.put_raw(config_bytes, tags=tags, manifest=doc,
                                 repo_digests=[f"{ref.name}@{top_digest}"])
        self.emit("", UP_TO_DATE if stored and not todo else DOWNLOADED, digest=top_digest)
        return img


async def pull(
    store: ImageStore,
    ref: str,
    *,
    progress: Progress | None = None,
    insecure_registries: Iterable[str] = (),
    auth: dict[str, Any] | None = None,
    max_parallel: int = 3,
    docker_config: Path | None = None,
    tmp_dir: Path | None = None,
    session: aiohttp.ClientSession | None = None,
) -> Image:
    """Pull `ref` (`[registry/]name[:tag][@digest]`) into `store`; returns the stored Image.

    auth: {"username", "password"} | {"auth": base64("user:pass")} | {"identitytoken"} |
          {"registrytoken"}; without it, the "auths" of `docker_config` (default
          $DOCKER_CONFIG/config.json or ~/.docker/config.json) are used, else anonymous.
    insecure_registries: "host[:port]" or CIDRs reached over plain http (loopback always is).
    tmp_dir: where <digest>.partial downloads live (default <state root>/downloads).
    Raises RegistryError subclasses: ManifestUnknown, Unauthorized, RegistryUnreachable,
    UnsupportedMediaType, NoMatchingPlatform, DigestMismatch.
    """
    r = Reference.parse(ref)
    creds = Credentials.from_dict(auth) if auth else credentials_for(r.domain, docker_config)
    tmp = tmp_dir if tmp_dir is not None else store.paths.root / "downloads"
    async with RegistryClient(r, insecure_registries=insecure_registries, credentials=creds,
                              session=session) as client:
        return await _Pull(store, r, client, tmp, progress, max_parallel).run()


__all__ = [
    "ALREADY_EXISTS",
    "DOWNLOADED",
    "DOWNLOADING",
    "EXTRACTING",
    "PULL_COMPLETE",
    "PullProgress",
    "RESOLVING",
    "UP_TO_DATE",
    "WAITING",
    "choose_manifest",
    "host_platform",
    "pull",
]
