"""Read the merged view of overlay lowerdirs in user space, without mounting.

Used to copy an image's content into a new volume (Docker's volume init). Semantics follow
overlayfs: a 0/0 character device hides the name below it, an opaque directory hides
everything below it, a non-directory hides everything below it, directories merge.
Symlinks on the way to a path are resolved inside the merged view (never on the host).
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Sequence

from runtime.storage import whiteout
from runtime.storage.errors import InvalidArgument

_MAX_SYMLINKS = 40


def _stack(layers: Sequence[str], rel: str) -> list[str]:
    """Layers (top first) whose entry at `rel` is visible; several only for merged dirs.

    `layers` is the stack visible for rel's parent. Empty list: `rel` does not exist.
    """
    out: list[str] = []
    for layer in layers:
        full = os.path.join(layer, rel)
        try:
            st = os.lstat(full)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if whiteout.is_whiteout_stat(st):
            break
        if not stat.S_ISDIR(st.st_mode):
            if not out:
                out.append(layer)
            break
        out.append(layer)
        if whiteout.is_opaque(full):
            break
    return out


def resolve(lowerdirs: Sequence[str], path: str) -> tuple[str, list[str]] | None:
    """(rel path, visible layer stack) of an in-image path, following symlinks in the image."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    done: list[str] = []
    stacks: list[list[str]] = [list(lowerdirs)]
    hops = 0
    while parts:
        comp = parts.pop(0)
        if comp == "..":
            if done:
                done.pop()
                stacks.pop()
            continue
        rel = "/".join([*done, comp])
        stack = _stack(stacks[-1], rel)
        if not stack:
            return None
        full = os.path.join(stack[0], rel)
        if os.path.islink(full):
            hops += 1
            if hops > _MAX_SYMLINKS:
                raise InvalidArgument(f"too many levels of symlinks in image path {path!r}")
            target = os.readlink(full)
            if target.startswith("/"):
                done, stacks = [], [list(lowerdirs)]
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        done.append(comp)
        stacks.append(stack)
    return "/".join(done), stacks[-1]


def listdir(stack: Sequence[str], rel: str) -> dict[str, list[str]]:
    """Visible children of a merged directory: name -> that child's layer stack."""
    names: set[str] = set()
    for layer in stack:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            names.update(os.listdir(os.path.join(layer, rel)))
    out = {}
    for name in sorted(names):
        child = _stack(stack, f"{rel}/{name}" if rel else name)
        if child:
            out[name] = child
    return out


def copy_meta(src: str, dst: str, st: os.stat_result) -> None:
    """Owner, mode, xattrs (not overlay's), mtime of `src` onto `dst`; owners only as root."""
    is_link = stat.S_ISLNK(st.st_mode)
    with contextlib.suppress(PermissionError):
        os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    if not is_link:
        os.chmod(dst, stat.S_IMODE(st.st_mode))
        with contextlib.suppress(OSError):
            for name in os.listxattr(src, follow_symlinks=False):
                if name.startswith(whiteout.OVERLAY_XATTR_PREFIXES):
                    continue
                try:
                    os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=False))
                except OSError as e:
                    if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EACCES):
                        raise
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def copy_tree(stack: Sequence[str], rel: str, dest: str) -> None:
    """Copy the merged directory `rel` into the existing directory `dest` (content only)."""
    for name, child in listdir(stack, rel).items():
        crel = f"{rel}/{name}" if rel else name
        src = os.path.join(child[0], crel)
        dst = os.path.join(dest, name)
        st = os.lstat(src)
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            os.mkdir(dst, 0o700)
            copy_tree(child, crel, dst)
        elif stat.S_ISREG(mode):
            shutil.copyfile(src, dst, follow_symlinks=False)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(src), dst)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
            try:
                os.mknod(dst, mode, st.st_rdev)
            except PermissionError:
                continue
        else:
            continue  # sockets
        copy_meta(src, dst, st)
