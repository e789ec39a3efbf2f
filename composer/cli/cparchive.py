"""Docker's `cp` rules: where a copied resource lands and under which name (moby's
pkg/archive/copy.go: CopyInfo, PrepareArchiveCopy), as pure functions of both ends.

    SRC is a file, DEST a directory that exists      -> DEST/basename(SRC)
    SRC is a file, DEST exists (a file) or not       -> DEST (renamed)
    SRC is a file, DEST ends in / and does not exist -> error: no such directory
    SRC is a directory, DEST does not exist          -> DEST made, with SRC's content
    SRC is a directory, DEST a directory             -> DEST/basename(SRC)
    SRC ends in /. (a directory)                     -> its content into DEST (made if missing)
    SRC is a directory, DEST a file                  -> error: cannot copy a directory onto a file

The host side is read and written with runtime.containerfs too: what a container's tar
holds lands inside the destination directory, whatever symlinks it carries.
"""
from __future__ import annotations

import os
import posixpath
import stat
from dataclasses import dataclass
from typing import NamedTuple

from composer.errors import ComposerError


@dataclass(frozen=True)
class Source:
    path: str  # resolved (host) or as given (container)
    is_dir: bool
    name: str  # the first component of its tar's entries: base name, or "." for "DIR/."


@dataclass(frozen=True)
class Dest:
    path: str
    exists: bool
    is_dir: bool


class Placement(NamedTuple):
    """Extract into `directory`, the source's top entry renamed to `name`."""

    directory: str
    name: str


def split_dir_entry(path: str) -> tuple[str, str]:
    """(dir, base) as Docker's SplitPathDirEntry: a trailing `/.` is kept as base `.`."""
    clean = posixpath.normpath(path) if path else "."
    if path == "." or path.endswith("/."):
        clean = posixpath.join(clean, ".")
    return posixpath.dirname(clean) or ("/" if clean.startswith("/") else "."), \
        posixpath.basename(clean)


def asserts_directory(path: str) -> bool:
    return path.endswith("/") or path == "." or path.endswith("/.")


def place(src: Source, dst: Dest) -> Placement:
    """Where the source's archive is extracted, and its top entry's new name (see above)."""
    dst_dir, dst_base = split_dir_entry(dst.path)
    if dst.exists and dst.is_dir:
        return Placement(dst.path, src.name)
    if dst.exists and src.is_dir:
        raise ComposerError(f"cannot copy a directory onto the file {dst.path}: give a "
                            "directory as the destination")
    if dst.exists or src.is_dir:
        return Placement(dst_dir, dst_base)
    if asserts_directory(dst.path):
        raise ComposerError(f"no such directory: {dst.path} (the destination ends with / "
                            "but does not exist: create it first, or drop the /)")
    return Placement(dst_dir, dst_base)


def host_source(path: str, follow_link: bool) -> Source:
    """The host source: its parent's symlinks resolved (and its own with -L)."""
    if follow_link:
        resolved = os.path.realpath(path)
    else:
        head, tail = os.path.split(path)
        resolved = os.path.join(os.path.realpath(head or "."), tail)
    try:
        st = os.lstat(resolved.rstrip("/") or "/")
    except FileNotFoundError:
        raise ComposerError(f"no such file or directory: {path}") from None
    is_dir = stat.S_ISDIR(st.st_mode) or (
        path.endswith("/") and stat.S_ISLNK(st.st_mode) and os.path.isdir(resolved))
    if path.endswith("/") and not is_dir:
        raise ComposerError(f"not a directory: {path}")
    _, base = split_dir_entry(path)
    name = "." if base == "." else os.path.basename(path.rstrip("/")) or base
    return Source(resolved, is_dir, name)


def host_dest(path: str) -> Dest:
    """The host destination: a symlink at it is followed (up to 10 times, as Docker)."""
    current = path
    for _ in range(10):
        try:
            st = os.lstat(current.rstrip("/") or "/")
        except FileNotFoundError:
            parent, _ = split_dir_entry(current)
            if not os.path.isdir(parent):
                raise ComposerError(f"no such directory: {parent} (create it first)") from None
            return Dest(current, False, False)
        if not stat.S_ISLNK(st.st_mode):
            if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
                raise ComposerError(f"destination {path} must be a directory or a regular file")
            return Dest(current, True, stat.S_ISDIR(st.st_mode))
        target = os.readlink(current.rstrip("/"))
        current = target if os.path.isabs(target) else os.path.join(
            os.path.dirname(current.rstrip("/")), target)
    raise ComposerError(f"too many levels of symbolic links: {path}")


def container_arg(arg: str) -> tuple[str, str] | None:
    """`SERVICE:PATH` -> (service, path); None for a host path (`./a:b` and `/x:y` are host
    paths, as Docker reads them)."""
    if arg.startswith((".", "/")) or ":" not in arg:
        return None
    service, _, path = arg.partition(":")
    return service, path or "/"
