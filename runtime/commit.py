"""`commit`: a container's writable layer as one more layer over its image (Docker's commit).

The new image's config is the container's: its image's config with the container's
entrypoint, command, environment (without the HOSTNAME the engine adds), working dir and
user, then the `-c` changes (Dockerfile instructions: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL,
USER, VOLUME, WORKDIR, STOPSIGNAL, SHELL, HEALTHCHECK) and a history entry with `-m`/`-a`.
Compose's labels are not copied into the image.

The layer is the overlay upper dir, packed as any layer (whiteouts become `.wh.` entries),
without what the runtime itself made there to mount onto (`/proc`, `/sys`, `/dev`, the empty
`/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`, `/sbin/docker-init`), as Docker's init
layer keeps those out of a container's diff. The container is frozen while it is packed.
"""
from __future__ import annotations

import datetime as dt
import os
import stat
from dataclasses import replace

from runtime.api import CommitRequest
from runtime.errors import InvalidArgument
from runtime.images.build import metadata
from runtime.images.build import parser as p
from runtime.images.build.errors import BuildError
from runtime.images.build.rootview import clean_abs
from runtime.images.build_adapters import from_build_config, to_build_config
from runtime.images.config import ImageConfig
from runtime.types import ContainerSpec

# what the runtime creates in the upper dir to mount onto: (path, must be an empty dir?)
RUNTIME_MADE = {"proc": True, "sys": True, "dev": True, "etc/hosts": False,
                "etc/hostname": False, "etc/resolv.conf": False, "sbin/docker-init": False}
CHANGE_KINDS = "CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL, SHELL, HEALTHCHECK"


def runtime_made(rel: str, st: os.stat_result, path: str) -> bool:
    """True for an entry of the upper dir the runtime made only to mount onto."""
    want_dir = RUNTIME_MADE.get(rel)
    if want_dir is None:
        return False
    if want_dir:
        return stat.S_ISDIR(st.st_mode) and not os.listdir(path)
    return stat.S_ISREG(st.st_mode) and st.st_size == 0


def parse_changes(changes: tuple[str, ...]) -> list[p.Instruction]:
    out: list[p.Instruction] = []
    for change in changes:
        try:
            df = p.parse("FROM scratch\n" + change, filename="--change")
        except BuildError as e:
            raise InvalidArgument(f"invalid --change {change!r}: {e}") from None
        insts = df.stages[0].instructions if df.stages else ()
        for inst in insts:
            if not isinstance(inst, (*metadata.METADATA, p.Workdir)):
                raise InvalidArgument(
                    f"invalid --change {change!r}: {inst.keyword} can't be applied to an image "
                    f"config (use one of {CHANGE_KINDS})")
            out.append(inst)
        if not insts:
            raise InvalidArgument(f"invalid --change {change!r}: give a Dockerfile instruction, "
                                  'e.g. "CMD [\\"sh\\"]"')
    return out


def commit_config(base: ImageConfig, spec: ContainerSpec, env: tuple[str, ...], hostname: str,
                  req: CommitRequest) -> ImageConfig:
    """The committed image's config (see the module docstring)."""
    entrypoint = spec.entrypoint if spec.entrypoint is not None else base.entrypoint
    if spec.command is not None:
        cmd: tuple[str, ...] | None = spec.command
    else:
        cmd = base.cmd if spec.entrypoint is None else None
    cfg = replace(
        base,
        env=tuple(e for e in env if e != f"HOSTNAME={hostname}"),
        entrypoint=tuple(entrypoint) if entrypoint is not None else None,
        cmd=tuple(cmd) if cmd is not None else None,
        working_dir=spec.working_dir or base.working_dir,
        user=spec.user if spec.user is not None else base.user,
    )
    build = to_build_config(cfg)
    for inst in parse_changes(req.changes):
        if isinstance(inst, p.Workdir):
            build = replace(build, working_dir=clean_abs(inst.path, build.working_dir or "/"))
        else:
            build = metadata.apply(build, inst)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    entry: dict[str, object] = {"created": now, "created_by": "composer commit"}
    if req.comment:
        entry["comment"] = req.comment
    if req.author:
        entry["author"] = req.author
    merged = from_build_config(build)
    return replace(merged, architecture=base.architecture, os=base.os, variant=base.variant,
                   created=now, author=req.author or None, history=(*base.history, entry))
