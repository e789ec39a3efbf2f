"""`volumes:` entries of a service (bind / named volume / tmpfs) and the `tmpfs:` key.

Short syntax `[SOURCE:]TARGET[:MODE]`: SOURCE is a host path when it starts with `.`, `/`
or `~` (resolved against the project directory, `~` expanded), otherwise a volume name;
no SOURCE is an anonymous volume. The long mapping form carries `bind.*`, `volume.*` and
`tmpfs.*` options.
"""
from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from typing import Any

from composer.spec.units import parse_bytes
from composer.spec.where import Where, as_bool, as_map, as_str, check_keys, type_name

MOUNT_TYPES = ("bind", "volume", "tmpfs", "image")
LONG_KEYS = ("type", "source", "target", "read_only", "consistency", "bind", "volume", "tmpfs", "image")
PROPAGATIONS = ("shared", "rshared", "slave", "rslave", "private", "rprivate")
_ABSENT = object()
SHORT_MODES = frozenset({"rw", "ro", "z", "Z", "nocopy", "cached", "delegated", "consistent", *PROPAGATIONS})


@dataclass(frozen=True)
class VolumeMount:
    type: str  # bind | volume | tmpfs | image
    target: str
    source: str | None = None  # bind: absolute host path; volume: name (None = anonymous); image: ref
    read_only: bool = False
    create_host_path: bool = False
    propagation: str | None = None
    selinux: str | None = None
    nocopy: bool = False
    subpath: str | None = None
    tmpfs_size: int | None = None
    tmpfs_mode: int | None = None
    consistency: str | None = None

    @classmethod
    def parse(cls, raw: Any, w: Where, base_dir: str) -> VolumeMount:
        if isinstance(raw, str):
            return cls._parse_short(raw, w, base_dir)
        if isinstance(raw, dict):
            return cls._parse_long(raw, w, base_dir)
        w.fail(f'expected "SOURCE:TARGET[:MODE]" or a mapping, got {type_name(raw)}')

    @classmethod
    def _parse_short(cls, text: str, w: Where, base_dir: str) -> VolumeMount:
        parts = text.split(":")
        source, mode = "", ""
        if len(parts) == 1:
            target = parts[0]
        elif len(parts) == 2 and parts[0].startswith("/") and _is_mode(parts[1]):
            target, mode = parts
        elif len(parts) == 2:
            source, target = parts
        elif len(parts) == 3:
            source, target, mode = parts
            if not _is_mode(mode):
                w.fail(f'invalid volume "{text}": unknown mode "{mode}" (use ro, rw, z, Z, nocopy, ...)')
        else:
            w.fail(f'invalid volume "{text}" (use [SOURCE:]TARGET[:MODE])')
        if not target.startswith("/"):
            w.fail(f'invalid volume "{text}": the target "{target}" must be an absolute path')
        opts = set(mode.split(",")) if mode else set()
        if {"ro", "rw"} <= opts:
            w.fail(f'invalid volume "{text}": both ro and rw')
        propagation = next((o for o in opts if o in PROPAGATIONS), None)
        selinux = next((o for o in opts if o in ("z", "Z")), None)
        consistency = next((o for o in opts if o in ("cached", "delegated", "consistent")), None)
        common = dict(
            target=posixpath.normpath(target), read_only="ro" in opts,
            selinux=selinux, consistency=consistency,
        )
        if not source:
            return cls(type="volume", nocopy="nocopy" in opts, **common)  # type: ignore[arg-type]
        if is_host_path(source):
            return cls(
                type="bind", source=resolve_path(source, base_dir), create_host_path=True,
                propagation=propagation, **common,  # type: ignore[arg-type]
            )
        return cls(type="volume", source=source, nocopy="nocopy" in opts, **common)  # type: ignore[arg-type]

    @classmethod
    def _parse_long(cls, raw: dict[str, Any], w: Where, base_dir: str) -> VolumeMount:
        raw = as_map(raw, w)
        check_keys(raw, w, LONG_KEYS)
        if "type" not in raw:
            w.fail("missing key type (bind, volume or tmpfs)")
        kind = as_str(raw["type"], w.key("type"))
        if kind in ("cluster", "npipe"):
            w.key("type").fail(f'not supported: mount type "{kind}" (use bind, volume, tmpfs or image)')
        if kind not in MOUNT_TYPES:
            w.key("type").fail(f'invalid mount type "{kind}" (use bind, volume, tmpfs or image)')
        target = as_str(raw.get("target", ""), w.key("target"))
        if not target.startswith("/"):
            w.key("target").fail(f'the target "{target}" must be an absolute path')
        source = as_str(raw["source"], w.key("source")) if "source" in raw else None
        for other in MOUNT_TYPES:
            if other != kind and other in raw:
                w.key(other).fail(f"{other} options on a {kind} mount")
        args: dict[str, Any] = {
            "type": kind, "target": posixpath.normpath(target),
            "read_only": as_bool(raw.get("read_only", False), w.key("read_only")),
            "consistency": as_str(raw["consistency"], w.key("consistency")) if "consistency" in raw else None,
        }
        if kind == "bind":
            if not source:
                w.key("source").fail("a bind mount needs a source path")
            args["source"] = resolve_path(source, base_dir)
            args.update(_bind_options(raw.get("bind", _ABSENT), w.key("bind")))
        elif kind == "volume":
            args["source"] = source or None
            args.update(_volume_options(raw.get("volume", _ABSENT), w.key("volume")))
        elif kind == "image":  # an image's files, read-only (Compose's image mounts)
            if source is None:
                w.key("source").fail("an image mount needs the image as source")
            args["source"] = source  # "" (an unset ${VAR}): Compose loads it; refused at run
            args["read_only"] = True
            args.update(_image_options(raw.get("image", _ABSENT), w.key("image")))
        else:
            if source:
                w.key("source").fail("a tmpfs mount has no source")
            args.update(_tmpfs_options(raw.get("tmpfs", _ABSENT), w.key("tmpfs")))
        return cls(**args)


def _bind_options(raw: Any, w: Where) -> dict[str, Any]:
    if raw is _ABSENT:
        return {}
    raw = as_map(raw, w)
    check_keys(raw, w, ("propagation", "create_host_path", "recursive", "selinux"))
    out: dict[str, Any] = {}
    if "propagation" in raw:
        prop = as_str(raw["propagation"], w.key("propagation"))
        if prop not in PROPAGATIONS:
            w.key("propagation").fail(f'invalid propagation "{prop}" (use one of {", ".join(PROPAGATIONS)})')
        out["propagation"] = prop
    if "create_host_path" in raw:
        out["create_host_path"] = as_bool(raw["create_host_path"], w.key("create_host_path"))
    if "selinux" in raw:
        sel = as_str(raw["selinux"], w.key("selinux"))
        if sel not in ("z", "Z"):
            w.key("selinux").fail(f'invalid selinux "{sel}" (use z or Z)')
        out["selinux"] = sel
    if "recursive" in raw:
        rec = as_str(raw["recursive"], w.key("recursive"))
        if rec not in ("enabled", "disabled", "writable", "readonly"):
            w.key("recursive").fail(f'invalid recursive "{rec}"')
        if rec != "enabled":
            w.key("recursive").fail(f'not supported: recursive "{rec}" (bind mounts are always recursive)')
    return out


def _volume_options(raw: Any, w: Where) -> dict[str, Any]:
    if raw is _ABSENT:
        return {}
    raw = as_map(raw, w)
    check_keys(raw, w, ("nocopy", "subpath", "labels"))
    if "labels" in raw:
        w.key("labels").fail("not supported: labels on a volume mount (set them on the top-level volume)")
    out: dict[str, Any] = {}
    if "nocopy" in raw:
        out["nocopy"] = as_bool(raw["nocopy"], w.key("nocopy"))
    if "subpath" in raw:
        out["subpath"] = as_str(raw["subpath"], w.key("subpath"))
    return out


def _image_options(raw: Any, w: Where) -> dict[str, Any]:
    if raw is _ABSENT:
        return {}
    raw = as_map(raw, w)
    check_keys(raw, w, ("subpath",))
    return {"subpath": as_str(raw["subpath"], w.key("subpath"))} if "subpath" in raw else {}


def _tmpfs_options(raw: Any, w: Where) -> dict[str, Any]:
    if raw is _ABSENT:
        return {}
    raw = as_map(raw, w)
    check_keys(raw, w, ("size", "mode"))
    out: dict[str, Any] = {}
    if "size" in raw:
        size = raw["size"]
        if isinstance(size, (int, float)) and not isinstance(size, bool) and size < 0:
            w.key("size").fail("size must not be negative")
        out["tmpfs_size"] = parse_bytes(size, w.key("size"))
    if "mode" in raw:
        out["tmpfs_mode"] = parse_mode(raw["mode"], w.key("mode"))
    return out


def parse_mode(value: Any, w: Where) -> int:
    """File mode: an int as written (YAML `0o1777` / `01777` already octal) or octal text."""
    if isinstance(value, bool):
        w.fail("expected an octal file mode like 1777")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip().removeprefix("0o"), 8)
        except ValueError:
            pass
    w.fail(f'invalid file mode {value!r} (use octal like "1777")')


def parse_tmpfs_entry(text: str, w: Where) -> VolumeMount:
    """Service `tmpfs:` entry: `/path[:size=64m,mode=1777]`."""
    target, _, opts = text.partition(":")
    if not target.startswith("/"):
        w.fail(f'invalid tmpfs "{text}": the target must be an absolute path')
    size: int | None = None
    mode: int | None = None
    read_only = False
    for opt in filter(None, opts.split(",")):
        key, _, val = opt.partition("=")
        if key == "size":
            size = parse_bytes(val, w)
        elif key == "mode":
            mode = parse_mode(val, w)
        elif key == "ro":
            read_only = True
        elif key not in ("rw", "noexec", "exec", "nosuid", "suid", "nodev", "dev"):
            w.fail(f'unknown tmpfs option "{opt}" (use size=, mode=, ro)')
    return VolumeMount(
        type="tmpfs", target=posixpath.normpath(target), tmpfs_size=size, tmpfs_mode=mode,
        read_only=read_only,
    )


def _is_mode(text: str) -> bool:
    return bool(text) and set(text.split(",")) <= SHORT_MODES


def is_host_path(source: str) -> bool:
    # `${DIR}/x` is left as written only by `config --no-interpolate`: shown as the bind
    # path it usually is once substituted
    return source.startswith((".", "/", "~", "${"))


def resolve_path(path: str, base_dir: str) -> str:
    """`~` expanded, relative paths against `base_dir`, normalised; one that starts with a
    variable left unsubstituted (`config --no-interpolate`) stays as written."""
    if path.startswith("${"):
        return path
    if path.startswith("~"):
        path = os.path.expanduser(path)
    return posixpath.normpath(posixpath.join(base_dir, path))


def resolve_security_opt(opt: str, base_dir: str) -> str:
    """`seccomp=FILE` with a relative FILE (the one security_opt naming a file), as compose
    reads it: against the project directory. Every other option is returned as it is."""
    key, sep, value = opt.partition("=" if "=" in opt else ":")
    value = value.strip()
    if key.strip() != "seccomp" or not sep or not value or value in (
            "unconfined", "default", "builtin") or value.startswith(("{", "/")):
        return opt
    return f"seccomp={resolve_path(value, base_dir)}"
