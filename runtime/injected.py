"""Files the engine makes for a container: Compose's secrets and configs that are not a plain
bind of a host file (from `environment:` or `content:`, or with `uid` / `gid` / `mode`).

At each start they are written under the container's state directory, owned and moded as
asked (ids shifted into the container's user namespace when it has one), and bind-mounted
read-only at their target, as Compose copies them into the container.
"""
from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

from runtime.errors import InvalidArgument
from runtime.process.config import MountPoint
from runtime.process.userns import IdMap, to_host
from runtime.types import ContainerSpec

FILES_DIR = "files"


def materialise(spec: ContainerSpec, state_dir: Path, uid_map: tuple[IdMap, ...] = (),
                gid_map: tuple[IdMap, ...] = ()) -> tuple[MountPoint, ...]:
    """Write `spec.files` (replacing what an earlier start wrote); their read-only binds."""
    folder = state_dir / FILES_DIR
    shutil.rmtree(folder, ignore_errors=True)
    if not spec.files:
        return ()
    folder.mkdir(mode=0o700)
    out = []
    for i, f in enumerate(spec.files):
        if not f.target.startswith("/"):
            raise InvalidArgument(f"container {spec.name}: file target {f.target!r} must be absolute")
        path = folder / str(i)
        if f.source:
            try:
                shutil.copyfile(f.source, path)
            except OSError as e:
                raise InvalidArgument(f"container {spec.name}: cannot read {f.source} for "
                                      f"{f.target}: {e.strerror or e}") from None
        else:
            path.write_bytes(base64.b64decode(f.content))
        uid = to_host(uid_map, f.uid) if uid_map else f.uid
        gid = to_host(gid_map, f.gid) if gid_map else f.gid
        os.chown(path, uid, gid)
        os.chmod(path, f.mode)
        out.append(MountPoint("bind", f.target, str(path), read_only=True))
    return tuple(out)
