"""Fake sinks for build tests: layers are directories copied with `cp -a`, images a dict."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from runtime.images.build.interfaces import BuildImage
from runtime.serde import to_dict


class DirLayerSink:
    """A layer is a directory under `root`; its id is a counter-free random-free digest of
    the order it was added plus its file list (enough to be unique in a test)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.added: list[str] = []

    def add_dir(self, path: Path) -> str:
        h = hashlib.sha256(str(len(self.added)).encode())
        for p in sorted(path.rglob("*")):
            h.update(str(p.relative_to(path)).encode())
        layer_id = h.hexdigest()
        dest = self.root / layer_id
        # cp -a keeps owners, modes, times, xattrs (opaque dirs) and device nodes (whiteouts)
        subprocess.run(["cp", "-a", "--", str(path), str(dest)], check=True)
        self.added.append(layer_id)
        return layer_id

    def path(self, layer_id: str) -> Path:
        return self.root / layer_id

    def exists(self, layer_id: str) -> bool:
        return (self.root / layer_id).is_dir()

    def remove(self, layer_id: str) -> None:
        shutil.rmtree(self.root / layer_id)


class DictImageSink:
    def __init__(self) -> None:
        self.images: dict[str, BuildImage] = {}
        self.tags: dict[str, str] = {}

    @staticmethod
    def image_id(image: BuildImage) -> str:
        blob = json.dumps(to_dict(image), sort_keys=True).encode()
        return "sha256:" + hashlib.sha256(blob).hexdigest()

    def get(self, ref: str) -> BuildImage | None:
        if ref in self.images:
            return self.images[ref]
        image_id = self.tags.get(ref) or self.tags.get(ref + ":latest")
        return self.images.get(image_id) if image_id else None

    def put(self, image: BuildImage, tags: Sequence[str] = ()) -> str:
        image_id = self.image_id(image)
        self.images[image_id] = image
        for t in tags:
            self.tags[t] = image_id
        return image_id
