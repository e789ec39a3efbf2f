"""Overlayfs whiteouts and opaque directories, and their OCI/Docker tar spelling.

In a tar layer (OCI image spec, "Representing Changes"):
  `dir/.wh.NAME`       NAME was deleted from the layers below
  `dir/.wh..wh..opq`   dir hides everything the layers below had in it (opaque)
On disk, in an overlay lowerdir/upperdir:
  NAME                 a character device 0/0
  dir                  carries the xattr `trusted.overlay.opaque=y`
                       (`user.overlay.opaque` when not root: mount with `userxattr`)
"""
from __future__ import annotations

import contextlib
import errno
import os
import stat

from runtime.storage.errors import StorageError

WH_PREFIX = ".wh."
WH_OPAQUE = ".wh..wh..opq"
WH_META_PREFIX = ".wh..wh."  # aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): never content
OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
OVERLAY_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")


def opaque_xattr() -> str:
    """The xattr this process can set: trusted.* needs CAP_SYS_ADMIN."""
    return OPAQUE_XATTRS[0] if os.geteuid() == 0 else OPAQUE_XATTRS[1]


def is_whiteout_stat(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_whiteout(path: str | os.PathLike[str]) -> bool:
    try:
        return is_whiteout_stat(os.lstat(path))
    except FileNotFoundError:
        return False


def is_opaque(path: str | os.PathLike[str]) -> bool:
    for name in OPAQUE_XATTRS:
        with contextlib.suppress(OSError):
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
    return False


def make_whiteout(name: str, dir_fd: int) -> None:
    os.mknod(name, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=dir_fd)


def set_opaque(target: str | int, what: str = "") -> None:
    """Mark a directory (a path, or an fd of it) opaque."""
    path = what or str(target)
    try:
        if isinstance(target, int):
            os.setxattr(target, opaque_xattr(), b"y")
        else:
            os.setxattr(target, opaque_xattr(), b"y", follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EPERM):
            raise StorageError(
                f"cannot mark {path} opaque ({e.strerror}): the layer store needs a filesystem "
                "with xattrs (ext4, xfs) and root for trusted.* xattrs"
            ) from e
        raise
