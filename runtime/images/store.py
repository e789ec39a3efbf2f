"""The image store: images (config JSON + ordered layers) and the tags that name them.

    <images>/<hex>/config.json   the config's exact bytes; image id = sha256 of them (as Docker)
    <images>/<hex>/image.json    layers (diff_ids, bottom first), manifest, repo digests, added_at
    <images>/repositories.json   {"tags": {normalised ref: id}, "digests": {name@digest: id}}
    <images>/.lock               flock: every change of tags/images happens under it

Layers live in the LayerStore (runtime.storage.layers); this store refcounts them: a layer
goes when the last image that lists it goes.
"""
from __future__ import annotations

import builtins
import datetime as dt
import hashlib
import os
import re
import secrets
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.api import ImageInfo
from runtime.errors import Conflict, InvalidArgument, NotFound
from runtime.images.config import ImageConfig
from runtime.images.reference import Reference
from runtime.paths import Paths
from runtime.storage.errors import StorageError
from runtime.storage.fsutil import (
    atomic_write_bytes,
    atomic_write_json,
    file_lock,
    read_json,
    remove_tree,
)
from runtime.storage.layers import Layer, LayerStore

__all__ = ["Image", "ImageConfig", "ImageStore"]

_ID_RE = re.compile(r"^(?:sha256:)?([0-9a-f]{1,64})$")
BUSYBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
InUse = Callable[[str], Sequence[str]]  # image id -> names of containers using it


@dataclass(frozen=True)
class Image:
    id: str  # sha256:<hex of the config bytes>
    tags: tuple[str, ...]  # normalised references: docker.io/library/busybox:latest
    config: ImageConfig
    layers: tuple[str, ...]  # diff_ids, bottom layer first (as in the config)
    created: float  # from the config's "created", else when it was added
    size: int  # bytes of content over all layers
    repo_digests: tuple[str, ...] = ()
    manifest: dict[str, Any] | None = None

    @property
    def short_id(self) -> str:
        return self.id.split(":", 1)[1][:12]

    @property
    def familiar_tags(self) -> tuple[str, ...]:
        return tuple(Reference.parse(t).familiar() for t in self.tags)

    def info(self) -> ImageInfo:
        return ImageInfo(id=self.id, tags=self.familiar_tags, size=self.size, created_at=self.created,
                         volumes=tuple(self.config.volumes))


def image_id(config_bytes: bytes) -> str:
    return "sha256:" + hashlib.sha256(config_bytes).hexdigest()


def _parse_time(s: str | None) -> float | None:
    if not s:
        return None
    s = re.sub(r"(\.\d{6})\d+", r"\1", s.replace("Z", "+00:00"))
    try:
        return dt.datetime.fromisoformat(s).timestamp()
    except ValueError:
        return None


class ImageStore:
    def __init__(self, paths: Paths, layers: LayerStore | None = None) -> None:
        self.paths = paths
        self.root = paths.images
        self.root.mkdir(parents=True, exist_ok=True)
        self.layers = layers or LayerStore(paths.layers)
        self._lock = self.root / ".lock"
        self._repos = self.root / "repositories.json"

    # -- repositories.json ------------------------------------------------------------------
    def _read_repos(self) -> dict[str, dict[str, str]]:
        try:
            data = read_json(self._repos)
        except FileNotFoundError:
            data = {}
        return {"tags": dict(data.get("tags") or {}), "digests": dict(data.get("digests") or {})}

    def _write_repos(self, repos: dict[str, dict[str, str]]) -> None:
        atomic_write_json(self._repos, repos)

    # -- reading ----------------------------------------------------------------------------
    def _dir(self, iid: str) -> Path:
        return self.root / iid.split(":", 1)[1]

    def _load(self, iid: str, repos: dict[str, dict[str, str]] | None = None) -> Image:
        d = self._dir(iid)
        try:
            raw = (d / "config.json").read_bytes()
            meta = read_json(d / "image.json")
        except FileNotFoundError:
            raise NotFound(f"image {iid} not found: load it again (composer image load FILE)",
                           subject=iid) from None
        repos = repos if repos is not None else self._read_repos()
        cfg, _ = ImageConfig.from_json(raw)
        tags = tuple(sorted(t for t, i in repos["tags"].items() if i == iid))
        digests = tuple(sorted(r for r, i in repos["digests"].items() if i == iid))
        return Image(
            id=iid,
            tags=tags,
            config=cfg,
            layers=tuple(meta["layers"]),
            created=_parse_time(cfg.created) or float(meta.get("added_at", 0.0)),
            size=int(meta.get("size", 0)),
            repo_digests=digests,
            manifest=meta.get("manifest"),
        )

    def _ids(self) -> builtins.list[str]:
        return sorted(
            "sha256:" + d.name for d in self.root.iterdir()
            if not d.name.startswith(".") and (d / "image.json").is_file()
        )

    def config_bytes(self, image: Image | str) -> bytes:
        iid = image.id if isinstance(image, Image) else self.get(image).id
        return (self._dir(iid) / "config.json").read_bytes()

    def resolve(self, ref: str) -> str | None:
        """The image id a reference, an id or a unique id prefix names; None if none."""
        repos = self._read_repos()
        try:
            r = Reference.parse(ref)
        except InvalidArgument:
            r = None
        if r is not None:
            if r.digest:
                iid = repos["digests"].get(f"{r.name}@{r.digest}")
                if iid:
                    return iid
            elif str(r) in repos["tags"]:
                return repos["tags"][str(r)]
        m = _ID_RE.match(ref)
        if m:
            prefix = m.group(1)
            hits = [i for i in self._ids() if i[7:].startswith(prefix)]
            if len(hits) > 1:
                raise Conflict(f"image id prefix {prefix} is ambiguous: give more digits", subject=ref)
            if hits:
                return hits[0]
        if r is None:
            Reference.parse(ref)  # re-raise the reference's own error
        return None

    def get(self, ref: str) -> Image:
        iid = self.resolve(ref)
        if iid is None:
            try:
                shown = Reference.parse(ref).familiar()
            except InvalidArgument:
                shown = ref
            raise NotFound(
                f"image {shown} not found: build it, or load it with `composer image load FILE`",
                subject=ref,
            )
        return self._load(iid)

    def exists(self, ref: str) -> bool:
        try:
            return self.resolve(ref) is not None
        except InvalidArgument:
            return False

    def list(self) -> builtins.list[Image]:
        repos = self._read_repos()
        return [self._load(i, repos) for i in self._ids()]

    def lowerdirs(self, image: Image | str) -> builtins.list[str]:
        """The image's layer directories, top layer first: overlay's lowerdir order."""
        img = image if isinstance(image, Image) else self.get(image)
        return [self.layers.get(d).path for d in reversed(img.layers)]

    # -- writing ----------------------------------------------------------------------------
    def put(
        self,
        config: ImageConfig,
        layers: Sequence[str | Layer],
        tags: Iterable[str] = (),
    ) -> Image:
        """Store an image made of `config` over `layers` (bottom first); tag it."""
        diff_ids = [ly.diff_id if isinstance(ly, Layer) else ly for ly in layers]
        return self.put_raw(config.to_json(diff_ids), tags=tags)

    def put_raw(
        self,
        config_bytes: bytes,
        tags: Iterable[str] = (),
        manifest: dict[str, Any] | None = None,
        repo_digests: Iterable[str] = (),
    ) -> Image:
        """Store an image from its exact config bytes (imports keep the id Docker gave it)."""
        cfg, diff_ids = ImageConfig.from_json(config_bytes)
        iid = image_id(config_bytes)
        norm_tags = [str(Reference.parse(t)) for t in tags]
        norm_digests = [str(Reference.parse(d, default_tag=None)) for d in repo_digests]
        with file_lock(self._lock):
            size = 0
            for d in diff_ids:
                if not self.layers.exists(d):
                    raise StorageError(f"cannot store image {iid[:19]}: its layer {d} is not in the "
                                       "layer store; import the layers first")
                size += self.layers.get(d).size
            final = self._dir(iid)
            if not (final / "image.json").is_file():
                tmp = self.root / f".tmp-{secrets.token_hex(6)}"
                try:
                    tmp.mkdir()
                    atomic_write_bytes(tmp / "config.json", config_bytes)
                    atomic_write_json(tmp / "image.json", {
                        "layers": list(diff_ids), "size": size, "added_at": time.time(),
                        "manifest": manifest,
                    })
                    remove_tree(final)  # a half-written dir from a crash
                    os.rename(tmp, final)
                finally:
                    remove_tree(tmp)
            repos = self._read_repos()
            for t in norm_tags:
                repos["tags"][t] = iid
            for r in norm_digests:
                repos["digests"][r] = iid
            self._write_repos(repos)
        return self._load(iid)

    def tag(self, ref: str, new_tag: str) -> Image:
        """Point `new_tag` at the image `ref` names (moving it from another image, as Docker)."""
        iid = self.get(ref).id
        new = str(Reference.parse(new_tag))
        with file_lock(self._lock):
            repos = self._read_repos()
            repos["tags"][new] = iid
            self._write_repos(repos)
        return self._load(iid)

    def untag(self, ref: str) -> str:
        """Remove one tag; returns the id it pointed to. The image stays (dangling if untagged)."""
        name = str(Reference.parse(ref))
        with file_lock(self._lock):
            repos = self._read_repos()
            iid = repos["tags"].pop(name, None)
            if iid is None:
                raise NotFound(f"no such tag {Reference.parse(ref).familiar()}: see `composer images`",
                               subject=ref)
            self._write_repos(repos)
        return iid

    def remove(self, ref: str, force: bool = False, in_use: InUse | None = None) -> builtins.list[str]:
        """`docker rmi`: removing one of several tags only untags (unless force); otherwise
        the image goes with all its tags, and layers no other image uses. An image used by a
        container is a Conflict (force or not: remove the container first).
        Returns what happened, as Docker prints it: "untagged: ...", "deleted: ...".
        """
        img = self.get(ref)
        try:
            r = Reference.parse(ref)
            by_tag = r.digest is None and str(r) in self._read_repos()["tags"]
        except InvalidArgument:
            by_tag = False
        out: builtins.list[str] = []
        if by_tag and len(img.tags) > 1 and not force:
            self.untag(ref)
            return [f"untagged: {Reference.parse(ref).familiar()}"]
        if not by_tag and len(img.tags) > 1 and not force:
            raise Conflict(
                f"image {img.short_id} has {len(img.tags)} tags: remove them one by one, or force",
                subject=ref,
            )
        users = list(in_use(img.id)) if in_use else []
        if users:
            raise Conflict(
                f"image {ref} ({img.short_id}) is used by container(s) {', '.join(users)}: "
                "remove the container(s) first",
                subject=ref,
            )
        with file_lock(self._lock):
            repos = self._read_repos()
            for key in ("tags", "digests"):
                for name in [n for n, i in repos[key].items() if i == img.id]:
                    del repos[key][name]
                    if key == "tags":
                        out.append(f"untagged: {Reference.parse(name).familiar()}")
            self._write_repos(repos)
            doomed = self.root / f".tmp-del-{secrets.token_hex(6)}"
            os.rename(self._dir(img.id), doomed)
            remove_tree(doomed)
            out.append(f"deleted: {img.id}")
            out += [f"deleted: {d}" for d in self._gc_layers()]
        return out

    def prune_layers(self) -> builtins.list[str]:
        """Remove layers no image lists (e.g. left by an interrupted import)."""
        with file_lock(self._lock):
            return self._gc_layers()

    def _gc_layers(self) -> builtins.list[str]:
        used: set[str] = set()
        for iid in self._ids():
            used.update(read_json(self._dir(iid) / "image.json")["layers"])
        gone = []
        for layer in self.layers.list():
            if layer.diff_id not in used:
                self.layers.remove(layer.diff_id)
                gone.append(layer.diff_id)
        return gone

    # -- busybox ----------------------------------------------------------------------------
    def ensure_busybox(self, tag: str = "busybox:latest") -> Image:
        """The busybox image, made from the host's static busybox when missing."""
        from runtime.images.busybox import populate_rootfs

        if self.exists(tag):
            return self.get(tag)
        with file_lock(self.root / ".busybox.lock"):
            if self.exists(tag):
                return self.get(tag)
            with tempfile.TemporaryDirectory(dir=self.paths.root, prefix=".busybox-") as tmp:
                rootfs = populate_rootfs(Path(tmp) / "rootfs")
                layer = self.layers.add_dir(rootfs)
            now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            config = ImageConfig(
                env=(f"PATH={BUSYBOX_PATH}",),
                cmd=("sh",),
                created=now,
                history=({"created": now, "created_by": "composer: busybox from the host's busybox-static"},),
            )
            return self.put(config, [layer], tags=[tag])

