"""Named volumes: directories under the state root, as Docker's `local` driver.

    <root>/<name>/_data        the volume's content (what containers bind-mount)
    <root>/<name>/volume.json  name, labels, created_at, driver, options
    <root>/<name>/.lock        serialises the first-use copy from the image

The local driver's bind form (`type: none, o: bind, device: /dir`) makes a volume whose
content is that host directory: containers bind-mount it instead of _data (Docker mounts it
over _data; the effect inside the container is the same, without a mount on the host).

A volume appears atomically (built in a temp dir, renamed into place). Who uses a volume is
the engine's knowledge: `remove` takes an `in_use` callback returning container names.
"""
from __future__ import annotations

import builtins
import errno
import os
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from runtime.api import VolumeInfo
from runtime.errors import InvalidArgument
from runtime.paths import safe_name
from runtime.storage import merged
from runtime.storage.errors import Conflict, NotFound, StorageError
from runtime.storage.fsutil import atomic_write_json, file_lock, read_json, remove_tree
from runtime.types import VolumeSpec

ANONYMOUS_LABEL = "com.docker.volume.anonymous"


@dataclass(frozen=True)
class Volume:
    name: str
    mountpoint: str  # <root>/<name>/_data
    labels: dict[str, str] = field(default_factory=dict)
    created_at: float = 0.0
    driver: str = "local"
    options: dict[str, str] = field(default_factory=dict)  # the local driver's driver_opts

    @property
    def anonymous(self) -> bool:
        return ANONYMOUS_LABEL in self.labels

    def info(self) -> VolumeInfo:
        return VolumeInfo(
            name=self.name,
            spec=VolumeSpec(name=self.name, labels=dict(self.labels), driver_opts=dict(self.options)),
            mountpoint=self.mountpoint,
            created_at=self.created_at,
        )


def bind_device(name: str, options: Mapping[str, str]) -> str | None:
    """The host directory of a local volume in its bind form (`type: none`, `o: bind`,
    `device: /abs/dir`), None without options; any other option is refused (the local
    driver's tmpfs/nfs/block forms need a mount per volume, not supported)."""
    if not options:
        return None
    extra = sorted(set(options) - {"type", "o", "device"})
    flags = [f.strip() for f in options.get("o", "").split(",") if f.strip()]
    if extra or options.get("type") != "none" or not {"bind", "rbind"} & set(flags) or \
            set(flags) - {"bind", "rbind"}:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(options.items()))
        raise InvalidArgument(
            f"volume {name}: driver_opts {shown} are not supported: only the bind form "
            "(type: none, o: bind, device: /absolute/dir)", subject=name)
    device = options.get("device", "")
    if not device.startswith("/"):
        raise InvalidArgument(f"volume {name}: driver_opts device {device!r} must be an absolute path",
                              subject=name)
    return device


class VolumeStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _dir(self, name: str) -> Path:
        return self.root / safe_name(name, "volume name")

    def create(self, name: str | None = None, labels: Mapping[str, str] | None = None,
               options: Mapping[str, str] | None = None) -> Volume:
        """Create a volume; an existing one of that name is returned as is (idempotent).

        `name=None` makes an anonymous volume with a random 64-hex name (as Docker).
        `options`: the local driver's driver_opts (only the bind form, see bind_device).
        """
        labels = dict(labels or {})
        options = dict(options or {})
        bind_device(name or "", options)
        if name is None:
            name = secrets.token_hex(32)
            labels.setdefault(ANONYMOUS_LABEL, "")
        final = self._dir(name)
        if (final / "volume.json").is_file():
            return self.get(name)
        tmp = self.root / f".tmp-{secrets.token_hex(6)}"
        try:
            (tmp / "_data").mkdir(parents=True)
            os.chmod(tmp, 0o701)
            os.chmod(tmp / "_data", 0o755)
            meta = {"name": name, "labels": labels, "created_at": time.time(), "driver": "local",
                    "options": options}
            atomic_write_json(tmp / "volume.json", meta)
            try:
                os.rename(tmp, final)
            except OSError as e:
                if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
        finally:
            remove_tree(tmp)
        return self.get(name)

    def exists(self, name: str) -> bool:
        return (self._dir(name) / "volume.json").is_file()

    def get(self, name: str) -> Volume:
        d = self._dir(name)
        try:
            meta = read_json(d / "volume.json")
        except FileNotFoundError:
            raise NotFound(
                f"volume {name} not found: create it (composer volume create {name}) or "
                "declare it under `volumes:` in the stack file",
                subject=name,
            ) from None
        options = dict(meta.get("options") or {})
        return Volume(
            name=meta["name"],
            mountpoint=bind_device(name, options) or str(d / "_data"),
            labels=dict(meta.get("labels") or {}),
            created_at=float(meta.get("created_at", 0.0)),
            driver=meta.get("driver", "local"),
            options=options,
        )

    def list(self, labels: Mapping[str, str | None] | None = None) -> builtins.list[Volume]:
        """All volumes, or those whose labels match: value None means "label present"."""
        out = []
        for d in sorted(self.root.iterdir()):
            if d.name.startswith(".") or not (d / "volume.json").is_file():
                continue
            v = self.get(d.name)
            if labels and not all(
                k in v.labels and (want is None or v.labels[k] == want) for k, want in labels.items()
            ):
                continue
            out.append(v)
        return out

    def remove(
        self,
        name: str,
        force: bool = False,
        in_use: Callable[[str], Sequence[str]] | None = None,
    ) -> None:
        """Remove a volume and its data. In use -> Conflict (even with force, as Docker);
        force only makes a missing volume no error."""
        d = self._dir(name)
        if not (d / "volume.json").is_file():
            if force:
                return
            self.get(name)  # raises NotFound
        users = list(in_use(name)) if in_use else []
        if users:
            raise Conflict(
                f"volume {name} is in use by container(s) {', '.join(users)}: remove them first",
                subject=name,
            )
        doomed = self.root / f".tmp-del-{secrets.token_hex(6)}"
        try:
            os.rename(d, doomed)
        except FileNotFoundError:
            return
        remove_tree(doomed)

    def is_empty(self, name: str) -> bool:
        with os.scandir(self.get(name).mountpoint) as entries:
            return not any(entries)

    def init_from_image(
        self,
        name: str,
        image_lowerdirs: Sequence[str],
        path_in_image: str,
        nocopy: bool = False,
    ) -> bool:
        """Docker's volume init: if the volume is empty and the image has a directory at
        `path_in_image`, copy that content (owners, modes, xattrs, mtimes) and the directory's
        own owner/mode into the volume. Returns True when something was copied.

        `image_lowerdirs` is the image's layer stack, top first (ImageStore.lowerdirs).
        """
        vol = self.get(name)
        if nocopy:
            return False
        with file_lock(self._dir(name) / ".lock"):
            if not self.is_empty(name):
                return False
            found = merged.resolve(image_lowerdirs, path_in_image)
            if found is None:
                return False
            rel, stack = found
            top = os.path.join(stack[0], rel) if rel else stack[0]
            st = os.lstat(top)
            if not os.path.isdir(top) or os.path.islink(top):
                return False  # a file at the mount point: nothing to copy (Docker errors at mount)
            # beside _data, or inside a bound device (a rename does not cross file systems)
            under = self._dir(name) if not vol.options else Path(vol.mountpoint)
            staging = under / f".init-{secrets.token_hex(4)}"
            staging.mkdir()
            try:
                merged.copy_tree(stack, rel, str(staging))
                for entry in sorted(os.listdir(staging)):
                    os.rename(staging / entry, Path(vol.mountpoint) / entry)
                merged.copy_meta(top, vol.mountpoint, st)
            except OSError as e:
                raise StorageError(
                    f"cannot copy image content at {path_in_image} into volume {name}: {e}"
                ) from e
            finally:
                remove_tree(staging)
            return True
