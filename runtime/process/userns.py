"""User namespaces: id maps, writing them from outside, idmapped image layers.

The container's root is a host uid without privileges (default 100000, or the `composer`
entry of /etc/subuid and /etc/subgid). The launch child (host root, outside) writes the maps into
/proc/<pid>/uid_map and gid_map of the stage-1 child that made the namespace, and clones
every lowerdir as an idmapped mount (open_tree + mount_setattr(MOUNT_ATTR_IDMAP), kernel
>= 5.12; overlayfs takes idmapped lower layers since 5.19): the image's root-owned files
appear owned by root inside, while the upper/work dirs are really owned by the mapped root.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from runtime.errors import InvalidArgument

SUBID_NAME = "composer"
DEFAULT_START = 100000
DEFAULT_SIZE = 65536


@dataclass(frozen=True)
class IdMap:
    """One line of /proc/<pid>/uid_map: `container` .. +size inside is `host` .. +size outside."""

    container: int
    host: int
    size: int


def read_subid(path: str, name: str = SUBID_NAME) -> IdMap | None:
    """The first `name:start:count` range of /etc/subuid or /etc/subgid, as a map of root."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[0] == name and parts[1].isdigit() and parts[2].isdigit():
            return IdMap(0, int(parts[1]), int(parts[2]))
    return None


def default_maps(subuid: str = "/etc/subuid",
                 subgid: str = "/etc/subgid") -> tuple[tuple[IdMap, ...], tuple[IdMap, ...]]:
    """(uid_map, gid_map) for userns_mode private: /etc/sub[ug]id `composer`, else 100000+65536."""
    fallback = IdMap(0, DEFAULT_START, DEFAULT_SIZE)
    return (read_subid(subuid) or fallback,), (read_subid(subgid) or fallback,)


def map_text(maps: tuple[IdMap, ...]) -> str:
    return "".join(f"{m.container} {m.host} {m.size}\n" for m in maps)


def to_host(maps: tuple[IdMap, ...], cid: int) -> int:
    """The host id of container id `cid`; InvalidArgument if it is not mapped."""
    for m in maps:
        if m.container <= cid < m.container + m.size:
            return m.host + cid - m.container
    raise InvalidArgument(f"id {cid} is not mapped into the user namespace: extend the map",
                          subject=str(cid))


def check_maps(maps: tuple[IdMap, ...], what: str) -> None:
    if not maps:
        raise InvalidArgument(f"a user namespace needs a {what}: set one or use userns_mode host")
    if len(maps) > 340:
        raise InvalidArgument(f"{what} has {len(maps)} lines: the kernel takes at most 340")
    for m in maps:
        if m.size <= 0 or m.container < 0 or m.host < 0:
            raise InvalidArgument(f"invalid {what} line {m.container} {m.host} {m.size}")
    to_host(maps, 0)  # the container needs a root


def write_maps(pid: int, uid_map: tuple[IdMap, ...], gid_map: tuple[IdMap, ...]) -> None:
    """From outside (host root, CAP_SETUID/CAP_SETGID): setgroups stays "allow", so the
    container's init can still set its supplementary groups."""
    for name, maps in (("uid_map", uid_map), ("gid_map", gid_map)):
        path = f"/proc/{pid}/{name}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, map_text(maps).encode())
            finally:
                os.close(fd)
        except OSError as e:
            raise OSError(e.errno, f"write {path}: {e.strerror}") from None
