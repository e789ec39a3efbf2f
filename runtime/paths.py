"""Where the engine keeps things. Both roots are overridable so tests use temp dirs.

state root (COMPOSER_ROOT, default /var/lib/composer): images, layers, volumes, containers
run root   (COMPOSER_RUN,  default /run/composer):     socket, pid files, locks
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import InvalidArgument

# Names that become path components: Docker's rule for container/volume names.
_SAFE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


def is_safe_name(name: str) -> bool:
    """Whether `name` can be a single path component (Docker's rule for container/volume names)."""
    return bool(_SAFE_NAME.match(name)) and len(name) <= 255


def safe_name(name: str, what: str = "name") -> str:
    """Return `name` if it can be a single path component; raise otherwise (no `..`, no `/`)."""
    if not is_safe_name(name):
        raise InvalidArgument(
            f"invalid {what} {name!r}: use letters, digits, '_', '.', '-' and start with a letter or digit",
            subject=name,
        )
    return name


@dataclass(frozen=True)
class Paths:
    root: Path
    run: Path

    @classmethod
    def from_env(cls) -> Paths:
        return cls(
            root=Path(os.environ.get("COMPOSER_ROOT", "/var/lib/composer")),
            run=Path(os.environ.get("COMPOSER_RUN", "/run/composer")),
        )

    @property
    def containers(self) -> Path:
        return self.root / "containers"

    @property
    def images(self) -> Path:
        return self.root / "images"

    @property
    def layers(self) -> Path:
        return self.root / "layers"

    @property
    def volumes(self) -> Path:
        return self.root / "volumes"

    @property
    def networks(self) -> Path:
        return self.root / "networks"

    @property
    def socket(self) -> Path:
        return self.run / "composer.sock"

    def container_dir(self, cid: str) -> Path:
        return self.containers / safe_name(cid, "container id")

    def volume_dir(self, name: str) -> Path:
        return self.volumes / safe_name(name, "volume name")
