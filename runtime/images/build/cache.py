"""The build cache: step key -> the image state after that step, persisted on disk.

A step's key is the digest of (state before the step, the instruction after variable
substitution, the step's inputs): for COPY/ADD the content digest of the sources, for RUN
the build args in scope. The state is the layer chain plus the config, so a hit for step
N gives exactly the state step N+1's key is computed from: an unchanged rebuild is a chain
of lookups, no file is copied and no command runs. An entry naming a layer that no longer
exists is a miss (the step runs again).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from runtime.images.build.interfaces import BuildImage, ImageConfig, LayerSink
from runtime.serde import from_dict, to_dict


def _canonical(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def state_digest(image: BuildImage) -> str:
    """Digest of an image state: same layers and same config -> same digest."""
    return hashlib.sha256(_canonical(to_dict(image))).hexdigest()


def step_key(parent: str, instruction: str, inputs: Mapping[str, str] | None = None) -> str:
    blob = _canonical({"parent": parent, "instruction": instruction, "inputs": dict(inputs or {})})
    return hashlib.sha256(blob).hexdigest()


class BuildCache:
    def __init__(self, directory: Path, layers: LayerSink) -> None:
        self.dir = directory
        self.layers = layers

    def _path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.json"

    def get(self, key: str) -> BuildImage | None:
        try:
            data = json.loads(self._path(key).read_bytes())
            image = BuildImage(layers=tuple(data["layers"]), config=from_dict(ImageConfig, data["config"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not all(self.layers.exists(layer) for layer in image.layers):
            return None
        return image

    def put(self, key: str, image: BuildImage) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".entry.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(_canonical(to_dict(image)))
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
